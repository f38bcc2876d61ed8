"""`mic subscriptions add|list|get|remove|status|test|dead-letters|replay|resync`: who receives which changes.

As with `mic clusters add`, files named on this command line (a signing secret, TLS certificates
and key) are read here and their content sent: the server never opens client paths. Header
values, secrets and the TLS client key are sent and never printed; the one exception is a
secret MIC generated on request (`--signing-secret generate`), which the server returns once
and this command shows once, because there is no other way to learn it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mic.cli.client import (
    DEFAULT_URL,
    MicError,
    TokenOption,
    UrlOption,
    UsageError,
    connect,
    read_local_file,
    reporting_errors,
)
from mic.cli.output import (
    OutputFormat,
    OutputOption,
    age,
    parse_time,
    print_data,
    print_fields,
    print_message,
    print_notice,
    print_table,
    when,
)

subscriptions_app = typer.Typer(
    help="Tell MIC where to deliver which changes, and see how delivery is doing.",
    no_args_is_help=True,
)

FORMATS = ("cloudevents", "cloudevents-binary", "mic-v1", "raw")
EVENT_TYPES = ("ADDED", "MODIFIED", "DELETED")

NameArgument = Annotated[str, typer.Argument(help="Subscription name.")]
MicUrlOption = Annotated[
    str,
    typer.Option(
        "--mic-url", envvar="MIC_URL", help="Base URL of the MIC service (--url is the webhook's here)."
    ),
]


def _headers(values: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        key, sep, header_value = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--header {key.strip() or value.split('=')[0]!r}... is not NAME=VALUE")
        if key.strip() in headers:
            raise UsageError(f"--header {key.strip()!r} given twice")
        headers[key.strip()] = header_value
    return headers


def _signing_secret(value: str | None) -> str | None:
    """`generate` asks the server; anything else is a file holding the secret (- for stdin)."""
    if value is None or value == "generate":
        return value
    secret = read_local_file(value, "--signing-secret").strip()
    if not secret:
        raise MicError(f"--signing-secret file '{value}' is empty")
    return secret


def _pem_file(path: str | None, option: str, marker: str) -> str | None:
    """The PEM text of a file named by `option`, or None when not given."""
    if path is None:
        return None
    text = read_local_file(path, option)
    if f"-----BEGIN {marker}" not in text:
        raise MicError(f"{option} file '{path}' holds no PEM text (-----BEGIN {marker}...-----)")
    return text


def _sink_tls(
    ca_file: str | None, client_cert_file: str | None, client_key_file: str | None, server_name: str | None
) -> dict[str, Any] | None:
    """`sink.tls` from the TLS options (files read here, their PEM text sent), or None."""
    if (client_cert_file is None) != (client_key_file is None):
        raise UsageError("--client-cert-file and --client-key-file go together (mTLS needs both)")
    tls: dict[str, Any] = {}
    for key, value in (
        ("caData", _pem_file(ca_file, "--ca-file", "CERTIFICATE")),
        ("clientCertificateData", _pem_file(client_cert_file, "--client-cert-file", "CERTIFICATE")),
        ("clientKeyData", _pem_file(client_key_file, "--client-key-file", "")),
        ("serverName", server_name),
    ):
        if value is not None:
            tls[key] = value
    return tls or None


def build_subscription(
    name: str,
    *,
    url: str,
    resources: list[str],
    clusters: list[str],
    cluster_selector: str | None,
    namespaces: list[str],
    exclude_namespaces: list[str] | None,
    label_selector: str | None,
    types: list[str],
    cel: str | None,
    format_: str | None,
    signing_secret: str | None,
    headers: list[str],
    batch_max_events: int | None,
    coalesce: bool,
    initial_state: bool,
    ca_file: str | None = None,
    client_cert_file: str | None = None,
    client_key_file: str | None = None,
    tls_server_name: str | None = None,
) -> dict[str, Any]:
    """The POST body for `mic subscriptions add`: only what was given, so the server's defaults apply."""
    if not resources:
        raise UsageError("name at least one --resource (e.g. --resource ingresses)")
    if format_ is not None and format_ not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {format_!r}")
    wanted_types = [t.upper() for t in types]
    for event_type in wanted_types:
        if event_type not in EVENT_TYPES:
            raise UsageError(f"--type must be one of {', '.join(EVENT_TYPES)}, not {event_type!r}")
    filter_: dict[str, Any] = {"resources": resources}
    if clusters:
        filter_["clusters"] = clusters
    if cluster_selector:
        filter_["clusterSelector"] = cluster_selector
    if namespaces:
        filter_["namespaces"] = namespaces
    if exclude_namespaces is not None:
        filter_["excludeNamespaces"] = [ns for ns in exclude_namespaces if ns]
    if label_selector:
        filter_["labelSelector"] = label_selector
    if wanted_types:
        filter_["eventTypes"] = wanted_types
    if cel:
        filter_["cel"] = cel
    sink: dict[str, Any] = {"url": url}
    if headers:
        sink["headers"] = _headers(headers)
    secret = _signing_secret(signing_secret)
    if secret:
        sink["signingSecret"] = secret
    tls = _sink_tls(ca_file, client_cert_file, client_key_file, tls_server_name)
    if tls:
        sink["tls"] = tls
    body: dict[str, Any] = {"name": name, "filter": filter_, "sink": sink}
    if format_:
        body["format"] = format_
    if batch_max_events is not None:
        body["batching"] = {"maxEvents": batch_max_events}
    if coalesce:
        body["delivery"] = {"coalesce": True}
    if not initial_state:
        body["initialState"] = False
    return body


@subscriptions_app.command("add")
@reporting_errors
def add(
    name: Annotated[str, typer.Argument(help="Name for the subscription (a DNS-1123 label, e.g. lb-eu).")],
    url_: Annotated[
        str, typer.Option("--url", help="Webhook URL (http:// or https://) that receives the events.")
    ],
    resource: Annotated[
        list[str],
        typer.Option("--resource", help="Resource as kubectl names it (ingresses, svc); repeatable."),
    ],
    cluster: Annotated[
        list[str] | None, typer.Option("--cluster", help="Only this cluster; repeatable (default: all).")
    ] = None,
    cluster_selector: Annotated[
        str | None,
        typer.Option("--cluster-selector", help="Only clusters with matching labels (env=prod)."),
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Only this namespace; repeatable (default: all)."),
    ] = None,
    exclude_namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude-namespace",
            help="Never this namespace; repeatable; replaces the default kube-system ('' for none).",
        ),
    ] = None,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Label selector over the objects, e.g. app=web.")
    ] = None,
    type_: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only these event types (ADDED, MODIFIED, DELETED); repeatable."),
    ] = None,
    cel: Annotated[
        str | None, typer.Option("--cel", help="CEL expression over event, object and oldObject.")
    ] = None,
    format_: Annotated[
        str | None, typer.Option("--format", help=f"Body format: {', '.join(FORMATS)} (default cloudevents).")
    ] = None,
    signing_secret: Annotated[
        str | None,
        typer.Option(
            "--signing-secret",
            help="'generate' (MIC makes one and it is shown once) or a FILE holding a whsec_ secret.",
        ),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", help="Extra request header NAME=VALUE (never shown again); repeatable."),
    ] = None,
    ca_file: Annotated[
        str | None,
        typer.Option(
            "--ca-file", help="PEM file with the CA(s) to trust for an https webhook (not the system's)."
        ),
    ] = None,
    client_cert_file: Annotated[
        str | None,
        typer.Option(
            "--client-cert-file", help="PEM client certificate MIC presents (mTLS); needs --client-key-file."
        ),
    ] = None,
    client_key_file: Annotated[
        str | None,
        typer.Option("--client-key-file", help="PEM key of --client-cert-file (sent, never shown again)."),
    ] = None,
    tls_server_name: Annotated[
        str | None,
        typer.Option("--tls-server-name", help="Name to verify the webhook's certificate against (and SNI)."),
    ] = None,
    batch_max_events: Annotated[
        int | None,
        typer.Option("--batch-max-events", min=1, help="Send CloudEvents batches of up to N events."),
    ] = None,
    coalesce: Annotated[
        bool,
        typer.Option("--coalesce", help="When the recipient lags, send each object's latest state only."),
    ] = False,
    no_initial_state: Annotated[
        bool,
        typer.Option("--no-initial-state", help="No ADDED for existing objects; changes only."),
    ] = False,
    mic_url: MicUrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Subscribe a webhook to changes: MIC delivers them durably, in order per object."""
    body = build_subscription(
        name,
        url=url_,
        resources=resource,
        clusters=cluster or [],
        cluster_selector=cluster_selector,
        namespaces=namespace or [],
        exclude_namespaces=exclude_namespace,
        label_selector=selector,
        types=type_ or [],
        cel=cel,
        format_=format_,
        signing_secret=signing_secret,
        headers=header or [],
        batch_max_events=batch_max_events,
        coalesce=coalesce,
        initial_state=not no_initial_state,
        ca_file=ca_file,
        client_cert_file=client_cert_file,
        client_key_file=client_key_file,
        tls_server_name=tls_server_name,
    )
    with connect(mic_url, token) as api:
        created = api.add_subscription(body)
    if output is not OutputFormat.TABLE:
        print_data(created, output)
        return
    print_message(f"subscription '{created.get('name', name)}' added")
    generated = created.get("generatedSigningSecret")
    if generated:
        print_message(f"signing secret (shown only this once; store it now): {generated}")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _status(subscription: dict[str, Any]) -> dict[str, Any]:
    return _dict(subscription.get("status"))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _join(value: Any, default: str = "") -> str:
    return ",".join(str(v) for v in value) if isinstance(value, list) and value else default


@subscriptions_app.command("list")
@reporting_errors
def list_(
    url: UrlOption = DEFAULT_URL, token: TokenOption = None, output: OutputOption = OutputFormat.TABLE
) -> None:
    """List subscriptions with their sink and delivery counters."""
    with connect(url, token) as api:
        items = api.list_subscriptions()
    if output is not OutputFormat.TABLE:
        print_data({"items": items}, output)
        return
    if not items:
        print_notice("No subscriptions")
        return
    rows = []
    for item in sorted(items, key=lambda s: _text(s.get("name"))):
        filter_ = _dict(item.get("filter"))
        sink = _dict(item.get("sink"))
        status = _status(item)
        rows.append(
            [
                _text(item.get("name")),
                _text(item.get("format")),
                _join(filter_.get("resources")),
                _join(filter_.get("clusters"), "*"),
                _text(sink.get("url")),
                _text(status.get("deliveredTotal")),
                _text(status.get("backlog")),
                _text(status.get("dead")),
                _text(status.get("lastError")),
            ]
        )
    print_table(
        ("name", "format", "resources", "clusters", "url", "delivered", "backlog", "dead", "last error"), rows
    )


@subscriptions_app.command("get")
@reporting_errors
def get(
    name: NameArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Show one subscription: filter, sink (header names only) and delivery status."""
    with connect(url, token) as api:
        item = _dict(api.subscription(name))
    if output is not OutputFormat.TABLE:
        print_data(item, output)
        return
    filter_ = _dict(item.get("filter"))
    sink = _dict(item.get("sink"))
    delivery = _dict(item.get("delivery"))
    print_fields(
        [
            ("Name", _text(item.get("name"))),
            ("URL", _text(sink.get("url"))),
            ("Format", _text(item.get("format"))),
            ("Resources", _join(filter_.get("resources"))),
            ("Clusters", _join(filter_.get("clusters"), "all")),
            ("Cluster selector", _text(filter_.get("clusterSelector"))),
            ("Namespaces", _join(filter_.get("namespaces"), "all")),
            ("Excluded namespaces", _join(filter_.get("excludeNamespaces"), "none")),
            ("Label selector", _text(filter_.get("labelSelector"))),
            ("Event types", _join(filter_.get("eventTypes"))),
            ("CEL", _text(filter_.get("cel"))),
            ("Headers", _join(sink.get("headerNames"), "none")),
            ("Signed", _signed(sink)),
            ("TLS", _tls_summary(_dict(sink.get("tls")))),
            ("Coalesce", "yes" if delivery.get("coalesce") else "no"),
            ("Initial state", "yes" if item.get("initialState") else "no"),
            ("Created", when(item.get("createdAt"))),
            ("Generation", _text(item.get("generation"))),
        ]
    )
    status = _status(item)
    if status:
        typer.echo("")
        _print_status(status)


def _signed(sink: dict[str, Any]) -> str:
    """Whether requests are signed, and until when a rotated-out secret still signs too."""
    if not sink.get("hasSigningSecret"):
        return "no"
    until = parse_time(sink.get("previousSigningSecretExpiresAt"))
    if until is None:
        return "yes"
    return f"yes (the replaced secret signs too until {until.strftime('%Y-%m-%dT%H:%M:%SZ')})"


def _tls_summary(tls: dict[str, Any]) -> str:
    """What the sink's TLS settings change, in a few words (the certificates are long)."""
    parts = []
    if tls.get("caData"):
        parts.append("own CA")
    if tls.get("clientCertificateData"):
        parts.append("client certificate" + ("" if tls.get("hasClientKey") else " (no key)"))
    if tls.get("serverName"):
        parts.append(f"verify as {tls['serverName']}")
    return ", ".join(parts) or "default"


def _print_status(status: dict[str, Any]) -> None:
    oldest = status.get("oldestUndeliveredAge")
    print_fields(
        [
            ("Delivered", _text(status.get("deliveredTotal"))),
            ("Backlog", _text(status.get("backlog"))),
            ("Retrying", _text(status.get("retrying"))),
            ("Dead letters", _text(status.get("dead"))),
            ("Oldest undelivered", f"{oldest:.1f}s" if isinstance(oldest, int | float) else ""),
            ("Last delivered", when(status.get("lastDeliveredAt"))),
            ("Last error", _text(status.get("lastError"))),
            ("Overflowing", "yes" if status.get("overflowing") else "no"),
            ("CEL errors", _text(status.get("celErrors"))),
        ]
    )


@subscriptions_app.command("status")
@reporting_errors
def status(
    name: NameArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """How delivery is doing: delivered, backlog, retrying, dead letters, last error."""
    with connect(url, token) as api:
        answer = api.subscription(name, "/status")
    if output is not OutputFormat.TABLE:
        print_data(answer, output)
    else:
        _print_status(answer if isinstance(answer, dict) else {})


@subscriptions_app.command("test")
@reporting_errors
def ping(
    name: NameArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Send one signed ping to the subscription's webhook and say how it answered (exit 1 if not 2xx)."""
    with connect(url, token) as api:
        result = api.subscription(name, "/test", method="POST")
    result = result if isinstance(result, dict) else {}
    if output is not OutputFormat.TABLE:
        print_data(result, output)
    elif result.get("ok"):
        print_message(f"ping delivered: {result.get('statusCode')} in {result.get('durationMs', 0):.0f} ms")
    if not result.get("ok"):
        code = result.get("statusCode")
        reason = result.get("error") or (f"answered {code}" if code else "no answer")
        raise MicError(f"ping to subscription '{name}' failed: {' '.join(str(reason).split())}")


@subscriptions_app.command("dead-letters")
@reporting_errors
def dead_letters(
    name: NameArgument,
    after_id: Annotated[int, typer.Option("--after-id", min=0, help="Only ids greater than this.")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many.")] = 100,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """List events that could not be delivered (replay them with `mic subscriptions replay`).

    "event id" is the id the recipient saw (the CloudEvent's id, the webhook-id header), to find
    the request in its logs.
    """
    with connect(url, token) as api:
        page = api.dead_letters(name, after_id=after_id, limit=limit)
    if output is not OutputFormat.TABLE:
        print_data(page, output)
        return
    items = [item for item in page.get("items") or [] if isinstance(item, dict)]
    if not items:
        print_notice(f"No dead letters for subscription '{name}'")
        return
    print_table(
        ("id", "cluster", "resource", "object", "type", "attempts", "age", "event id", "last error"),
        (
            [
                _text(item.get("id")),
                _text(item.get("cluster")),
                _text(item.get("resource")),
                "/".join(p for p in (_text(item.get("namespace")), _text(item.get("name"))) if p),
                _text(item.get("type")) + (" (superseded)" if item.get("supersededAt") else ""),
                _text(item.get("attempts")),
                age(item.get("createdAt")),
                _text(item.get("cloudEventId")),  # the id the recipient saw (webhook-id)
                " ".join(_text(item.get("lastError")).split()),
            ]
            for item in items
        ),
    )
    if page.get("nextAfterId") is not None:
        print_notice(f"more: --after-id {page['nextAfterId']}")


@subscriptions_app.command("replay")
@reporting_errors
def replay(
    name: NameArgument,
    id_: Annotated[
        list[int] | None,
        typer.Option("--id", help="Replay this dead letter only; repeatable (default: all)."),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Deliver dead letters again (all of them, or those given with --id)."""
    body: dict[str, Any] = {"ids": id_} if id_ else {}
    with connect(url, token) as api:
        answer = api.subscription(name, "/dead-letters/replay", method="POST", json=body)
    answer = answer if isinstance(answer, dict) else {}
    if output is not OutputFormat.TABLE:
        print_data(answer, output)
    else:
        count = answer.get("replayed", 0)
        message = f"{count} dead letter{'' if count == 1 else 's'} of '{name}' queued for delivery again"
        superseded = answer.get("superseded", 0)
        if superseded:
            message += (
                f"; {superseded} dropped: a newer event of {'its' if superseded == 1 else 'their'}"
                " object was delivered since, or is queued"
            )
        print_message(message)
    not_found = answer.get("notFound") or []
    if not_found:
        ids = ", ".join(str(id_) for id_ in not_found)
        raise MicError(
            f"'{name}' has no dead letter with id {ids} (replayed already, or mistyped?);"
            f" list them with: mic subscriptions dead-letters {name}"
        )


@subscriptions_app.command("resync")
@reporting_errors
def resync(
    name: NameArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Send every object of the subscription's view again as ADDED (for a recipient that lost its state)."""
    with connect(url, token) as api:
        answer = api.subscription(name, "/resync", method="POST")
    answer = answer if isinstance(answer, dict) else {}
    if output is not OutputFormat.TABLE:
        print_data(answer, output)
    else:
        print_message(str(answer.get("detail") or f"resync of '{name}' queued"))


@subscriptions_app.command("remove")
@reporting_errors
def remove(
    name: NameArgument,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Delete a subscription: delivery stops and its undelivered events and dead letters go."""
    with connect(url, token) as api:
        api.subscription(name, method="DELETE")
    if output is OutputFormat.TABLE:
        print_message(f"subscription '{name}' removed")
    else:
        print_data({"name": name, "removed": True}, output)

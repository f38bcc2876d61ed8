"""`mic clusters add|list|get|remove`: register clusters with a running MIC and inspect them.

The service never reads paths given on a client's command line — the client and the server
may not even share a machine, and a server that opened whatever path an API caller named would
hand out its own files. So `add` reads the kubeconfig, token and CA files here and sends their
contents. A kubeconfig is also *minified and flattened* first, as `kubectl config view --minify
--flatten` does: only the chosen context, its cluster and its user travel (the other contexts'
credentials stay on this machine), and the certificate/key/token files it references are
inlined, because the server refuses file references in submitted kubeconfigs.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from mic.cli.client import (
    DEFAULT_URL,
    MicClient,
    MicError,
    TokenOption,
    UrlOption,
    UsageError,
    connect,
    local_path,
    read_local_file,
    reporting_errors,
)
from mic.cli.cluster_wait import (
    DEFAULT_WAIT_SECONDS,
    Outcome,
    connected_line,
    not_connected_error,
    wait_for_connection,
)
from mic.cli.output import (
    OutputFormat,
    OutputOption,
    print_cluster,
    print_clusters,
    print_data,
    print_message,
)

clusters_app = typer.Typer(
    help="Register Kubernetes clusters with MIC and see how their watches are doing.",
    no_args_is_help=True,
)

# kubeconfig fields that name a file, and the inline field that replaces each when flattening.
_FILE_FIELDS = {
    "cluster": (("certificate-authority", "certificate-authority-data"),),
    "user": (
        ("client-certificate", "client-certificate-data"),
        ("client-key", "client-key-data"),
    ),
}


def _parse_labels(values: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values:
        key, sep, label_value = value.partition("=")
        if not sep or not key:
            raise UsageError(f"--label {value!r} is not key=value")
        if key in labels:
            raise UsageError(f"--label {key!r} given twice")
        labels[key] = label_value
    return labels


def _inline_file(entry: dict[str, Any], key: str, data_key: str, base_dir: Path, source: str) -> None:
    file_name = entry.get(key)
    if not isinstance(file_name, str) or not file_name:
        return
    del entry[key]
    if entry.get(data_key):  # `*-data` beats its file twin, as in client-go: nothing to read
        return
    path = _resolve(file_name, base_dir, f"kubeconfig '{source}' {key}")
    try:
        entry[data_key] = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise MicError(f"kubeconfig '{source}': cannot read {key} file '{file_name}': {reason}") from None


def _named(document: dict[str, Any], key: str, name: Any) -> dict[str, Any] | None:
    items = document.get(key)
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


def flatten_kubeconfig(text: str, *, context: str | None, source: str, base_dir: Path) -> str:
    """Keep only the context in use (with its cluster and user) and inline the files it names.

    A document that is not a kubeconfig this function understands is returned unchanged: the
    server then answers with the precise 422 (YAML error and line, missing field), so there is
    one source of truth for what a valid kubeconfig is. Only problems that are about *this*
    machine — a named context that is not there, a referenced file that cannot be read — are
    reported here.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if not isinstance(document, dict) or not isinstance(document.get("contexts"), list):
        return text
    context_name = context or document.get("current-context")
    if not context_name:
        return text  # the server explains that no context was chosen
    ctx = _named(document, "contexts", context_name)
    if ctx is None:
        names = [c.get("name") for c in document["contexts"] if isinstance(c, dict)]
        available = ", ".join(str(n) for n in names if n) or "none"
        raise MicError(
            f"context {context_name!r} not found in kubeconfig '{source}' (available: {available})"
        )
    raw_body = ctx.get("context")
    ctx_body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
    cluster = _named(document, "clusters", ctx_body.get("cluster"))
    user = _named(document, "users", ctx_body.get("user"))
    minified: dict[str, Any] = {
        "apiVersion": document.get("apiVersion", "v1"),
        "kind": document.get("kind", "Config"),
        "current-context": context_name,
        "contexts": [ctx],
        "clusters": [cluster] if cluster else [],
        "users": [user] if user else [],
    }
    for kind, entry_wrapper in (("cluster", cluster), ("user", user)):
        entry = entry_wrapper.get(kind) if entry_wrapper else None
        if not isinstance(entry, dict):
            continue
        for key, data_key in _FILE_FIELDS[kind]:
            _inline_file(entry, key, data_key, base_dir, source)
        token_file = entry.pop("tokenFile", None) if kind == "user" else None
        if isinstance(token_file, str) and token_file and not entry.get("token"):
            # `token` beats `tokenFile`, as in client-go; either way no client path is sent.
            entry["token"] = read_local_file(
                str(_resolve(token_file, base_dir, "kubeconfig tokenFile")), "kubeconfig tokenFile"
            ).strip()
    return yaml.safe_dump(minified, sort_keys=False)


def _resolve(file_name: str, base_dir: Path, what: str) -> Path:
    path = local_path(file_name, what)
    return path if path.is_absolute() else base_dir / path


def build_connection(
    *,
    kubeconfig: str | None,
    context: str | None,
    server: str | None,
    token_file: str | None,
    ca_file: str | None,
    insecure_skip_tls_verify: bool,
    tls_server_name: str | None,
    in_cluster: bool,
    kubeconfig_on_server: str | None,
) -> dict[str, Any]:
    """Turn the connection options of `mic clusters add` into the API's `connection` object.

    Exactly one way of connecting must be chosen, and options that belong to another way are
    refused rather than silently ignored (a `--ca-file` next to `--kubeconfig` would otherwise
    look as if it had been used).
    """
    chosen = [
        flag
        for flag, given in (
            ("--kubeconfig", kubeconfig is not None),
            ("--server", server is not None),
            ("--in-cluster", in_cluster),
            ("--kubeconfig-on-server", kubeconfig_on_server is not None),
        )
        if given
    ]
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} are mutually exclusive")
    if not chosen:
        raise UsageError(
            "say how to connect: --kubeconfig PATH, --server URL --token-file F, or --in-cluster"
        )
    way = chosen[0]
    belongs = {
        "--context": (context is not None, ("--kubeconfig", "--kubeconfig-on-server")),
        "--token-file": (token_file is not None, ("--server",)),
        "--ca-file": (ca_file is not None, ("--server",)),
        "--insecure-skip-tls-verify": (insecure_skip_tls_verify, ("--server",)),
        "--tls-server-name": (tls_server_name is not None, ("--server",)),
    }
    for flag, (given, owners) in belongs.items():
        if given and way not in owners:
            raise UsageError(f"{flag} only goes with {' or '.join(owners)}, not {way}")

    if kubeconfig is not None:
        text = read_local_file(kubeconfig, "--kubeconfig")
        path = Path.cwd() / "-" if kubeconfig == "-" else local_path(kubeconfig, "--kubeconfig").resolve()
        base_dir = path.parent
        source = "stdin" if kubeconfig == "-" else kubeconfig
        return {
            "type": "kubeconfig",
            "kubeconfig": flatten_kubeconfig(text, context=context, source=source, base_dir=base_dir),
            "context": context,
        }
    if kubeconfig_on_server is not None:
        return {"type": "kubeconfigFile", "path": kubeconfig_on_server, "context": context}
    if in_cluster:
        return {"type": "inCluster"}
    assert server is not None
    if token_file is None:
        raise UsageError(
            "--server needs --token-file (a file holding the cluster's bearer token; - for stdin)"
        )
    token = read_local_file(token_file, "--token-file").strip()
    if not token:
        raise MicError(f"--token-file '{token_file}' is empty")
    connection: dict[str, Any] = {
        "type": "token",
        "server": server,
        "token": token,
        "insecureSkipTlsVerify": insecure_skip_tls_verify,
        "tlsServerName": tls_server_name,
    }
    if ca_file is not None:
        ca_data = read_local_file(ca_file, "--ca-file")
        if "-----BEGIN CERTIFICATE-----" not in ca_data:
            raise MicError(f"--ca-file '{ca_file}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        connection["caData"] = ca_data
    return connection


KubeconfigOption = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        help="Kubeconfig file on THIS machine (- for stdin); its content is sent, minified to one "
        "context, with referenced certificate/key/token files inlined.",
        show_default=False,
    ),
]
ContextOption = Annotated[
    str | None, typer.Option("--context", help="Kubeconfig context (default: its current-context).")
]
ServerOption = Annotated[
    str | None, typer.Option("--server", help="Cluster API server URL, with --token-file.")
]
TokenFileOption = Annotated[
    str | None, typer.Option("--token-file", help="File holding the cluster's bearer token (- for stdin).")
]
CaFileOption = Annotated[
    str | None, typer.Option("--ca-file", help="PEM file with the CA that signed the API server's cert.")
]
InsecureOption = Annotated[
    bool,
    typer.Option(
        "--insecure-skip-tls-verify", help="Do not verify the API server's certificate (tests only)."
    ),
]
TlsServerNameOption = Annotated[
    str | None, typer.Option("--tls-server-name", help="Name to verify the server certificate against.")
]
InClusterOption = Annotated[
    bool, typer.Option("--in-cluster", help="The cluster MIC itself runs in (its service account).")
]
KubeconfigOnServerOption = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig-on-server",
        help="Kubeconfig file on the MIC host, inside its MIC_KUBECONFIG_DIR (not read here).",
    ),
]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Wait for MIC to connect to the cluster and say how it went (--no-wait: exit once stored).",
    ),
]
WaitSecondsOption = Annotated[
    float,
    typer.Option(
        "--wait-seconds",
        min=0.0,
        help="How long to wait for the cluster to connect; then exit 1, the registration kept.",
    ),
]
EXIT_CODES_HELP = (
    "Exit code 0: connected (with --no-wait: stored). 1: nothing stored (the error says why), or"
    " stored but not working: MIC cannot connect (unauthorized, unreachable, a certificate that"
    " fails), cannot watch every resource, or did not connect within --wait-seconds; the"
    " registration then stays, and `mic clusters update` fixes it. 2: wrong options."
)
"""Shown under the options of `add` and `update`, where man pages put EXIT STATUS."""


@clusters_app.command("add", epilog=EXIT_CODES_HELP)
@reporting_errors
def add(
    name: Annotated[str, typer.Argument(help="Name for the cluster in MIC (a DNS-1123 label, e.g. eu-1).")],
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    server: ServerOption = None,
    token_file: TokenFileOption = None,
    ca_file: CaFileOption = None,
    insecure_skip_tls_verify: InsecureOption = False,
    tls_server_name: TlsServerNameOption = None,
    in_cluster: InClusterOption = False,
    kubeconfig_on_server: KubeconfigOnServerOption = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="Cluster label k=v, for selecting clusters; repeatable."),
    ] = None,
    resource: Annotated[
        list[str] | None,
        typer.Option("--resource", help="Resource to watch and cache (e.g. ingresses); repeatable."),
    ] = None,
    wait: WaitOption = True,
    wait_seconds: WaitSecondsOption = DEFAULT_WAIT_SECONDS,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Register a cluster: MIC starts watching it and keeps it across restarts. Then wait until MIC
    has connected to it, or found that it cannot, and say so."""
    connection = build_connection(
        kubeconfig=kubeconfig,
        context=context,
        server=server,
        token_file=token_file,
        ca_file=ca_file,
        insecure_skip_tls_verify=insecure_skip_tls_verify,
        tls_server_name=tls_server_name,
        in_cluster=in_cluster,
        kubeconfig_on_server=kubeconfig_on_server,
    )
    body: dict[str, Any] = {"name": name, "labels": _parse_labels(label or []), "connection": connection}
    if resource:
        body["resources"] = resource
    with connect(url, token) as api:
        cluster = api.add_cluster(body)
        _finish(api, cluster, name, "added", output, wait_seconds if wait else None)


@clusters_app.command("update", epilog=EXIT_CODES_HELP)
@reporting_errors
def update(
    name: Annotated[str, typer.Argument(help="Cluster name.")],
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    server: ServerOption = None,
    token_file: TokenFileOption = None,
    ca_file: CaFileOption = None,
    insecure_skip_tls_verify: InsecureOption = False,
    tls_server_name: TlsServerNameOption = None,
    in_cluster: InClusterOption = False,
    kubeconfig_on_server: KubeconfigOnServerOption = None,
    wait: WaitOption = True,
    wait_seconds: WaitSecondsOption = DEFAULT_WAIT_SECONDS,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Replace a cluster's connection (a rotated token, CA or kubeconfig), given as for `add`;
    its labels and resources stay. MIC reconnects; what its objects did meanwhile is relisted.
    Then wait until MIC has connected with the new connection, or found that it cannot, and say so."""
    connection = build_connection(
        kubeconfig=kubeconfig,
        context=context,
        server=server,
        token_file=token_file,
        ca_file=ca_file,
        insecure_skip_tls_verify=insecure_skip_tls_verify,
        tls_server_name=tls_server_name,
        in_cluster=in_cluster,
        kubeconfig_on_server=kubeconfig_on_server,
    )
    with connect(url, token) as api:
        current = api.get_cluster(name)
        body = {
            "labels": current.get("labels") or {},
            "resources": current.get("resources") or [],
            "connection": connection,
        }
        cluster = api.replace_cluster(name, body)
        _finish(api, cluster, name, "updated", output, wait_seconds if wait else None)


def _finish(
    api: MicClient,
    cluster: dict[str, Any],
    name: str,
    done: str,
    output: OutputFormat,
    wait_seconds: float | None,
) -> None:
    """Report a stored cluster: at once (`wait_seconds` None), or once it connected or could not.

    A cluster that does not work ends the command with `not_connected_error` *after* the output,
    so `-o json|yaml` still prints the stored cluster (its latest status) on stdout.
    """
    name = str(cluster.get("name") or name)
    if wait_seconds is None:
        _report_stored(cluster, name, done, output)
        return
    outcome = _wait(api, cluster, name, done, wait_seconds)
    if output is not OutputFormat.TABLE:
        print_data(outcome.cluster, output)
    elif outcome.connected:
        print_message(connected_line(outcome, name, done))
    if not outcome.connected:
        raise not_connected_error(outcome, name, done, wait_seconds)


def _wait(api: MicClient, cluster: dict[str, Any], name: str, done: str, wait_seconds: float) -> Outcome:
    """`wait_for_connection`, with a failed status read or a Ctrl-C still saying the cluster is stored."""
    try:
        return wait_for_connection(api, name, cluster, wait_seconds)
    except MicError as exc:
        raise MicError(
            f"cluster '{name}' {done}, but reading its status failed: {exc.message}", exit_code=exc.exit_code
        ) from None
    except KeyboardInterrupt:
        raise MicError(
            f"interrupted while waiting for cluster '{name}' to connect; the registration is stored:"
            f" see 'mic clusters get {name}'",
            exit_code=130,
        ) from None


def _report_stored(cluster: dict[str, Any], name: str, done: str, output: OutputFormat) -> None:
    """What `--no-wait` prints: the answer to the write, whatever the state it shows."""
    if output is not OutputFormat.TABLE:
        print_data(cluster, output)
        return
    status = cluster.get("status")
    state = status.get("state") if isinstance(status, dict) else None
    suffix = f" (state: {state})" if state else ""
    print_message(f"cluster '{name}' {done}{suffix}")


@clusters_app.command("list")
@reporting_errors
def list_(
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """List registered clusters with their state, watched resources and object counts."""
    with connect(url, token) as api:
        clusters = api.list_clusters()
    if output is OutputFormat.TABLE:
        print_clusters(clusters)
    else:
        print_data({"items": clusters}, output)


@clusters_app.command("get")
@reporting_errors
def get(
    name: Annotated[str, typer.Argument(help="Cluster name.")],
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Show one cluster: connection (without credentials), labels and per-resource watch status."""
    with connect(url, token) as api:
        cluster = api.get_cluster(name)
    if output is OutputFormat.TABLE:
        print_cluster(cluster)
    else:
        print_data(cluster, output)


@clusters_app.command("remove")
@reporting_errors
def remove(
    name: Annotated[str, typer.Argument(help="Cluster name.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Remove it even when its objects' DELETED cannot be sent (unreachable since MIC started).",
        ),
    ] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Unregister a cluster: its subscriptions get a DELETED per object; its watches and cache go."""
    with connect(url, token) as api:
        api.remove_cluster(name, force=force)
    if output is OutputFormat.TABLE:
        print_message(f"cluster '{name}' removed")
    else:
        print_data({"name": name, "removed": True}, output)

"""`mic events tail`: watch changes live, one line per event, until Ctrl-C.

It reads `GET /v1/events` (Server-Sent Events). The tail is for looking, not for building on:
changes made while it is not connected are not kept for it (a subscription is the durable way).
The current objects come first, as ADDED, then each change as it happens.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from mic.cli.client import (
    DEFAULT_URL,
    MicError,
    TokenOption,
    UrlOption,
    UsageError,
    connect,
    reporting_errors,
)
from mic.cli.output import OutputFormat

TAIL_FORMATS = (OutputFormat.TABLE, OutputFormat.JSON)
"""What a stream of events prints: one line, or one JSON object, per event."""

TailOutputOption = Annotated[
    str,
    # A plain string checked in the command, so that `-o yaml` (offered by every other command)
    # gets the one-line usage error rather than Click's boxed one, and help lists only these.
    typer.Option(
        "--output",
        "-o",
        help="Output format: table (one line per event) or json (one CloudEvent per line).",
        metavar="|".join(TAIL_FORMATS),
        show_default=True,
    ),
]


def _tail_format(value: str) -> OutputFormat:
    for fmt in TAIL_FORMATS:
        if value.lower() == fmt.value:
            return fmt
    raise UsageError(
        f"-o {value}: events tail prints lines (-o table, the default) or -o json, one JSON object per line"
    )


events_app = typer.Typer(help="Watch changes across clusters as they happen.", no_args_is_help=True)


def _error_text(data: str) -> str:
    """The message of an SSE `error` event (JSON `{"message": ...}`), or its raw data."""
    try:
        body = json.loads(data)
    except ValueError:
        return data
    return str(body.get("message", data)) if isinstance(body, dict) else data


def event_line(body: dict[str, Any]) -> str:
    """`TIME TYPE CLUSTER RESOURCE NAMESPACE/NAME rv=N` from a CloudEvent, one line, no markup."""
    kind = str(body.get("type", "")).rsplit(".", 1)[-1].upper()
    fields = [
        str(body.get("time", "")),
        kind,
        str(body.get("cluster", "")),
        str(body.get("resource", "")),
        str(body.get("subject", "")),
        f"rv={body.get('resourceversion', '')}",
    ]
    return " ".join(" ".join(field.split()) or "-" for field in fields)


@events_app.command("tail")
@reporting_errors
def tail(
    resource: Annotated[str, typer.Argument(help="Resource as kubectl names it (ingresses, svc, cm, …).")],
    cluster: Annotated[
        list[str] | None, typer.Option("--cluster", help="Only this cluster; repeatable (default: all).")
    ] = None,
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Only this namespace; repeatable.")
    ] = None,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Label selector, e.g. app=web.")
    ] = None,
    cluster_selector: Annotated[
        str | None,
        typer.Option("--cluster-selector", help="Only clusters whose labels match, e.g. env=prod."),
    ] = None,
    type_: Annotated[
        list[str] | None, typer.Option("--type", help="Only ADDED, MODIFIED or DELETED; repeatable.")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output_name: TailOutputOption = OutputFormat.TABLE.value,
) -> None:
    """Print each change of RESOURCE as it happens (-o json: one CloudEvent per line)."""
    output = _tail_format(output_name)
    params: dict[str, str | list[str]] = {"resource": resource}
    if cluster:
        params["cluster"] = cluster
    if namespace:
        params["namespace"] = namespace
    if selector:
        params["labelSelector"] = selector
    if cluster_selector:
        params["clusterSelector"] = cluster_selector
    if type_:
        params["types"] = ",".join(t.upper() for t in type_)
    try:
        with connect(url, token) as api:
            for message in api.stream_events(params):
                if message.get("event") == "error":  # MIC ended the stream, and says why
                    raise MicError(f"MIC ended the stream: {_error_text(message.get('data', ''))}")
                try:
                    body = json.loads(message.get("data", ""))
                except ValueError:
                    raise MicError("MIC sent an event that is not JSON") from None
                if output is OutputFormat.JSON:
                    typer.echo(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
                else:
                    typer.echo(event_line(body if isinstance(body, dict) else {}))
    except KeyboardInterrupt:
        raise typer.Exit(code=130) from None  # Ctrl-C is how a tail ends: no error line
    raise MicError("MIC ended the stream (it is shutting down?)")

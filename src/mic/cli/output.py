"""How the `mic` commands print: rich tables for people, `-o json` / `-o yaml` for programs.

Machine formats print exactly what the API answered (so a script sees the same fields as an
HTTP client would); tables pick the few columns a person scans for. Every value that reaches a
table goes through `rich.text.Text`, never through markup, so a `[Errno 111]` in an error
message or a `[` in a label shows as typed instead of being eaten as a style tag.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text


class OutputFormat(StrEnum):
    """The `-o/--output` choices."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


OutputOption = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="Output format.", case_sensitive=False),
]


def print_data(data: Any, fmt: OutputFormat) -> None:
    """Print an API answer as JSON or YAML on stdout, unchanged."""
    if fmt is OutputFormat.YAML:
        typer.echo(
            yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False), nl=False
        )
    else:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_message(message: str) -> None:
    """A short confirmation for people (`cluster 'eu-1' added`); plain text, no markup."""
    typer.echo(message)


def print_notice(message: str) -> None:
    """Something worth knowing that is not the answer itself (`No resources found`): stderr."""
    typer.echo(message, err=True)


_PIPE_WIDTH = 4096
"""Table width when stdout is not a terminal: wide enough that no cell wraps, so `| grep` and
`| awk '{print $1}'` see one object per line, as with kubectl."""


def _print(renderable: RenderableType) -> None:
    # A console per call writes to whatever sys.stdout is now (CliRunner swaps it in tests).
    if sys.stdout.isatty():
        Console(highlight=False, soft_wrap=False).print(renderable)
        return
    console = Console(highlight=False, soft_wrap=False, width=_PIPE_WIDTH, color_system=None)
    with console.capture() as captured:
        console.print(renderable)
    typer.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A kubectl-like table: upper-case headers, no borders, one object per line."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header.upper(), overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    _print(table)


def print_fields(fields: Sequence[tuple[str, str]]) -> None:
    """`Label:  value` lines for one object's details."""
    table = Table(box=None, pad_edge=False, show_edge=False, show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in fields:
        table.add_row(Text(f"{label}:"), Text(value))
    _print(table)


# --- values ---------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """Read a timestamp the API may send as RFC 3339 text or as Unix seconds."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def age(value: Any, now: datetime | None = None) -> str:
    """How long ago `value` was, the way kubectl's AGE column says it (`45s`, `12m`, `3h`, `4d`)."""
    when = parse_time(value)
    if when is None:
        return "<unknown>" if value else ""
    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 730:
        return f"{days}d"
    return f"{days // 365}y"


def when(value: Any) -> str:
    """A timestamp for a details view: the exact time and how long ago (`… (3m ago)`)."""
    moment = parse_time(value)
    if moment is None:
        return "" if value in (None, "") else str(value)
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%SZ')} ({age(moment)} ago)"


def labels_text(labels: Any) -> str:
    """`k=v,k2=v2`, sorted, as kubectl prints selectors."""
    if not isinstance(labels, Mapping) or not labels:
        return ""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list_of_dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


# --- clusters -------------------------------------------------------------------------


def _watched(cluster: Mapping[str, Any]) -> list[dict[str, Any]]:
    return _list_of_dicts(_dict(cluster.get("status")).get("resources"))


def cached_objects(cluster: Mapping[str, Any]) -> dict[str, int]:
    """Objects cached per watched resource, each counted once.

    The status has one entry per informer: a resource watched over several scopes (all
    namespaces for the cluster, some namespaces or a selector for a subscription) has several.
    Its widest informer's count is the resource's (the others cache copies of a subset).
    """
    counts: dict[str, int] = {}
    for res in _watched(cluster):
        name = _text(res.get("resource"))
        counts[name] = max(counts.get(name, 0), int(res.get("objectCount") or 0))
    return counts


def cluster_row(cluster: Mapping[str, Any]) -> list[str]:
    """One line of `mic clusters list`: what a person checks first about a cluster."""
    status = _dict(cluster.get("status"))
    counts = cached_objects(cluster)
    if counts:
        resources = ",".join(counts)
        objects = str(sum(counts.values()))
    else:
        requested = cluster.get("resources")
        resources = ",".join(dict.fromkeys(str(r) for r in requested)) if isinstance(requested, list) else ""
        objects = "0" if resources else ""
    last_error = status.get("lastError") or next(
        (res.get("lastError") for res in _watched(cluster) if res.get("lastError")), None
    )
    return [
        _text(cluster.get("name")),
        _text(status.get("state")),
        _text(status.get("reason")),
        _text(status.get("serverVersion")),
        labels_text(cluster.get("labels")),
        resources,
        objects,
        _text(last_error),
    ]


CLUSTER_HEADERS = (
    "name",
    "state",
    "reason",
    "server version",
    "labels",
    "resources",
    "objects",
    "last error",
)


def print_clusters(clusters: Sequence[Mapping[str, Any]]) -> None:
    """The `mic clusters list` table, or a notice when there is nothing to list."""
    if not clusters:
        print_notice("No clusters registered")
        return
    print_table(
        CLUSTER_HEADERS, (cluster_row(c) for c in sorted(clusters, key=lambda c: _text(c.get("name"))))
    )


def _connection_text(connection: Any) -> str:
    conn = _dict(connection)
    parts = [_text(conn.get("type"))]
    for key in ("server", "context", "path"):
        if conn.get(key):
            parts.append(f"{key}={conn[key]}")
    return " ".join(part for part in parts if part)


def print_cluster(cluster: Mapping[str, Any]) -> None:
    """`mic clusters get`: the cluster's settings and status, then one line per watched resource."""
    status = _dict(cluster.get("status"))
    requested = cluster.get("resources")
    print_fields(
        [
            ("Name", _text(cluster.get("name"))),
            ("State", _text(status.get("state"))),
            ("Reason", _text(status.get("reason"))),
            ("Server version", _text(status.get("serverVersion"))),
            ("Connection", _connection_text(cluster.get("connection"))),
            ("Labels", labels_text(cluster.get("labels"))),
            ("Resources", ",".join(str(r) for r in requested) if isinstance(requested, list) else ""),
            ("Last error", _text(status.get("lastError"))),
            ("Last event", when(status.get("lastEventTime"))),
            ("Created", when(cluster.get("createdAt"))),
            ("Updated", when(cluster.get("updatedAt"))),
            ("Generation", _text(cluster.get("generation"))),
        ]
    )
    watched = _watched(cluster)
    if watched:
        typer.echo("")
        print_table(
            (
                "resource",
                "namespaces",
                "selector",
                "state",
                "reason",
                "synced",
                "objects",
                "resource version",
                "last error",
            ),
            (
                [
                    _text(res.get("resource")),
                    ",".join(res["namespaces"]) if isinstance(res.get("namespaces"), list) else "*",
                    _text(res.get("labelSelector")),
                    _text(res.get("state")),
                    _text(res.get("reason")),
                    "yes" if res.get("synced") else "no",
                    _text(res.get("objectCount")),
                    _text(res.get("resourceVersion")),
                    _text(res.get("lastError")),
                ]
                for res in watched
            ),
        )


# --- Kubernetes objects ---------------------------------------------------------------


def print_objects(entries: Sequence[tuple[str | None, Mapping[str, Any]]], *, with_cluster: bool) -> None:
    """Objects as `kubectl get` lists them, with a CLUSTER column when they come from several.

    The NAMESPACE column is left out when no object has one (cluster-scoped resources), as
    kubectl does.
    """
    rows: list[tuple[str, str, str, str, str]] = []
    for cluster, obj in entries:
        meta = _dict(obj.get("metadata"))
        rows.append(
            (
                cluster or "",
                _text(meta.get("namespace")),
                _text(meta.get("name")),
                age(meta.get("creationTimestamp")),
                _text(meta.get("resourceVersion")),
            )
        )
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    namespaced = any(row[1] for row in rows)
    headers = [
        h
        for h, keep in (
            ("cluster", with_cluster),
            ("namespace", namespaced),
            ("name", True),
            ("age", True),
            ("resource version", True),
        )
        if keep
    ]
    keep_index = [i for i, keep in enumerate((with_cluster, namespaced, True, True, True)) if keep]
    print_table(headers, ([row[i] for i in keep_index] for row in rows))

"""`mic resources get`: read Kubernetes objects from MIC's cache, in one cluster or across many.

The answers come from the informer caches MIC keeps, not from the clusters themselves, so a
query across a fleet costs the clusters nothing. A cross-cluster query can succeed for some
clusters and fail for others; the objects that did arrive are still printed, each failure gets
its own `error:` line on stderr, and the exit code is 1 so scripts notice the gap.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mic.cli.client import DEFAULT_URL, TokenOption, UrlOption, UsageError, connect, reporting_errors
from mic.cli.output import (
    OutputFormat,
    OutputOption,
    print_data,
    print_notice,
    print_objects,
)

resources_app = typer.Typer(
    help="Query Kubernetes objects from MIC's cache, in one cluster or across clusters.",
    no_args_is_help=True,
)

_DEFAULT_CHUNK_SIZE = 500  # kubectl's default page size


def _split_clusters(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise UsageError("--clusters needs at least one cluster name (a,b,c)")
    return names


@resources_app.command("get")
@reporting_errors
def get(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="CLUSTER RESOURCE [NAME]",
            help="Cluster, resource (as kubectl names it: ingresses, ing, deployments.apps, …) and "
            "optionally one object's name. With -A/--clusters leave out CLUSTER: RESOURCE [NAME].",
            show_default=False,
        ),
    ],
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Only this namespace (default: all).")
    ] = None,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Label selector, e.g. app=web,tier!=db.")
    ] = None,
    all_clusters: Annotated[
        bool, typer.Option("--all-clusters", "-A", help="Query every registered cluster.")
    ] = False,
    clusters: Annotated[
        str | None, typer.Option("--clusters", help="Query these clusters (comma-separated).")
    ] = None,
    chunk_size: Annotated[
        int,
        typer.Option(
            "--chunk-size", min=0, help="Fetch single-cluster lists in pages of this size (0: one page)."
        ),
    ] = _DEFAULT_CHUNK_SIZE,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """List objects of a resource (or get one by name) from MIC's cache."""
    if all_clusters and clusters is not None:
        raise UsageError("--all-clusters and --clusters are mutually exclusive")
    across = all_clusters or clusters is not None
    wanted = "RESOURCE [NAME]" if across else "CLUSTER RESOURCE [NAME]"
    count = (1, 2) if across else (2, 3)
    if len(args) not in count:
        raise UsageError(f"expected {wanted}, got {len(args)} argument(s): {' '.join(args)}")

    with connect(url, token) as api:
        if across:
            resource, name = args[0], (args[1] if len(args) > 1 else None)
            answer = api.query_resources(
                resource,
                clusters=_split_clusters(clusters) if clusters is not None else None,
                namespace=namespace,
                label_selector=selector,
            )
            _print_across(answer, name, output)
            return
        cluster, resource = args[0], args[1]
        if len(args) == 3:
            if selector:
                raise UsageError("--selector cannot be combined with a NAME")
            obj = api.get_resource(cluster, resource, args[2], namespace=namespace)
            if output is OutputFormat.TABLE:
                print_objects([(None, obj)], with_cluster=False)
            else:
                print_data(obj, output)
            return
        listing = api.list_resources(
            cluster, resource, namespace=namespace, label_selector=selector, chunk_size=chunk_size
        )
    items = [item for item in listing.get("items", []) if isinstance(item, dict)]
    if output is not OutputFormat.TABLE:
        print_data(listing, output)
    elif items:
        print_objects([(None, item) for item in items], with_cluster=False)
    else:
        print_notice(_nothing_found(resource, namespace, f"cluster '{cluster}'"))


def _nothing_found(resource: str, namespace: str | None, where: str) -> str:
    scope = f"namespace '{namespace}' of {where}" if namespace else where
    return f"No {resource} found in {scope}"


def _print_across(answer: dict[str, Any], name: str | None, output: OutputFormat) -> None:
    """Print a cross-cluster answer, then one `error:` line per cluster that could not answer."""
    raw_items = answer.get("items")
    entries: list[tuple[str, dict[str, Any]]] = []
    for item in raw_items if isinstance(raw_items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("object"), dict):
            continue
        obj = item["object"]
        metadata = obj.get("metadata")
        if name is not None and not (isinstance(metadata, dict) and metadata.get("name") == name):
            continue
        entries.append((str(item.get("cluster", "")), obj))
    errors = answer.get("errors")
    errors = errors if isinstance(errors, dict) else {}

    if output is not OutputFormat.TABLE:
        if name is not None:
            answer = {**answer, "items": [{"cluster": c, "object": o} for c, o in entries]}
        print_data(answer, output)
    elif entries:
        print_objects(entries, with_cluster=True)
    elif not errors:
        what = f"{name!r}" if name else "objects"
        print_notice(f"No {what} found in any cluster queried")
    stale = answer.get("stale")
    for cluster, message in sorted((stale if isinstance(stale, dict) else {}).items()):
        typer.echo(f"warning: cluster '{cluster}': {' '.join(str(message).split())}", err=True)
    for cluster, message in sorted(errors.items()):
        typer.echo(f"error: cluster '{cluster}': {' '.join(str(message).split())}", err=True)
    if errors:
        raise typer.Exit(code=1)  # each failure is already on its own line

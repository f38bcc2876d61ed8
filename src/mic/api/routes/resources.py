"""Kubernetes objects served from MIC's informer caches, for one cluster or many.

A resource that is not cached yet in a cluster starts being cached on first query (all
namespaces), and the query waits for the first list; that cache stays while queries use it and
is released once none has for a few minutes (see `Supervisor.ensure_cached`), so queries, a
viewer's too, never grow what MIC watches for good. Names are accepted as kubectl accepts them (`ing`,
`ingress`, `ingresses.networking.k8s.io`).

Responses are encoded with orjson straight from the cached dicts: the objects are already
JSON-shaped, and validating thousands of them through pydantic would only cost time.

Secret values never leave through these routes (`redact_secret`: keys stay, values become
`<redacted>`): a viewer token reads caches, and MIC is not a way around cluster RBAC.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from bisect import bisect_right
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Response

from mic.api.dependencies import get_service
from mic.api.models import ErrorBody, MultiClusterList, ObjectList
from mic.events.encodings import redact_secret
from mic.hub import ClusterState, UnknownClusterError
from mic.kube.cache import KubeObject, ObjectKey, object_key
from mic.kube.errors import KubeError
from mic.kube.resources import ResourceInfo
from mic.kube.selectors import LabelSelector
from mic.service.service import Service
from mic.service.supervisor import CacheNotReadyError, ClusterUnavailableError

router = APIRouter(prefix="/v1", tags=["resources"])

ServiceDep = Annotated[Service, Depends(get_service)]
Namespace = Annotated[
    str | None, Query(description="only objects in this namespace (ignored for cluster-scoped resources)")
]
Selector = Annotated[
    str | None,
    Query(
        alias="labelSelector",
        description="label selector as kubectl -l takes it",
        examples=["app=web,tier!=db"],
    ),
]
QUERY_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown cluster, resource (with suggestions) or object"},
    422: {"model": ErrorBody, "description": "ambiguous resource name, invalid selector or continue token"},
    502: {"model": ErrorBody, "description": "the cluster cannot answer (unreachable, unauthorized)"},
    504: {"model": ErrorBody, "description": "the cache did not complete its first list in time"},
}


class JSONBytes(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _split(values: list[str]) -> list[str]:
    """Repeated and comma-separated query values as one list, in order, without duplicates
    (as `GET /v1/events` takes them)."""
    parts = (part.strip() for value in values for part in value.split(","))
    return list(dict.fromkeys(part for part in parts if part))


def _selector(text: str | None) -> LabelSelector | None:
    return LabelSelector.parse(text) if text else None


def encode_continue(key: ObjectKey) -> str:
    """An opaque token: the last key returned; the next page starts after it."""
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_continue(token: str) -> ObjectKey:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        namespace, name = orjson.loads(raw)
        if isinstance(namespace, str) and isinstance(name, str):
            return (namespace, name)
    except (binascii.Error, ValueError, TypeError):
        pass
    raise HTTPException(
        422, "invalid continue token; pass the metadata.continue of the previous page unchanged"
    )


def paginate(
    objects: list[KubeObject], limit: int | None, after: ObjectKey | None
) -> tuple[list[KubeObject], str | None]:
    """A page of `objects` (sorted by key, as the cache lists them) after `after`, and the next token."""
    if after is not None:
        keys = [object_key(obj) for obj in objects]
        objects = objects[bisect_right(keys, after) :]
    if limit is None or len(objects) <= limit:
        return objects, None
    page = objects[:limit]
    return page, encode_continue(object_key(page[-1]))


async def _cached(service: Service, cluster: str, resource: str) -> ResourceInfo:
    return await service.supervisor.ensure_cached(cluster, resource)


@router.get(
    "/clusters/{cluster}/resources/{resource}",
    summary="List objects of one cluster from the cache",
    response_model=ObjectList,
    responses=QUERY_ERRORS,
)
async def list_objects(
    cluster: str,
    resource: str,
    service: ServiceDep,
    namespace: Namespace = None,
    label_selector: Selector = None,
    limit: Annotated[int | None, Query(ge=1, description="at most this many items per page")] = None,
    continue_: Annotated[
        str | None, Query(alias="continue", description="token from the previous page")
    ] = None,
) -> Response:
    selector = _selector(label_selector)
    after = decode_continue(continue_) if continue_ else None
    info = await _cached(service, cluster, resource)
    objects = service.hub.list(
        cluster, resource, namespace=namespace if info.namespaced else None, label_selector=selector
    )
    page, token = paginate(objects, limit, after)
    items = [redact_secret(obj) for obj in page]
    return JSONBytes({"apiVersion": "v1", "kind": "List", "metadata": {"continue": token}, "items": items})


async def _get(service: Service, cluster: str, resource: str, namespace: str | None, name: str) -> Response:
    info = await _cached(service, cluster, resource)
    if info.namespaced and namespace is None:
        raise HTTPException(
            404,
            f"{info.qualified_name} is namespaced; "
            f"use /v1/clusters/{cluster}/resources/{resource}/NAMESPACE/{name}",
        )
    if not info.namespaced and namespace is not None:
        raise HTTPException(
            404,
            f"{info.qualified_name} is cluster-scoped; "
            f"use /v1/clusters/{cluster}/resources/{resource}/{name}",
        )
    obj = service.hub.get(cluster, resource, name, namespace=namespace)
    if obj is None:
        where = f" in namespace {namespace!r}" if namespace else ""
        raise HTTPException(404, f"{info.qualified_name} {name!r} not found{where} in cluster {cluster!r}")
    return JSONBytes(redact_secret(obj))


@router.get(
    "/clusters/{cluster}/resources/{resource}/{namespace}/{name}",
    summary="Get one namespaced object from the cache",
    response_model=dict[str, Any],
    responses=QUERY_ERRORS,
)
async def get_namespaced_object(
    cluster: str, resource: str, namespace: str, name: str, service: ServiceDep
) -> Response:
    return await _get(service, cluster, resource, namespace, name)


@router.get(
    "/clusters/{cluster}/resources/{resource}/{name}",
    summary="Get one cluster-scoped object from the cache",
    response_model=dict[str, Any],
    responses=QUERY_ERRORS,
)
async def get_cluster_scoped_object(cluster: str, resource: str, name: str, service: ServiceDep) -> Response:
    return await _get(service, cluster, resource, None, name)


@router.get(
    "/resources/{resource}",
    summary="List objects across clusters from the caches",
    description=(
        "Each item says which cluster it comes from. A cluster that cannot answer is reported in "
        "`errors` and never fails the whole request; one that cannot be reached now but was listed "
        "before answers from its cache, and `stale` says so."
    ),
    response_model=MultiClusterList,
    responses={422: QUERY_ERRORS[422]},
)
async def list_across_clusters(
    resource: str,
    service: ServiceDep,
    clusters: Annotated[
        list[str] | None,
        Query(
            description="cluster name(s), repeated or comma-separated; default all",
            examples=[["eu-1", "us-1"]],
        ),
    ] = None,
    cluster_selector: Annotated[
        str | None,
        Query(
            alias="clusterSelector", description="label selector over cluster labels", examples=["region=eu"]
        ),
    ] = None,
    namespace: Namespace = None,
    label_selector: Selector = None,
) -> Response:
    selector = _selector(label_selector)
    by_cluster = _selector(cluster_selector)
    records = {record.name: record for record in await service.store.list_clusters()}
    errors: dict[str, str] = {}
    stale: dict[str, str] = {}
    if clusters is not None:
        names = _split(clusters)
        for name in names:
            if name not in records:
                errors[name] = str(UnknownClusterError(name))
        names = [n for n in names if n in records]
    else:
        names = sorted(records)
    if by_cluster is not None:
        names = [n for n in names if by_cluster.matches(dict(records[n].labels))]

    async def one(name: str) -> list[KubeObject]:
        info = await _cached(service, name, resource)
        return service.hub.list(
            name, resource, namespace=namespace if info.namespaced else None, label_selector=selector
        )

    results = await asyncio.gather(*(one(name) for name in names), return_exceptions=True)
    items: list[dict[str, Any]] = []
    for name, result in zip(names, results, strict=True):
        if isinstance(result, KubeError | ClusterUnavailableError | CacheNotReadyError):
            errors[name] = str(result)
        elif isinstance(result, BaseException):
            raise result
        else:
            items.extend({"cluster": name, "object": redact_secret(obj)} for obj in result)
            status = service.hub.status(name)
            if status.state in (ClusterState.UNREACHABLE, ClusterState.UNAUTHORIZED):
                stale[name] = f"{status.state.value}: {status.last_error}; objects as last seen"
    return JSONBytes({"items": items, "errors": errors, "stale": stale})

"""The original MIC's REST API (`/cic/nitro/v1/config/...`), kept for its users.

`/cic/nitro/v1/config/controller` registers a "controller": one cluster plus the servers that
receive its events. Here that becomes what MIC is made of:

- the cluster, named after `ClusterName` (lower-cased; other characters than `a-z0-9-` become
  `-`), with the name as given kept in the label `mic.io/original-cluster-name`, which also
  marks the cluster as owned by these routes (they never touch a cluster registered through
  `/v1`); it caches the `WatchEvents` resources so the GET routes below answer at once;
- the connection: `ConfigFileName` → a `kubeconfigFile` connection, under the same
  `MIC_KUBECONFIG_DIR` gate as `/v1`; `KubeURL` + `KubeServAcctToken` → a token connection;
  neither → in-cluster, as the original did;
- one subscription per `ServerURL` entry, named `<cluster>-<n>` (n from 1, in the order given),
  in the original envelope (`mic-v1`), for `WatchEvents` (endpoints, services, pods, secrets,
  ingresses), in `Namespaces` (empty: all) and never `kube-system`, as the original.

TLS (a decision): the original connected with `KubeURL` without verifying the server
certificate (client-go `Insecure: true`), and its body has no field for a CA. Doing the same
would hand the cluster's service-account token to anyone on the path, silently, so MIC verifies:
an https `KubeURL` needs `KubeCAData` (PEM), an addition of ours, and is refused (422, saying
so) without it, unless the operator started MIC with `--original-api-insecure-tls`, which
restores the original's unverified connections for this API only. A connection registered that
way shows `insecureSkipTlsVerify: true` in `/v1/clusters`. `/v1/clusters` is the way to a fully
specified connection.

Differences from the original, on purpose: every route needs the bearer token of `/v1`
(admin to change, viewer to read); a duplicate POST is 409 (the original sent 304, which may
carry no body and which HTTP caches treat as "not modified"); invalid bodies are 422 with a
message (the original answered 400 for bad connection fields, 200 for the rest); unknown
`WatchEvents` are refused (the original ignored them silently), and so is a `ServerURL` with
no `WatchEvents` (nothing could be sent to it; it would not even be kept); `KubeServAcctToken` is
write-only, so GET shows it as ""; Secret data is redacted in events and in the GET routes.

The cache routes (`GET /cic/nitro/v1/config/{endpoints|services|pods|secrets|ingresses}/...`)
answer from MIC's caches with the original's status codes: 200 with a Kubernetes list or
object, 204 for an empty list, 404 for an unknown cluster or object.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from mic.api.auth import authorize
from mic.api.dependencies import get_service
from mic.api.masking import masked_url
from mic.api.models import ErrorBody
from mic.api.routes.resources import JSONBytes
from mic.events.encodings import redact_secret
from mic.hub import UnknownClusterError
from mic.kube.direct import check_server_url
from mic.routing.spec import SubscriptionSpec
from mic.service.connections import EXAMPLE_CA_PEM, shown_url
from mic.service.service import Service
from mic.service.tokens import Principal
from mic.store import ClusterRecord, NotFoundError, StoreError, SubscriptionRecord

log = logging.getLogger(__name__)

router = APIRouter(prefix="/cic/nitro/v1/config", tags=["original API"])

ServiceDep = Annotated[Service, Depends(get_service)]

ORIGIN_LABEL = "mic.io/original-cluster-name"
"""Marks a cluster registered through these routes and keeps its `ClusterName` as given."""

WATCH_EVENTS = ("endpoints", "services", "pods", "secrets", "ingresses")
"""The resources the original could watch, by the names its API used (ours are the same)."""

_NAME_MAX = 63
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


class ControllerRegistration(BaseModel):
    """The original's body, field for field (plus `KubeCAData`). Unknown fields are ignored, as
    Go's JSON decoder did."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            # One that passes MIC's checks as it is when tried in Swagger; a `ConfigFileName`
            # example would need that file in the operator's MIC_KUBECONFIG_DIR.
            "examples": [
                {
                    "ClusterName": "ClusterABC",
                    "KubeURL": "https://203.0.113.10:6443",
                    "KubeServAcctToken": "eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.example",
                    "KubeCAData": EXAMPLE_CA_PEM,
                    "Namespaces": ["shop"],
                    "ServerURL": ["http://192.0.2.22/", "http://127.0.0.1:9000/"],
                    "WatchEvents": ["ingresses", "endpoints"],
                }
            ]
        },
    )

    cluster_name: str = Field(
        alias="ClusterName",
        min_length=1,
        max_length=63,
        description="the cluster's name as the original took it; MIC's name is it lower-cased, "
        "other characters than a-z, 0-9 and '-' becoming '-'",
    )
    config_file_name: str = Field(
        default="", alias="ConfigFileName", description="kubeconfig file inside MIC_KUBECONFIG_DIR"
    )
    kube_url: str = Field(default="", alias="KubeURL", description="API server URL, with KubeServAcctToken")
    kube_serv_acct_token: str = Field(
        default="", alias="KubeServAcctToken", repr=False, description="bearer token (write-only)"
    )
    kube_ca_data: str = Field(
        default="",
        alias="KubeCAData",
        repr=False,
        description="MIC addition: PEM CA to verify KubeURL's certificate (without it, it is not verified)",
    )
    namespaces: list[str] | None = Field(default=None, alias="Namespaces", description="empty: all")
    server_url: list[str] | None = Field(
        default=None, alias="ServerURL", description="servers that receive the events (mic-v1 envelope)"
    )
    watch_events: list[str] | None = Field(
        default=None, alias="WatchEvents", description="endpoints, services, pods, secrets, ingresses"
    )


class ControllerName(BaseModel):
    """DELETE body: only `ClusterName` is used (the original also listed ConfigFileName)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{"ClusterName": "ClusterABC"}]})

    cluster_name: str = Field(alias="ClusterName", min_length=1, description="the controller to remove")


class ControllerView(BaseModel):
    """A registration as GET shows it; `KubeServAcctToken` is always "" (write-only)."""

    model_config = ConfigDict(serialize_by_alias=True)

    cluster_name: str = Field(serialization_alias="ClusterName", description="as registered")
    config_file_name: str = Field(
        serialization_alias="ConfigFileName", description="kubeconfig file; empty for other connections"
    )
    kube_url: str = Field(
        serialization_alias="KubeURL", description="API server URL (password masked); empty if none"
    )
    kube_serv_acct_token: str = Field(
        default="", serialization_alias="KubeServAcctToken", description='always "": the token is write-only'
    )
    namespaces: list[str] = Field(serialization_alias="Namespaces", description="empty: all")
    server_url: list[str] = Field(
        serialization_alias="ServerURL", description="servers that receive the events"
    )
    watch_events: list[str] = Field(serialization_alias="WatchEvents", description="the resources watched")


# -- mapping --------------------------------------------------------------------------------------


def mic_cluster_name(cluster_name: str) -> str:
    """`ClusterABC` → `clusterabc`, `my_cluster.1` → `my-cluster-1`: a DNS-1123 label."""
    name = re.sub(r"[^a-z0-9-]+", "-", cluster_name.lower()).strip("-")
    return re.sub(r"-{2,}", "-", name)


def subscription_name(cluster: str, number: int) -> str:
    return f"{cluster}-{number}"


def _connection(body: ControllerRegistration, *, allow_insecure: bool) -> dict[str, Any]:
    """The connection the original would have used, as `/v1` spells it, but verified (see
    the module's TLS decision): `allow_insecure` is the operator's `--original-api-insecure-tls`."""
    if body.config_file_name:
        return {"type": "kubeconfigFile", "path": body.config_file_name}
    if body.kube_url and body.kube_serv_acct_token:
        check_server_url(body.kube_url, "KubeURL")  # so that the message names our field
        connection: dict[str, Any] = {
            "type": "token",
            "server": body.kube_url,
            "token": body.kube_serv_acct_token,
        }
        if body.kube_ca_data:
            connection["caData"] = body.kube_ca_data
        elif body.kube_url.strip().lower().startswith("https:"):  # plain http has nothing to verify
            if not allow_insecure:
                raise HTTPException(
                    422,
                    "KubeCAData: required with an https KubeURL, because MIC verifies the API "
                    "server's certificate (the original MIC did not). Send the cluster's CA "
                    "certificate (PEM: a kubeconfig's certificate-authority-data, base64-decoded), "
                    "or have the operator start mic serve with --original-api-insecure-tls to "
                    "connect without verifying, as the original did",
                )
            connection["insecureSkipTlsVerify"] = True
        return connection
    if body.kube_url:
        raise HTTPException(422, "KubeServAcctToken: required with KubeURL (the cluster's bearer token)")
    if body.kube_serv_acct_token:
        raise HTTPException(422, "KubeURL: required with KubeServAcctToken (the API server URL)")
    return {"type": "inCluster"}


def _resources(watch_events: list[str] | None) -> list[str]:
    resources: list[str] = []
    for event in watch_events or ():
        resource = event.strip().lower()
        if resource not in WATCH_EVENTS:
            raise HTTPException(422, f"WatchEvents: {event!r} is not one of {', '.join(WATCH_EVENTS)}")
        if resource not in resources:
            resources.append(resource)
    return resources


def _plan(
    body: ControllerRegistration, *, allow_insecure: bool
) -> tuple[ClusterRecord, list[SubscriptionSpec]]:
    """The cluster and subscriptions a registration stands for; 422 when it cannot be one."""
    name = mic_cluster_name(body.cluster_name)
    urls = [url.strip() for url in body.server_url or () if url.strip()]
    suffix = len(f"-{len(urls)}") if urls else 0
    if not name or len(name) + suffix > _NAME_MAX:
        raise HTTPException(
            422,
            f"ClusterName: {body.cluster_name!r} does not make a usable name; use letters, digits "
            f"and '-' (at most {_NAME_MAX - suffix} characters with {len(urls)} ServerURL entries)",
        )
    if not _LABEL_VALUE.match(body.cluster_name):
        raise HTTPException(
            422,
            f"ClusterName: {body.cluster_name!r} may only hold letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit",
        )
    resources = _resources(body.watch_events)
    if urls and not resources:
        raise HTTPException(
            422,
            "WatchEvents: empty, so nothing would be sent to ServerURL; name what to watch "
            f"({', '.join(WATCH_EVENTS)}), or leave ServerURL out to register the cluster alone",
        )
    given = list(dict.fromkeys(ns.strip() for ns in body.namespaces or () if ns.strip()))
    # The original dropped every kube-system event, even from a namespace it was told to watch.
    namespaces = [ns for ns in given if ns != "kube-system"] or None
    if given and namespaces is None:
        raise HTTPException(
            422, "Namespaces: kube-system is never delivered (as in the original MIC); name other namespaces"
        )
    cluster = ClusterRecord(
        name=name,
        connection=_connection(body, allow_insecure=allow_insecure),
        labels={ORIGIN_LABEL: body.cluster_name},
        resources=tuple(resources),
    )
    specs = []
    if resources:
        for number, url in enumerate(urls, start=1):
            specs.append(
                SubscriptionSpec.from_json(
                    {
                        "name": subscription_name(name, number),
                        "filter": {"resources": resources, "clusters": [name], "namespaces": namespaces},
                        "sink": {"url": url},
                        "format": "mic-v1",
                    }
                )
            )
    if cluster.connection.get("insecureSkipTlsVerify"):
        log.warning(
            "original API: cluster %s connects to %s without verifying its certificate, as the "
            "original MIC did (allowed by --original-api-insecure-tls); send KubeCAData (or use "
            "/v1/clusters with caData) to verify it",
            name,
            shown_url(body.kube_url),
        )
    return cluster, specs


def _owns(spec: dict[str, Any], cluster: str) -> bool:
    """Whether a stored subscription is one these routes made for `cluster`."""
    name = str(spec.get("name", ""))
    prefix = f"{cluster}-"
    filter_ = spec.get("filter") or {}
    return (
        name.startswith(prefix)
        and name[len(prefix) :].isdigit()
        and filter_.get("clusters") == [cluster]
        and spec.get("format") == "mic-v1"
    )


async def _owned_subscriptions(service: Service, cluster: str) -> list[SubscriptionRecord]:
    records = [r for r in await service.store.list_subscriptions() if _owns(dict(r.spec), cluster)]
    return sorted(records, key=lambda r: int(r.name.rsplit("-", 1)[1]))


async def _owned_cluster(service: Service, cluster_name: str) -> ClusterRecord:
    name = mic_cluster_name(cluster_name)
    try:
        record = await service.store.get_cluster(name)
    except NotFoundError:
        record = None
    if record is None or ORIGIN_LABEL not in record.labels:
        raise HTTPException(
            404,
            f"no controller registered for ClusterName {cluster_name!r}"
            + ("; that cluster was registered through /v1/clusters" if record is not None else ""),
        )
    return record


# -- the controller routes ------------------------------------------------------------------------

_CONTROLLER = "/controller"
_TEXT = {"content": {"text/plain": {"example": "Controller Added"}}}


def _error(description: str) -> dict[str, Any]:
    """An error answer as it is sent: `ErrorBody` JSON. Written out because `"model"` would
    document it under the route's own media type, text/plain for the controller routes."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


_INVALID_BODY = _error("invalid body or unusable connection (the message says what to fix)")
_NO_CONTROLLER = _error("no controller registered for this ClusterName")


@router.get(
    _CONTROLLER,
    summary="List the registered controllers",
    description='200 with the list, 204 when there is none. `KubeServAcctToken` is write-only: always "".',
    response_model=list[ControllerView],
    responses={204: {"description": "no controller registered"}},
)
async def list_controllers(
    service: ServiceDep, principal: Annotated[Principal, Depends(authorize)]
) -> Response:
    # Viewers see the servers' query values masked, as in /v1/subscriptions (`mic.api.masking`).
    shown = (lambda url: url) if principal.can_write else masked_url
    views: list[dict[str, Any]] = []
    for record in await service.store.list_clusters():
        if ORIGIN_LABEL not in record.labels:
            continue
        subscriptions = await _owned_subscriptions(service, record.name)
        connection = dict(record.connection)
        filters = [dict(s.spec.get("filter") or {}) for s in subscriptions]
        views.append(
            ControllerView(
                cluster_name=record.labels[ORIGIN_LABEL],
                config_file_name=str(connection.get("path") or ""),
                kube_url=shown_url(str(connection.get("server") or "")),
                namespaces=list(filters[0].get("namespaces") or []) if filters else [],
                server_url=[shown(str((s.spec.get("sink") or {}).get("url", ""))) for s in subscriptions],
                watch_events=list(record.resources),
            ).model_dump()
        )
    if not views:
        return Response(status_code=204)
    return JSONBytes(views)


@router.post(
    _CONTROLLER,
    summary="Register a controller: a cluster and the servers that receive its events",
    response_class=PlainTextResponse,
    responses={
        200: _TEXT,
        409: _error("already registered (the original answered 304)"),
        422: _INVALID_BODY,
    },
)
async def add_controller(body: ControllerRegistration, service: ServiceDep) -> PlainTextResponse:
    cluster, specs = _plan(body, allow_insecure=service.settings.original_api_insecure_tls)
    created = await service.supervisor.create(cluster)
    done: list[str] = []
    try:
        for spec in specs:
            await service.subscriptions.create(spec)
            done.append(spec.name)
    except BaseException:
        await _undo(service, created.name, done)
        raise
    return PlainTextResponse("Controller Added")


async def _undo(service: Service, cluster: str, subscriptions: list[str]) -> None:
    """Remove what a failed registration created, so a retry starts clean."""
    for name in subscriptions:
        try:
            await service.subscriptions.delete(name)
        except StoreError as error:
            log.warning("original API: cannot roll back subscription %s: %s", name, error)
    try:
        await service.supervisor.delete(cluster)
    except StoreError as error:
        log.warning("original API: cannot roll back cluster %s: %s", cluster, error)


@router.put(
    _CONTROLLER,
    summary="Replace a registered controller",
    description="Replaces the cluster's connection and watched resources and its servers. 404 when unknown.",
    response_class=PlainTextResponse,
    responses={200: _TEXT, 404: _NO_CONTROLLER, 422: _INVALID_BODY},
)
async def replace_controller(body: ControllerRegistration, service: ServiceDep) -> PlainTextResponse:
    existing = await _owned_cluster(service, body.cluster_name)
    cluster, specs = _plan(body, allow_insecure=service.settings.original_api_insecure_tls)
    await service.supervisor.replace(cluster)
    wanted = {spec.name: spec for spec in specs}
    for record in await _owned_subscriptions(service, existing.name):
        if record.name not in wanted:
            await service.subscriptions.delete(record.name)
    for spec in specs:
        try:
            await service.subscriptions.replace(spec)
        except NotFoundError:
            await service.subscriptions.create(spec)
    return PlainTextResponse("Controller Updated")


@router.delete(
    _CONTROLLER,
    summary="Remove a registered controller",
    description="Deletes its subscriptions (with their undelivered events) and the cluster.",
    response_class=PlainTextResponse,
    responses={200: _TEXT, 404: _NO_CONTROLLER, 422: _error("invalid body (the message says what to fix)")},
)
async def delete_controller(body: ControllerName, service: ServiceDep) -> PlainTextResponse:
    existing = await _owned_cluster(service, body.cluster_name)
    for record in await _owned_subscriptions(service, existing.name):
        await service.subscriptions.delete(record.name)
    await service.supervisor.delete(existing.name)
    return PlainTextResponse("Controller Deleted")


# -- the cache routes -----------------------------------------------------------------------------

_QUERY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "a Kubernetes list (or object); Secret data redacted"},
    204: {"description": "the list is empty"},
    404: {"model": ErrorBody, "description": "unknown cluster or object"},
    422: {"model": ErrorBody, "description": "invalid request (the message says what to fix)"},
    502: {"model": ErrorBody, "description": "the cluster cannot answer"},
    504: {"model": ErrorBody, "description": "the cache did not complete its first list in time"},
}


async def _query(
    service: Service, resource: str, cluster: str, namespace: str | None, name: str | None
) -> Response:
    # The original MIC's clients name the cluster as they registered it (`ClusterABC`); MIC
    # keeps it as a DNS label (`clusterabc`), which maps to itself.
    cluster = mic_cluster_name(cluster)
    try:
        info = await service.supervisor.ensure_cached(cluster, resource)
    except UnknownClusterError:
        raise HTTPException(404, f"cluster {cluster!r} not found") from None
    if name is not None:
        if info.namespaced and namespace is None:
            where = f"in cluster {cluster!r}: it is namespaced, name the namespace"
            raise HTTPException(404, f"{resource} {name!r} not found {where}")
        obj = service.hub.get(cluster, resource, name, namespace=namespace)
        if obj is None:
            raise HTTPException(404, f"{resource} {namespace}/{name} not found in cluster {cluster!r}")
        return JSONBytes(redact_secret(obj))
    objects = service.hub.list(cluster, resource, namespace=namespace)
    if not objects:
        return Response(status_code=204)
    return JSONBytes(
        {
            "apiVersion": info.group_version,
            "kind": f"{info.kind}List",
            "metadata": {},
            "items": [redact_secret(obj) for obj in objects],
        }
    )


def _register_cache_routes(resource: str) -> None:
    """Three routes per resource, as the original had: all, one namespace, one object."""
    tag = {"endpoints": "Endpoints", "services": "Services", "pods": "Pods", "secrets": "Secrets"}.get(
        resource, "Ingresses"
    )

    def add(path: str, summary: str, handler: Callable[..., Awaitable[Response]]) -> None:
        router.add_api_route(
            path,
            handler,
            methods=["GET"],
            summary=summary,
            response_class=JSONBytes,
            responses=_QUERY_RESPONSES,
            tags=[f"original API: {tag}"],
            name=f"original_{resource}_{handler.__name__}",
        )

    async def all_namespaces(clustername: str, service: ServiceDep) -> Response:
        return await _query(service, resource, clustername, None, None)

    async def one_namespace(clustername: str, namespace: str, service: ServiceDep) -> Response:
        return await _query(service, resource, clustername, namespace, None)

    async def one_object(clustername: str, namespace: str, name: str, service: ServiceDep) -> Response:
        return await _query(service, resource, clustername, namespace, name)

    add(f"/{resource}/{{clustername}}", f"All {resource} of a cluster", all_namespaces)
    add(f"/{resource}/{{clustername}}/{{namespace}}", f"The {resource} of one namespace", one_namespace)
    add(f"/{resource}/{{clustername}}/{{namespace}}/{{name}}", f"One of the {resource}", one_object)


for _resource in WATCH_EVENTS:
    _register_cache_routes(_resource)

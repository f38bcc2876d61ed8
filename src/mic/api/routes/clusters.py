"""`/v1/clusters`: register, change and remove clusters; read their status.

Writes go through the supervisor, which stores first and then reconciles what runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response
from pydantic import ValidationError

from mic.api.dependencies import get_service
from mic.api.errors import describe_validation_errors
from mic.api.models import (
    Cluster,
    ClusterList,
    ClusterName,
    ClusterPatch,
    ClusterReplacement,
    ClusterSpec,
    ClusterStatusView,
    ConnectionView,
    ErrorBody,
    ResourceStatusView,
)
from mic.api.write_only import require_resent
from mic.hub import ClusterStatus
from mic.hub.status import default_reason
from mic.kube.patch import merge_patch
from mic.service.connections import dump_connection, public_view
from mic.service.service import Service
from mic.service.supervisor import RuntimeView
from mic.store import ClusterRecord

router = APIRouter(prefix="/v1/clusters", tags=["clusters"])

ServiceDep = Annotated[Service, Depends(get_service)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no such cluster"},
    # FastAPI would document its own validation body here; MIC answers every error as ErrorBody.
    422: {"model": ErrorBody, "description": "invalid request (the message says what to fix)"},
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorBody,
        "description": "invalid body or unusable connection (the message says what to fix)",
    }
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "exists or changed concurrently"}
}


def _time(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def status_view(status: ClusterStatus) -> ClusterStatusView:
    return ClusterStatusView(
        state=status.state.value,
        reason=status.reason or default_reason(status.state),
        last_error=status.last_error,
        server_version=status.server_version,
        last_event_time=_time(status.last_event_at),
        resources=[
            ResourceStatusView(
                resource=r.resource,
                namespaces=list(r.namespaces) if r.namespaces is not None else None,
                label_selector=r.label_selector,
                state=str(r.state),
                reason=r.reason,
                synced=r.synced,
                object_count=r.object_count,
                resource_version=r.resource_version,
                last_error=r.last_error,
                last_event_time=_time(r.last_event_at),
            )
            for r in status.resources
        ],
        unresolved=list(status.unresolved),
    )


def cluster_view(record: ClusterRecord, runtime: RuntimeView) -> Cluster:
    """The API's view of a cluster: stored spec without credentials, plus live status."""
    return Cluster(
        name=record.name,
        labels=dict(record.labels),
        connection=ConnectionView(**public_view(record.connection, runtime.server)),
        resources=list(record.resources),
        created_at=record.created_at,
        updated_at=record.updated_at,
        generation=record.generation,
        status=status_view(runtime.status),
    )


def _record(spec: ClusterSpec, name: str) -> ClusterRecord:
    return ClusterRecord(
        name=name,
        connection=dump_connection(spec.connection),
        labels=dict(spec.labels),
        resources=tuple(spec.resources),
    )


@router.get("", summary="List clusters", response_model=ClusterList)
async def list_clusters(service: ServiceDep) -> ClusterList:
    records = await service.store.list_clusters()
    return ClusterList(items=[cluster_view(r, service.supervisor.view(r.name)) for r in records])


@router.post(
    "",
    status_code=201,
    summary="Register a cluster",
    description=(
        "Stores the cluster and starts watching it. A cluster that cannot be reached or refuses the "
        "credentials is still registered (201); its `status` says why, and MIC keeps retrying."
    ),
    response_model=Cluster,
    responses={**CONFLICT, **INVALID},
)
async def create_cluster(spec: ClusterSpec, service: ServiceDep) -> Cluster:
    stored = await service.supervisor.create(_record(spec, spec.name))
    return cluster_view(stored, service.supervisor.view(stored.name))


@router.get("/{name}", summary="Get a cluster with its status", response_model=Cluster, responses=NOT_FOUND)
async def get_cluster(name: str, service: ServiceDep) -> Cluster:
    record = await service.store.get_cluster(name)
    return cluster_view(record, service.supervisor.view(name))


@router.put(
    "/{name}",
    summary="Replace a cluster",
    description="Full replacement with the POST body. Only what changed is restarted.",
    response_model=Cluster,
    responses={**NOT_FOUND, **INVALID},
)
async def replace_cluster(name: ClusterName, spec: ClusterReplacement, service: ServiceDep) -> Cluster:
    if spec.name is not None and spec.name != name:
        raise HTTPException(
            422,
            f"name in the body ({spec.name!r}) differs from the path ({name!r}); clusters cannot be renamed",
        )
    stored = await service.supervisor.replace(_record(spec, name))
    return cluster_view(stored, service.supervisor.view(name))


@router.patch(
    "/{name}",
    summary="Change part of a cluster (JSON merge-patch)",
    description=(
        "Merge-patch (RFC 7386) over `labels`, `resources` and `connection`; a label set to null is "
        "removed, `labels: null` removes them all, `resources: null` empties the list. A "
        "`connection` with a different `type` replaces the stored one. A change of a token "
        "connection's `server`, `caData`, `insecureSkipTlsVerify` or `tlsServerName` must send the "
        "`token` again (422 otherwise): a stored token never follows a new destination. Fails with "
        "409 when the cluster changed concurrently."
    ),
    response_model=Cluster,
    responses={**NOT_FOUND, **INVALID, **CONFLICT},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/merge-patch+json": {"schema": {"$ref": "#/components/schemas/ClusterPatch"}}
            }
        }
    },
)
async def patch_cluster(name: str, service: ServiceDep, patch: Annotated[ClusterPatch, Body()]) -> Cluster:
    record = await service.store.get_cluster(name)
    changes = patch.model_dump(exclude_unset=True, by_alias=True)
    connection: Any = dict(record.connection)
    new_connection = changes.get("connection")
    if new_connection is not None:
        if "type" in new_connection and new_connection["type"] != connection.get("type"):
            connection = new_connection
        else:
            connection = merge_patch(connection, new_connection)
            if connection.get("type") == "token":
                require_resent(
                    record.connection,
                    connection,
                    new_connection,
                    destination=("server", "caData", "insecureSkipTlsVerify", "tlsServerName"),
                    credentials=("token",),
                    where="connection",
                )
    if "connection" in changes and new_connection is None:
        raise HTTPException(422, "connection: a cluster needs one; send the fields to change instead of null")
    merged: dict[str, Any] = {"name": name, "connection": connection}
    # RFC 7386: a member set to null is removed (labels: none left; resources: none listed).
    if "labels" not in changes:
        merged["labels"] = record.labels
    elif changes["labels"] is not None:
        merged["labels"] = merge_patch(dict(record.labels), changes["labels"])
    if "resources" not in changes:
        merged["resources"] = list(record.resources)
    elif changes["resources"] is not None:
        merged["resources"] = changes["resources"]
    try:
        spec = ClusterSpec.model_validate(merged)
    except ValidationError as error:
        raise HTTPException(422, describe_validation_errors(error.errors())) from None
    stored = await service.supervisor.replace(_record(spec, name), expected_generation=record.generation)
    return cluster_view(stored, service.supervisor.view(name))


@router.delete(
    "/{name}",
    status_code=204,
    summary="Remove a cluster",
    description=(
        "Every subscription that selected the cluster first gets a DELETED for each of its objects "
        "(as when its labels stop matching), so no recipient keeps routing to a cluster MIC no "
        "longer watches; then its watches stop and its caches go. Registering it again sends its "
        "objects as new ADDED. 409 when those DELETED cannot be sent now (the cluster has been "
        "unreachable since MIC started and no other cluster serves its resources): delete it once "
        "it is reachable, or with `force=true` to drop its objects without telling recipients."
    ),
    response_class=Response,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorBody, "description": "its objects' DELETED cannot be sent now (see above)"},
    },
)
async def delete_cluster(
    name: str,
    service: ServiceDep,
    force: Annotated[
        bool,
        Query(description="delete even if recipients cannot be told its objects are gone (409 otherwise)"),
    ] = False,
) -> Response:
    await service.supervisor.delete(name, force=force)
    return Response(status_code=204)

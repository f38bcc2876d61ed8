"""Request and response bodies of the `/v1` API: camelCase JSON, snake_case Python.

Responses never carry credentials: a cluster's connection is shown only as `ConnectionView`
(type, server, context, path). Connection request bodies are defined in
`mic.service.connections` because the store keeps exactly what they validate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from mic.kube.selectors import InvalidSelectorError, LabelSelector
from mic.service.connections import ConnectionSpec

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

ClusterName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL,
        description="DNS-1123 label: lowercase letters, digits and '-', at most 63 characters",
        examples=["eu-1"],
    ),
]
ResourceName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9./\-]*$",
        description="as kubectl accepts it: ing, ingresses, ingresses.networking.k8s.io",
    ),
]


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class RequestModel(ApiModel):
    """Request bodies reject unknown fields, so a typo is an error instead of silently ignored."""

    model_config = ConfigDict(extra="forbid")


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    try:
        LabelSelector.from_match_labels(labels)
    except InvalidSelectorError as error:
        raise ValueError(str(error).replace("matchLabels", "labels")) from None
    return labels


def _dedupe(resources: list[str]) -> list[str]:
    return list(dict.fromkeys(resources))


_CLUSTER_EXAMPLE: dict[str, Any] = {
    "name": "eu-1",
    "labels": {"region": "eu", "env": "prod"},
    "connection": {
        "type": "token",
        "server": "https://203.0.113.10:6443",
        "token": "eyJhbGciOi...",
        "caData": "-----BEGIN CERTIFICATE-----\n...",
    },
    "resources": ["ingresses", "services"],
}


class ClusterSpec(RequestModel):
    """A cluster to register: `POST /v1/clusters` and `PUT /v1/clusters/{name}`."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CLUSTER_EXAMPLE]})

    name: ClusterName
    labels: dict[str, str] = Field(default_factory=dict, description="for selecting clusters later")
    connection: ConnectionSpec
    resources: list[ResourceName] = Field(
        default_factory=list,
        max_length=100,
        description="resources to watch and cache, as kubectl names them",
    )

    _labels = field_validator("labels")(_check_labels)
    _resources = field_validator("resources")(_dedupe)


class ClusterReplacement(ClusterSpec):
    """`PUT` body: the POST body; `name` may be left out and must match the path if given."""

    name: ClusterName | None = None  # type: ignore[assignment]


class ClusterPatch(RequestModel):
    """`PATCH` body, JSON merge-patch (RFC 7386) over labels, resources and connection.

    A label set to null is removed; `resources` replaces the list; `connection` is merged into
    the stored one (so `{"connection": {"context": "b"}}` keeps the kubeconfig), unless its
    `type` differs, in which case it replaces the stored connection.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"labels": {"env": "staging", "team": None}, "resources": ["ingresses"]}]
        }
    )

    labels: dict[str, str | None] | None = None
    resources: list[ResourceName] | None = Field(default=None, max_length=100)
    connection: dict[str, Any] | None = None


class ConnectionView(ApiModel):
    """How a cluster is reached, without any credential."""

    type: str = Field(examples=["token"])
    server: str | None = Field(default=None, examples=["https://203.0.113.10:6443"])
    context: str | None = None
    path: str | None = None


class ResourceStatusView(ApiModel):
    """One cache (informer) in a cluster."""

    resource: str = Field(examples=["ingresses.networking.k8s.io"])
    namespaces: list[str] | None = Field(description="null: all namespaces")
    label_selector: str
    state: str = Field(examples=["watching"])
    synced: bool
    object_count: int
    resource_version: str
    last_error: str | None
    last_event_time: datetime | None


class ClusterStatusView(ApiModel):
    """Read-only: what MIC sees of the cluster right now."""

    state: Literal["connecting", "ready", "degraded", "unreachable", "unauthorized", "stopped"]
    last_error: str | None = None
    server_version: str | None = None
    last_event_time: datetime | None = None
    resources: list[ResourceStatusView] = Field(default_factory=list)
    unresolved: list[str] = Field(
        default_factory=list, description="resources that could not be resolved, why"
    )


class Cluster(ApiModel):
    """A registered cluster as the API shows it (credentials are write-only and never shown)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "eu-1",
                    "labels": {"region": "eu"},
                    "connection": {"type": "token", "server": "https://203.0.113.10:6443", "context": None},
                    "resources": ["ingresses"],
                    "createdAt": "2025-01-01T12:00:00Z",
                    "updatedAt": "2025-01-01T12:00:00Z",
                    "generation": 3,
                    "status": {
                        "state": "ready",
                        "lastError": None,
                        "serverVersion": "v1.31.0",
                        "lastEventTime": "2025-01-01T12:00:05Z",
                        "resources": [
                            {
                                "resource": "ingresses.networking.k8s.io",
                                "namespaces": None,
                                "labelSelector": "",
                                "state": "watching",
                                "synced": True,
                                "objectCount": 12,
                                "resourceVersion": "48213",
                                "lastError": None,
                                "lastEventTime": "2025-01-01T12:00:05Z",
                            }
                        ],
                        "unresolved": [],
                    },
                }
            ]
        }
    )

    name: str
    labels: dict[str, str]
    connection: ConnectionView
    resources: list[str]
    created_at: datetime | None
    updated_at: datetime | None
    generation: int
    status: ClusterStatusView


class ClusterList(ApiModel):
    items: list[Cluster]


class ListMeta(ApiModel):
    continue_: str | None = Field(
        default=None, alias="continue", description="pass as `continue` for the next page"
    )


class ObjectList(ApiModel):
    """Objects of one cluster, shaped like a Kubernetes `List`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "apiVersion": "v1",
                    "kind": "List",
                    "metadata": {"continue": None},
                    "items": [
                        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"}}
                    ],
                }
            ]
        }
    )

    api_version: str = "v1"
    kind: str = "List"
    metadata: ListMeta
    items: list[dict[str, Any]]


class ClusterObject(ApiModel):
    cluster: str
    object: dict[str, Any]


class MultiClusterList(ApiModel):
    """Objects from several clusters; clusters that could not answer are listed in `errors`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"cluster": "eu-1", "object": {"kind": "Ingress", "metadata": {"name": "web"}}}
                    ],
                    "errors": {"us-1": "cluster 'us-1' cannot be reached: connection refused"},
                }
            ]
        }
    )

    items: list[ClusterObject]
    errors: dict[str, str]


class ErrorBody(BaseModel):
    """Every error: a message saying what is wrong and, where possible, what to do."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "cluster 'eu-1' not found"}]})

    detail: str


class HealthBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str

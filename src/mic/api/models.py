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

from mic.hub.status import ClusterReason
from mic.kube.selectors import InvalidSelectorError, LabelSelector
from mic.service.connections import EXAMPLE_CA_PEM, ConnectionSpec

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
        "token": "eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.example",
        "caData": EXAMPLE_CA_PEM,
    },
    "resources": ["ingresses", "services"],
}


class ClusterSpec(RequestModel):
    """A cluster to register: `POST /v1/clusters` and `PUT /v1/clusters/{name}`."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CLUSTER_EXAMPLE]})

    name: ClusterName
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Kubernetes-style labels, for selecting clusters later (`clusterSelector`)",
    )
    connection: ConnectionSpec = Field(
        description="how MIC reaches the cluster, by `type`; credentials are write-only"
    )
    resources: list[ResourceName] = Field(
        default_factory=list,
        max_length=100,
        description="resources to watch and cache, as kubectl names them",
    )

    _labels = field_validator("labels")(_check_labels)
    _resources = field_validator("resources")(_dedupe)


class ClusterReplacement(ClusterSpec):
    """`PUT` body: the POST body; `name` may be left out and must match the path if given."""

    name: ClusterName | None = Field(  # type: ignore[assignment]
        default=None, description="the cluster's name; may be left out, must match the path if given"
    )


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

    labels: dict[str, str | None] | None = Field(
        default=None, description="labels to set; a label set to null is removed, others are kept"
    )
    resources: list[ResourceName] | None = Field(
        default=None, max_length=100, description="replaces the list of resources to watch and cache"
    )
    connection: dict[str, Any] | None = Field(
        default=None,
        description="merged into the stored connection; one with another `type` replaces it "
        "(a token connection's new destination needs the `token` again)",
    )


class ConnectionView(ApiModel):
    """How a cluster is reached, without any credential."""

    type: str = Field(description="kubeconfig, token, inCluster or kubeconfigFile", examples=["token"])
    server: str | None = Field(
        default=None,
        description="the API server's URL, once known (any password in it masked)",
        examples=["https://203.0.113.10:6443"],
    )
    context: str | None = Field(default=None, description="kubeconfig context; null: its current-context")
    path: str | None = Field(
        default=None, description="kubeconfigFile only: the file, relative to MIC_KUBECONFIG_DIR"
    )
    insecure_skip_tls_verify: bool | None = Field(
        default=None,
        description="token only: true when the server's certificate is not verified (null for other types)",
    )


class ResourceStatusView(ApiModel):
    """One cache (informer) in a cluster."""

    resource: str = Field(
        description="resource.group, as kubectl names it", examples=["ingresses.networking.k8s.io"]
    )
    namespaces: list[str] | None = Field(description="the namespaces watched; null: all namespaces")
    label_selector: str = Field(description="label selector of the watch; empty: all objects")
    state: str = Field(description="the informer's state", examples=["watching"])
    reason: ClusterReason | None = Field(
        default=None,
        description="why the watch fails, as a stable word (see ClusterReason); null while it works",
        examples=["ResourceForbidden"],
    )
    synced: bool = Field(description="whether the first list completed")
    object_count: int = Field(description="objects in this cache now")
    resource_version: str = Field(description="the last resourceVersion seen")
    last_error: str | None = Field(description="why the watch last failed; null: it did not")
    last_event_time: datetime | None = Field(description="when the last change arrived")


class ClusterStatusView(ApiModel):
    """Read-only: what MIC sees of the cluster right now."""

    state: Literal["connecting", "ready", "degraded", "unreachable", "unauthorized", "stopped"] = Field(
        description="how the cluster is doing, from MIC's point of view"
    )
    reason: ClusterReason = Field(
        description=(
            "why the cluster is in its state, as a stable CamelCase word for alerts and scripts (as "
            "a Kubernetes condition's reason); `lastError` says it in words. New values may come: "
            "treat an unknown one as Error"
        ),
        examples=["Connected", "TLSVerifyFailed"],
    )
    last_error: str | None = Field(default=None, description="what explains the state, if anything")
    server_version: str | None = Field(
        default=None, description="the API server's version", examples=["v1.31.0"]
    )
    last_event_time: datetime | None = Field(
        default=None, description="when the last change arrived from any watch"
    )
    resources: list[ResourceStatusView] = Field(
        default_factory=list, description="one entry per cache (informer); a resource may have several"
    )
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
                        "reason": "Connected",
                        "lastError": None,
                        "serverVersion": "v1.31.0",
                        "lastEventTime": "2025-01-01T12:00:05Z",
                        "resources": [
                            {
                                "resource": "ingresses.networking.k8s.io",
                                "namespaces": None,
                                "labelSelector": "",
                                "state": "watching",
                                "reason": None,
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

    name: str = Field(description="the cluster's name in MIC")
    labels: dict[str, str] = Field(description="labels for selecting clusters")
    connection: ConnectionView = Field(description="how MIC reaches the cluster, without credentials")
    resources: list[str] = Field(description="resources watched and cached, as registered")
    created_at: datetime | None = Field(description="when the cluster was registered")
    updated_at: datetime | None = Field(description="when the registration last changed")
    generation: int = Field(description="increases with every change of the registration")
    status: ClusterStatusView = Field(description="what MIC sees of the cluster right now (read-only)")


class ClusterList(ApiModel):
    """`GET /v1/clusters`: every registered cluster."""

    items: list[Cluster] = Field(description="the clusters, by name")


class ListMeta(ApiModel):
    """A list's metadata, as in Kubernetes."""

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

    api_version: str = Field(default="v1", description="always v1")
    kind: str = Field(default="List", description="always List")
    metadata: ListMeta = Field(description="paging: `continue` names the next page")
    items: list[dict[str, Any]] = Field(
        description="Kubernetes objects as cached (without managedFields; Secret values redacted)"
    )


class ClusterObject(ApiModel):
    """One object and the cluster it comes from."""

    cluster: str = Field(description="the cluster the object comes from")
    object: dict[str, Any] = Field(description="the Kubernetes object (Secret values redacted)")


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

    items: list[ClusterObject] = Field(description="objects of every cluster that answered")
    errors: dict[str, str] = Field(description="cluster name → why it could not answer")
    stale: dict[str, str] = Field(
        default_factory=dict,
        description="cluster name → why its items are the objects as last seen, not as they are "
        "now (it cannot be reached, or refuses MIC's credentials)",
    )


class ErrorBody(BaseModel):
    """Every error: a message saying what is wrong and, where possible, what to do."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "cluster 'eu-1' not found"}]})

    detail: str = Field(description="what is wrong, in one line, and what to do about it")


class HealthBody(BaseModel):
    """A probe's answer."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str = Field(description="`ok`, `not ready` or `standby`")

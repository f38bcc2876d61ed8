"""Request and response bodies of `/v1/subscriptions` and `/v1/events`.

The request models map 1:1 onto `SubscriptionSpec.to_json()` (camelCase): a body is dumped
with only the fields the user set and handed to `SubscriptionSpec.from_json`, so the spec's
defaults are the only defaults (OpenAPI shows them in the descriptions) and `mic.routing`
stays the one judge of what is valid (URLs, header names, selectors, CEL, https for Secret
data). The pydantic layer only checks shapes and bounds, so a typo or a wrong type is a 422
naming the field before anything else runs.

Write-only fields: the sink's `headers` (they often carry credentials), `signingSecret` and
`tls.clientKeyData` are accepted here and never appear in a response. Responses say
`headerNames`, `hasSigningSecret` and `tls.hasClientKey` instead, and a secret MIC generated
(`signingSecret: "generate"`) is shown once, as `generatedSigningSecret` in the answer to the
write that created it. The TLS certificates (`caData`, `clientCertificateData`) are not secret
and are shown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from mic.api.models import ApiModel, ClusterName, RequestModel, ResourceName
from mic.routing.expression import MAX_EXPRESSION_LENGTH

GENERATE = "generate"
"""The `signingSecret` value that asks MIC to generate a secret and show it once."""

EventTypeName = Literal["ADDED", "MODIFIED", "DELETED"]
FormatName = Literal["cloudevents", "cloudevents-binary", "mic-v1", "raw"]
SubscriptionName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="DNS-1123 label: lowercase letters, digits and '-', at most 63 characters",
        examples=["lb-controller"],
    ),
]
Namespace = Annotated[str, Field(min_length=1, max_length=63)]


class SubscriptionFilterBody(RequestModel):
    """Which changes reach the sink. Everything left out takes the default in its description."""

    resources: list[ResourceName] = Field(
        min_length=1, max_length=100, description="kubectl-style names, CRDs too", examples=[["ingresses"]]
    )
    clusters: list[ClusterName] | None = Field(
        default=None,
        max_length=1000,
        description="cluster names; null (default): every cluster, later ones too",
    )
    cluster_selector: str | None = Field(
        default=None, max_length=1024, description="label selector over cluster labels, ANDed with `clusters`"
    )
    namespaces: list[Namespace] | None = Field(
        default=None, max_length=1000, description="only these namespaces; null (default): all"
    )
    exclude_namespaces: list[Namespace] | None = Field(
        default=None, max_length=1000, description='never these namespaces; default ["kube-system"]'
    )
    label_selector: str | None = Field(
        default=None, max_length=1024, description="Kubernetes label selector over the objects"
    )
    event_types: list[EventTypeName] | None = Field(
        default=None, min_length=1, description="default: ADDED, MODIFIED and DELETED"
    )
    cel: str | None = Field(
        default=None,
        max_length=MAX_EXPRESSION_LENGTH,
        description="CEL expression over `event`, `object` and `oldObject`; the event is delivered when"
        " true. CEL's standard functions and macros (one-variable `all`, `exists`, `map`, `filter`) and"
        " the extension libraries of Kubernetes validation rules: strings (`lowerAscii`, `split`,"
        " `substring`, ...), lists, `math.*`, `sets.*`, `base64.*`",
        examples=["object.metadata.labels['tier'] == 'web'"],
    )
    suppress_noop: bool | None = Field(
        default=None,
        description="default true: drop a MODIFIED that changes only resourceVersion/managedFields",
    )
    fields: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(
        default=None,
        max_length=100,
        description="dotted paths; if set, a MODIFIED is delivered only when one of them changed",
        examples=[["spec", "metadata.labels"]],
    )


MAX_ROW_ID = 2**63 - 1
"""The largest outbox id (a signed 64-bit column on every database): larger ones are a 422,
not a database error."""

MAX_PEM_LENGTH = 512 * 1024
"""PEM fields' limit: room for a large CA bundle (the Mozilla bundle is about 220 KB)."""

_PEM_CA_EXAMPLE = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU...\n-----END CERTIFICATE-----\n"
_PEM_KEY_EXAMPLE = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49...\n-----END PRIVATE KEY-----\n"


class SinkTlsBody(RequestModel):
    """TLS for an https sink: a private CA, a client certificate (mTLS), another name to verify.

    Values are PEM text as it is in the files (not base64 of it), checked by loading them
    into OpenSSL when the subscription is written. The recipient's certificate is always
    verified: there is deliberately no setting to skip that.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "caData": _PEM_CA_EXAMPLE,
                    "clientCertificateData": _PEM_CA_EXAMPLE.replace(
                        "MIIBszCCAVmgAwIBAgIU", "MIIBrTCCAVOgAwIBAgIU"
                    ),
                    "clientKeyData": _PEM_KEY_EXAMPLE,
                    "serverName": "lb.internal.example",
                }
            ]
        }
    )

    ca_data: str | None = Field(
        default=None,
        max_length=MAX_PEM_LENGTH,
        description="PEM text of the CA certificate(s) to trust for this sink instead of the system CAs "
        "(like a kubeconfig's certificate-authority-data, but PEM text, not base64)",
        examples=[_PEM_CA_EXAMPLE],
    )
    client_certificate_data: str | None = Field(
        default=None,
        max_length=MAX_PEM_LENGTH,
        description="PEM client certificate (its chain may follow) that MIC presents when the recipient "
        "asks for one (mTLS); needs clientKeyData",
    )
    client_key_data: str | None = Field(
        default=None,
        max_length=64 * 1024,
        repr=False,
        description="PEM private key (unencrypted) of clientCertificateData (write-only: responses say "
        "hasClientKey; an update that changes sink.url must send it again)",
        examples=[_PEM_KEY_EXAMPLE],
    )
    server_name: str | None = Field(
        default=None,
        max_length=253,
        description="host name sent in SNI and verified in the recipient's certificate instead of the "
        "URL's host (the Host header stays the URL's)",
        examples=["lb.internal.example"],
    )


class WebhookSinkBody(RequestModel):
    """Where events go. `headers`, `signingSecret` and `tls.clientKeyData` are write-only."""

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="http:// or https:// URL that receives a POST per event (or batch)",
        examples=["https://lb.example/hooks/mic"],
    )
    headers: dict[str, str] | None = Field(
        default=None,
        description="extra request headers, e.g. Authorization (write-only; responses list the names)",
    )
    timeout_seconds: float | None = Field(default=None, gt=0, le=300, description="per request; default 10")
    signing_secret: str | None = Field(
        default=None,
        repr=False,
        description=(
            'Standard Webhooks secret ("whsec_" + base64), or "generate" to have MIC make one and '
            "show it once in the response (write-only)"
        ),
    )
    tls: SinkTlsBody | None = Field(
        default=None,
        description="https only: CAs to trust, a client certificate (mTLS), the name to verify; "
        "null (default): the system CAs, the URL's host, no client certificate",
    )
    previous_signing_secret: None = Field(
        default=None,
        description=(
            "only null, to end a rotation's overlap early: after the signing secret changes, MIC "
            "signs with the new and the replaced secret for 24 hours (two space-separated "
            "signatures, as Standard Webhooks allows), so receivers can switch when they are ready"
        ),
    )


class BatchingBody(RequestModel):
    """Send several events per request as a CloudEvents batch (format cloudevents only)."""

    max_events: int | None = Field(default=None, ge=1, le=10_000, description="default 100")
    max_bytes: int | None = Field(default=None, ge=1024, le=64 * 1024 * 1024, description="default 1000000")
    max_wait_ms: int | None = Field(default=None, ge=0, le=60_000, description="default 200")


class DeliveryPolicyBody(RequestModel):
    """Retries, dead letters, concurrency and how a lagging recipient is handled."""

    max_attempts: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="attempts before an event is dead; default null: no limit, retried until maxAgeSeconds",
    )
    max_age_seconds: float | None = Field(
        default=None,
        gt=0,
        description="how long an event may stay undelivered before it is dead; default 3600",
    )
    concurrency: int | None = Field(default=None, ge=1, le=256, description="objects in flight; default 8")
    initial_backoff_seconds: float | None = Field(default=None, gt=0, description="default 0.5")
    max_backoff_seconds: float | None = Field(default=None, gt=0, description="default 60")
    coalesce: bool | None = Field(
        default=None, description="when the recipient lags, deliver only each object's latest state"
    )
    backlog_limit: int | None = Field(default=None, ge=1, description="undelivered events; default 100000")
    overflow: Literal["coalesce", "dead-letter"] | None = Field(
        default=None, description="what happens past backlogLimit; default coalesce"
    )


_SUBSCRIPTION_EXAMPLE: dict[str, Any] = {
    "name": "lb-controller",
    "filter": {
        "resources": ["ingresses", "services"],
        "clusterSelector": "env=prod",
        "excludeNamespaces": ["kube-system"],
        "labelSelector": "expose=true",
    },
    "sink": {
        "url": "https://lb.example/hooks/mic",
        "headers": {"Authorization": "Bearer abc..."},
        "signingSecret": "generate",
    },
    "format": "cloudevents",
    "delivery": {"coalesce": True},
}


class SubscriptionBody(RequestModel):
    """A subscription: `POST /v1/subscriptions`."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SUBSCRIPTION_EXAMPLE]})

    name: SubscriptionName
    filter: SubscriptionFilterBody
    sink: WebhookSinkBody
    format: FormatName | None = Field(default=None, description="default cloudevents")
    batching: BatchingBody | None = Field(default=None, description="null (default): one event per request")
    include_secret_data: bool | None = Field(
        default=None, description="send Secret data unredacted; needs an https sink; default false"
    )
    initial_state: bool | None = Field(
        default=None, description="default true: first an ADDED for every matching object, then changes"
    )
    delivery: DeliveryPolicyBody | None = None


class SubscriptionReplacement(SubscriptionBody):
    """`PUT` body: the POST body; `name` may be left out and must match the path if given.

    The write-only `sink.headers` and `sink.signingSecret` keep their stored values when left
    out (a body read from GET, which never shows them, can be sent back unchanged); send
    `null` to remove them. So does `sink.tls.clientKeyData` when `sink.tls` is sent with a
    `clientCertificateData` (`sink.tls` left out removes the TLS settings, key included).
    """

    name: SubscriptionName | None = None  # type: ignore[assignment]


class SubscriptionPatch(RequestModel):
    """`PATCH` body, JSON merge-patch (RFC 7386) over the stored spec.

    A member set to null is removed (back to its default); objects merge, lists replace.
    `{"sink": {"headers": {"X-Old": null}}}` removes one header and keeps the others.
    """

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"filter": {"namespaces": ["shop"]}, "delivery": {"maxAttempts": 5}}]}
    )

    filter: dict[str, Any] | None = None
    sink: dict[str, Any] | None = None
    format: FormatName | None = None
    batching: dict[str, Any] | None = None
    include_secret_data: bool | None = None
    initial_state: bool | None = None
    delivery: dict[str, Any] | None = None


# -- responses --------------------------------------------------------------------------------


class SinkTlsView(ApiModel):
    """The sink's TLS settings without the client key."""

    ca_data: str | None = Field(description="PEM CA certificate(s) trusted instead of the system CAs")
    client_certificate_data: str | None = Field(description="PEM client certificate presented (mTLS)")
    has_client_key: bool = Field(description="a client key is stored (write-only)")
    server_name: str | None = Field(description="name verified instead of the URL's host")


class SinkView(ApiModel):
    """The sink without its secrets."""

    url: str = Field(
        description="as written, to an admin; a viewer sees each query value as `***` "
        "(a secret in the path is shown: put credentials in the write-only `headers`)"
    )
    header_names: list[str] = Field(description="names of the configured headers; values are write-only")
    timeout_seconds: float
    has_signing_secret: bool
    previous_signing_secret_expires_at: datetime | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="while a rotated-out signing secret still signs beside the current one: until when",
    )
    tls: SinkTlsView | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="TLS settings; absent when the sink has none (system CAs, no client certificate)",
    )


class SubscriptionStatusView(ApiModel):
    """How delivery is doing, from the outbox and the engine's counters."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "deliveredTotal": 1042,
                    "backlog": 3,
                    "retrying": 1,
                    "inFlight": 2,
                    "dead": 0,
                    "deadTotal": 2,
                    "coalescedTotal": 0,
                    "oldestUndeliveredAge": 1.7,
                    "lastError": "503 Service Unavailable",
                    "lastDeliveredAt": "2025-01-01T12:00:05Z",
                    "overflowing": False,
                    "celErrors": 0,
                    "lastCelError": None,
                }
            ]
        }
    )

    delivered_total: int
    backlog: int = Field(description="events stored and not yet delivered (nor dead)")
    retrying: int = Field(description="of the backlog, events that failed at least once")
    in_flight: int
    dead: int = Field(description="dead letters now (replay them with .../dead-letters/replay)")
    dead_total: int
    coalesced_total: int
    oldest_undelivered_age: float | None = Field(description="seconds")
    last_error: str | None
    last_delivered_at: datetime | None
    overflowing: bool = Field(description="the backlog is over its limit; MIC coalesces or dead-letters")
    cel_errors: int
    last_cel_error: str | None


class Subscription(ApiModel):
    """A subscription as the API shows it: the full spec with defaults, minus secrets."""

    name: str
    filter: dict[str, Any] = Field(description="as submitted, with every default filled in")
    sink: SinkView
    format: str
    batching: dict[str, Any] | None
    include_secret_data: bool
    initial_state: bool
    delivery: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None
    generation: int
    status: SubscriptionStatusView | None = Field(
        default=None, description="null until the delivery engine has started the subscription"
    )
    not_started: str | None = Field(
        default=None,
        description="why the delivery engine does not run this subscription (a spec stored by an "
        "older MIC that is no longer valid); a PUT with a valid spec starts it",
    )
    generated_signing_secret: str | None = Field(
        default=None,
        description="only in the answer to the write that made it; store it now, MIC never shows it again",
    )


class SubscriptionList(ApiModel):
    items: list[Subscription]


class PingResultView(ApiModel):
    """The outcome of one signed test request to the sink."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ok": True, "statusCode": 204, "error": None, "durationMs": 12.5}]}
    )

    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


class DeadLetter(ApiModel):
    """One event that could not be delivered; `object` only with `?include=object`."""

    id: int = Field(description="pass as `afterId` to page, or in `ids` to replay")
    event_id: str = Field(
        description="MIC's internal id of the stored event (a ULID); recipients never see it: "
        "match their logs with `cloudEventId`"
    )
    cloud_event_id: str = Field(
        description="the id the recipient got: the CloudEvent's `id` and, for a single event, the "
        "`webhook-id` header (a batch's `webhook-id` is its own); in the `mic-v1` envelope "
        "`app_event_id` is the same 32 hex digits written as a UUID. A replay sends it again",
        examples=["5d2c8e0a41f79b3e6c0d9a8b7e6f5a41"],
    )
    cluster: str
    resource: str
    namespace: str | None
    name: str
    type: str
    resource_version: str
    attempts: int
    last_error: str | None
    created_at: datetime
    superseded_at: datetime | None = Field(
        default=None,
        description="when a newer event of its object was delivered: a replay drops this one",
    )
    object: dict[str, Any] | None = Field(default=None, description="Secret data redacted")


class DeadLetterList(ApiModel):
    items: list[DeadLetter]
    next_after_id: int | None = Field(description="pass as `afterId` for the next page; null at the end")


class ReplayRequest(RequestModel):
    """Which dead letters to send again: `{"ids": [..]}`, or `{}` for all of them."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"ids": [41, 42]}, {}]})

    ids: list[Annotated[int, Field(ge=1, le=MAX_ROW_ID)]] | None = Field(default=None, max_length=10_000)


class ResyncResult(ApiModel):
    detail: str = Field(description="what was queued")


class ReplayResult(ApiModel):
    replayed: int = Field(description="dead letters queued for delivery again")
    superseded: int = Field(
        default=0,
        description=(
            "dead letters dropped instead: a newer event of their object was delivered since, or"
            " is queued (sent after it, the older one would leave the recipient with a state that"
            " is gone)"
        ),
    )
    not_found: list[int] = Field(
        default_factory=list,
        description="ids asked for that are not dead letters of this subscription: nothing was done for them",
    )

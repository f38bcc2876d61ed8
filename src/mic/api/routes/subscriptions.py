"""`/v1/subscriptions`: who receives which changes, how delivery is doing, dead letters.

Writes validate the body twice over, each layer doing what it is good at: pydantic checks
shapes and bounds (so a misspelt field is a 422 naming it), then `SubscriptionSpec.from_json`
checks meaning (selectors, CEL, format/batching combinations). Then the store, then the
engine (`mic.service.subscriptions`).

Secrets: the sink's headers, signing secret and TLS client key are stored with the spec but
never leave the service. Every response is built by `subscription_view`, which is the one place
that turns a stored spec into something shown, and it only ever shows header names and whether
a secret or client key is set. An update that sends the sink to a new URL must send the headers
and the client key again.

Viewers see the sink URL with its query values masked (`?api_key=***`), and so every URL in a
`lastError`: a query often carries a recipient's API key. Admins see it whole, since they are
the ones who edit it (a PUT of what GET showed must not replace the key with `***`). A secret in
the URL's path cannot be told from a path and is shown; secrets belong in `sink.headers`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ValidationError

from mic.api.auth import authorize
from mic.api.dependencies import get_service
from mic.api.errors import describe_validation_errors
from mic.api.masking import masked_text, masked_url
from mic.api.models import ErrorBody
from mic.api.subscription_models import (
    GENERATE,
    MAX_ROW_ID,
    DeadLetter,
    DeadLetterList,
    PingResultView,
    ReplayRequest,
    ReplayResult,
    ResyncResult,
    SinkTlsView,
    SinkView,
    Subscription,
    SubscriptionBody,
    SubscriptionList,
    SubscriptionName,
    SubscriptionPatch,
    SubscriptionReplacement,
    SubscriptionStatusView,
)
from mic.api.write_only import require_resent
from mic.delivery.signing import SECRET_ROTATION_OVERLAP, generate_secret
from mic.delivery.status import SubscriptionStatus
from mic.events.encodings import redact_secret, stable_event_id
from mic.kube.patch import merge_patch
from mic.routing.spec import SubscriptionSpec
from mic.service.service import Service
from mic.service.tokens import Principal
from mic.store import DeliveryRow, SubscriptionRecord

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])

ServiceDep = Annotated[Service, Depends(get_service)]
PrincipalDep = Annotated[Principal, Depends(authorize)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no such subscription"}
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "invalid subscription (the message says what to fix)"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "exists or changed concurrently"}
}


def _for_viewer(view: SubscriptionStatusView | None) -> SubscriptionStatusView | None:
    if view is None:
        return None
    return view.model_copy(update={"last_error": masked_text(view.last_error)})


def _time(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def status_view(status: SubscriptionStatus) -> SubscriptionStatusView:
    return SubscriptionStatusView(
        delivered_total=status.delivered_total,
        backlog=status.backlog,
        retrying=status.retrying,
        in_flight=status.in_flight,
        dead=status.dead,
        dead_total=status.dead_total,
        coalesced_total=status.coalesced_total,
        oldest_undelivered_age=status.oldest_undelivered_age,
        last_error=status.last_error,
        last_delivered_at=_time(status.last_delivered_at),
        overflowing=status.overflowing,
        cel_errors=status.cel_errors,
        last_cel_error=status.last_cel_error,
    )


def _live_status(service: Service, name: str) -> SubscriptionStatusView | None:
    """The engine's view, or None while it has not (yet) started the subscription."""
    try:
        return status_view(service.engine.status(name))
    except LookupError:
        return None


def subscription_view(
    record: SubscriptionRecord,
    status: SubscriptionStatusView | None = None,
    *,
    generated_secret: str | None = None,
    not_started: str | None = None,
    viewer: bool = False,
) -> Subscription:
    """What the API shows of a stored subscription: everything except header values and secret;
    for a `viewer`, also without the query values of the sink URL and of URLs in errors."""
    spec = dict(record.spec)
    sink: Mapping[str, Any] = spec.get("sink") or {}
    headers = sink.get("headers") or {}
    tls: Mapping[str, Any] = sink.get("tls") or {}
    url = str(sink.get("url", ""))
    if viewer:
        status = _for_viewer(status)
        not_started = masked_text(not_started)
    return Subscription(
        name=record.name,
        filter=dict(spec.get("filter") or {}),
        sink=SinkView(
            url=masked_url(url) if viewer else url,
            header_names=sorted(headers),
            timeout_seconds=float(sink.get("timeoutSeconds") or 0),
            has_signing_secret=bool(sink.get("signingSecret")),
            previous_signing_secret_expires_at=_overlap_end(sink),
            tls=SinkTlsView(
                ca_data=tls.get("caData"),
                client_certificate_data=tls.get("clientCertificateData"),
                has_client_key=bool(tls.get("clientKeyData")),  # the key itself is write-only
                server_name=tls.get("serverName"),
            )
            if any(tls.values())
            else None,
        ),
        format=str(spec.get("format", "")),
        batching=spec.get("batching"),
        include_secret_data=bool(spec.get("includeSecretData")),
        initial_state=bool(spec.get("initialState", True)),
        delivery=dict(spec.get("delivery") or {}),
        created_at=record.created_at,
        updated_at=record.updated_at,
        generation=record.generation,
        status=status,
        not_started=not_started,
        generated_signing_secret=generated_secret,
    )


def _overlap_end(sink: Mapping[str, Any]) -> datetime | None:
    """Until when a rotated-out signing secret still signs, or None (no rotation under way)."""
    expires = sink.get("previousSigningSecretExpiresAt")
    if (
        not sink.get("previousSigningSecret")
        or not isinstance(expires, int | float)
        or expires <= time.time()
    ):
        return None
    return datetime.fromtimestamp(expires, UTC)


def _with_rotation(
    spec: SubscriptionSpec, stored_sink: Mapping[str, Any], *, keep_overlap: bool
) -> SubscriptionSpec:
    """`spec` with the signing secret it replaces still signing for `SECRET_ROTATION_OVERLAP`.

    Receivers verify with the secret they hold; a new one takes effect at once for MIC but
    not for them, and a hard switch would make every receiver refuse MIC's requests until it
    is updated. So while the overlap lasts MIC signs with both (Standard Webhooks allows
    several signatures). A second rotation replaces the older secret; `keep_overlap=False`
    (the request set `previousSigningSecret: null`) ends the overlap now, and starts none even
    when the same request changes the secret.
    """
    sink = spec.sink
    now = time.time()
    stored_secret = stored_sink.get("signingSecret")
    previous: str | None = None
    expires: float | None = None
    if sink.signing_secret is not None and keep_overlap:
        if stored_secret and stored_secret != sink.signing_secret:
            previous, expires = str(stored_secret), now + SECRET_ROTATION_OVERLAP
        elif _overlap_end(stored_sink) is not None:
            previous = str(stored_sink["previousSigningSecret"])
            expires = float(stored_sink["previousSigningSecretExpiresAt"])
    rotated = dataclasses.replace(
        sink, previous_signing_secret=previous, previous_signing_secret_expires_at=expires
    )
    return dataclasses.replace(spec, sink=rotated)


_ROTATION_KEYS = ("previousSigningSecret", "previousSigningSecretExpiresAt")
"""Sink keys MIC sets itself on a rotation; a request may only send `previousSigningSecret: null`."""


def _view(
    service: Service,
    record: SubscriptionRecord,
    generated_secret: str | None = None,
    *,
    principal: Principal | None = None,
) -> Subscription:
    """`subscription_view` with what the engine says of it now, as `principal` may see it
    (None: an admin's write)."""
    return subscription_view(
        record,
        _live_status(service, record.name),
        generated_secret=generated_secret,
        not_started=service.engine.not_started(record.name),
        viewer=principal is not None and not principal.can_write,
    )


def _dump(body: BaseModel) -> dict[str, Any]:
    """The fields the user set, camelCase; None always means "the default", so it is left out."""
    return body.model_dump(by_alias=True, exclude_unset=True, exclude_none=True)


def _generate_if_asked(spec: dict[str, Any]) -> str | None:
    """Replace `signingSecret: "generate"` by a new secret; return it (to show once) or None."""
    sink = spec.get("sink")
    if isinstance(sink, dict) and sink.get("signingSecret") == GENERATE:
        secret = generate_secret()
        sink["signingSecret"] = secret
        return secret
    return None


def _validated(data: dict[str, Any]) -> SubscriptionSpec:
    """Shape check (pydantic, for messages naming the field), then meaning (`from_json`)."""
    try:
        SubscriptionBody.model_validate(data)
    except ValidationError as error:
        raise HTTPException(422, describe_validation_errors(error.errors())) from None
    return SubscriptionSpec.from_json(data)


@router.get("", summary="List subscriptions", response_model=SubscriptionList)
async def list_subscriptions(service: ServiceDep, principal: PrincipalDep) -> SubscriptionList:
    records = await service.store.list_subscriptions()
    return SubscriptionList(items=[_view(service, r, principal=principal) for r in records])


@router.post(
    "",
    status_code=201,
    summary="Create a subscription",
    description=(
        "Stores the subscription and starts delivering: first the current matching objects (as ADDED, "
        'unless `initialState` is false), then every change. With `sink.signingSecret: "generate"` the '
        "answer carries `generatedSigningSecret`, shown this once."
    ),
    response_model=Subscription,
    response_model_exclude_none=False,
    responses={**CONFLICT, **INVALID},
)
async def create_subscription(
    body: SubscriptionBody, service: ServiceDep, response: Response
) -> Subscription:
    data = _dump(body)
    generated = _generate_if_asked(data)
    spec = _validated(data)
    stored = await service.subscriptions.create(spec)
    _warn_of_unserved_resources(service, spec, response)
    return _view(service, stored, generated)


def _warn_of_unserved_resources(service: Service, spec: SubscriptionSpec, response: Response) -> None:
    """Add a `Warning` header (as kube-apiserver warns, and the CLI prints) for each resource
    that no registered cluster serves: a mistyped name is stored, as a CRD to come must be, but
    its author hears of it now rather than from every cluster's status turning degraded."""
    for resource in spec.filter.resources:
        known, serving = service.hub.clusters_serving(resource)
        if known and not serving:
            text = (
                f"filter.resources: no registered cluster serves {resource!r} ({', '.join(known)});"
                " check the name (kubectl api-resources): it is watched once a cluster serves it"
            )
            response.headers.append("Warning", f'299 - "{_quoted(text)}"')


def _quoted(text: str) -> str:
    """`text` inside an HTTP quoted-string (RFC 9110: backslash escapes `"` and `\\`); what is
    not printable ASCII becomes `?` (a header carries Latin-1 at most, and never a line break)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return "".join(char if " " <= char < "\x7f" else "?" for char in escaped)


@router.get("/{name}", summary="Get a subscription", response_model=Subscription, responses=NOT_FOUND)
async def get_subscription(name: str, service: ServiceDep, principal: PrincipalDep) -> Subscription:
    record = await service.store.get_subscription(name)
    return _view(service, record, principal=principal)


@router.put(
    "/{name}",
    summary="Replace a subscription",
    description=(
        "Full replacement with the POST body, except the write-only `sink.headers` and "
        "`sink.signingSecret`: left out, they keep their stored values; `null` removes them. The same "
        "holds for `sink.tls.clientKeyData` when `sink.tls` is sent with a `clientCertificateData`. "
        "A new `sink.url` needs the headers and the client key sent again (422 otherwise): stored "
        "credentials never follow a new destination. Fails with 409 when the subscription changed "
        "concurrently."
    ),
    response_model=Subscription,
    responses={**NOT_FOUND, **INVALID, **CONFLICT},
)
async def replace_subscription(
    name: SubscriptionName, body: SubscriptionReplacement, service: ServiceDep, response: Response
) -> Subscription:
    if body.name is not None and body.name != name:
        raise HTTPException(
            422,
            f"name in the body ({body.name!r}) differs from the path ({name!r}); "
            "subscriptions cannot be renamed",
        )
    record = await service.store.get_subscription(name)
    data = _dump(body)
    data["name"] = name
    stored_sink: Mapping[str, Any] = record.spec.get("sink") or {}
    for field, key in (("headers", "headers"), ("signing_secret", "signingSecret")):
        if field not in body.sink.model_fields_set and stored_sink.get(key):
            data["sink"][key] = stored_sink[key]
    given = set(body.sink.model_fields_set)
    stored_key = (stored_sink.get("tls") or {}).get("clientKeyData")
    new_tls = data["sink"].get("tls")
    if body.sink.tls is not None and "client_key_data" in body.sink.tls.model_fields_set:
        given.add("tls.clientKeyData")
    elif stored_key and isinstance(new_tls, dict) and new_tls.get("clientCertificateData"):
        new_tls["clientKeyData"] = stored_key  # kept, like the headers; checked against the URL below
    _credentials_stay_with_their_url(stored_sink, data["sink"], given)
    generated = _generate_if_asked(data)
    keep_overlap = "previous_signing_secret" not in body.sink.model_fields_set
    spec = _with_rotation(_validated(data), stored_sink, keep_overlap=keep_overlap)
    stored = await service.subscriptions.replace(spec, expected_generation=record.generation)
    _warn_of_unserved_resources(service, spec, response)
    return _view(service, stored, generated)


@router.patch(
    "/{name}",
    summary="Change part of a subscription (JSON merge-patch)",
    description=(
        "Merge-patch (RFC 7386) over the stored spec: objects merge, lists replace, null removes "
        '(back to the default). `{"sink": {"signingSecret": "generate"}}` rotates the secret and shows '
        "the new one once. A new `sink.url` needs `sink.headers` and `sink.tls.clientKeyData` sent "
        "again (422 otherwise). Fails with 409 when the subscription changed concurrently."
    ),
    response_model=Subscription,
    responses={**NOT_FOUND, **INVALID, **CONFLICT},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/merge-patch+json": {"schema": {"$ref": "#/components/schemas/SubscriptionPatch"}}
            }
        }
    },
)
async def patch_subscription(
    name: str, service: ServiceDep, patch: Annotated[SubscriptionPatch, Body()], response: Response
) -> Subscription:
    record = await service.store.get_subscription(name)
    changes = patch.model_dump(by_alias=True, exclude_unset=True)
    merged = merge_patch(dict(record.spec), changes)
    if not isinstance(merged, dict):  # pragma: no cover - the patch is an object
        raise HTTPException(422, "the patch must be a JSON object")
    merged["name"] = name
    stored_sink: Mapping[str, Any] = record.spec.get("sink") or {}
    sink_changes: Mapping[str, Any] = changes.get("sink") or {}
    given = _given_paths(sink_changes, stored_sink)
    _credentials_stay_with_their_url(stored_sink, merged.get("sink") or {}, given)
    if isinstance(merged.get("sink"), dict):  # MIC's own keys: checked as the request sent them
        merged["sink"] = dict(merged["sink"])  # may be the stored one: left as it is
        for key in _ROTATION_KEYS:
            merged["sink"].pop(key, None)
            if key in sink_changes:
                merged["sink"][key] = sink_changes[key]
    generated = _generate_if_asked(merged)
    keep_overlap = not (
        "previousSigningSecret" in sink_changes and sink_changes["previousSigningSecret"] is None
    )
    spec = _with_rotation(_validated(_without_nulls(merged)), stored_sink, keep_overlap=keep_overlap)
    stored = await service.subscriptions.replace(spec, expected_generation=record.generation)
    _warn_of_unserved_resources(service, spec, response)
    return _view(service, stored, generated)


def _credentials_stay_with_their_url(
    stored: Mapping[str, Any], updated: Mapping[str, Any], given: Collection[str]
) -> None:
    """Stored headers (an Authorization, say) and a TLS client key are not used with a new URL,
    nor with a new trusted CA or verified name (they choose which server gets them as surely as
    the URL does), unless sent again (`given`: the sink's keys the request set, `tls.<key>`
    nested)."""
    require_resent(
        stored,
        updated,
        given,
        destination=("url", "tls.caData", "tls.serverName"),
        credentials=("headers", "tls.clientKeyData"),
        where="sink",
    )


def _given_paths(sink_changes: Mapping[str, Any], stored_sink: Mapping[str, Any]) -> set[str]:
    """The sink keys a merge-patch sends again, with `tls.<key>` for those of a `tls` object in it.

    A merge-patch merges `headers`: a stored header the patch does not name stays. So the
    headers count as sent again only when the patch removes them all (`null`) or names every
    stored one (with a value, or null to drop it); `{}` or one new header re-sends nothing.
    """
    given = set(sink_changes)
    headers = sink_changes.get("headers")
    if isinstance(headers, Mapping) and not set(stored_sink.get("headers") or {}) <= set(headers):
        given.discard("headers")
    tls = sink_changes.get("tls")
    if isinstance(tls, Mapping):
        given.update(f"tls.{key}" for key in tls)
    return given


def _without_nulls(value: Any) -> Any:
    """Drop null members: in a stored spec null means "the default", and the default is implied."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


@router.delete(
    "/{name}",
    status_code=204,
    summary="Delete a subscription",
    description="Stops delivery and drops its undelivered events and dead letters.",
    response_class=Response,
    responses=NOT_FOUND,
)
async def delete_subscription(name: str, service: ServiceDep) -> Response:
    await service.subscriptions.delete(name)
    return Response(status_code=204)


@router.get(
    "/{name}/status",
    summary="Delivery status of a subscription",
    response_model=SubscriptionStatusView,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorBody, "description": "stored but not run: its spec is no longer valid"},
        503: {"model": ErrorBody, "description": "not started by the engine yet"},
    },
)
async def subscription_status(
    name: str, service: ServiceDep, principal: PrincipalDep
) -> SubscriptionStatusView:
    await service.store.get_subscription(name)
    status = _live_status(service, name)
    if status is not None and not principal.can_write:
        status = _for_viewer(status)
    if status is None:
        reason = service.engine.not_started(name)
        if reason is not None:
            raise HTTPException(409, f"subscription {name!r} is not running: {reason}; PUT a valid spec")
        raise HTTPException(503, f"subscription {name!r} is stored but not started yet; retry shortly")
    return status


@router.post(
    "/{name}/test",
    summary="Send a test ping to the sink",
    description=(
        "Posts one signed ping to the sink with its headers and timeout, in the subscription's wire "
        "form (a CloudEvent of type `io.mic.ping`: structured, a batch of one when batching, or "
        "binary; type `PING` in the `mic-v1` and `raw` formats), and says how the recipient "
        "answered. Nothing is queued or retried."
    ),
    response_model=PingResultView,
    responses=NOT_FOUND,
)
async def test_subscription(name: str, service: ServiceDep) -> PingResultView:
    await service.store.get_subscription(name)
    result = await service.engine.test(name)
    return PingResultView(
        ok=result.ok, status_code=result.status_code, error=result.error, duration_ms=result.duration_ms
    )


def dead_letter_view(row: DeliveryRow, *, with_object: bool, viewer: bool = False) -> DeadLetter:
    event = row.event
    return DeadLetter(
        id=row.id,
        event_id=event.event_id,
        cloud_event_id=stable_event_id(
            event.cluster, event.uid, event.resource_version, event.type, event.occasion
        ),
        cluster=event.cluster,
        resource=event.resource,
        namespace=event.namespace,
        name=event.name,
        type=str(event.type),
        resource_version=event.resource_version,
        attempts=row.attempts,
        last_error=masked_text(row.last_error) if viewer else row.last_error,
        created_at=row.created_at,
        superseded_at=row.superseded_at,
        object=redact_secret(event.object) if with_object else None,
    )


@router.get(
    "/{name}/dead-letters",
    summary="List dead letters",
    description=(
        "Events that could not be delivered (a permanent 4xx, or out of attempts or time), oldest "
        "first. Page with `afterId` = the previous page's `nextAfterId`. `include=object` adds each "
        "object (Secret data redacted)."
    ),
    response_model=DeadLetterList,
    response_model_exclude_none=False,
    responses=NOT_FOUND,
)
async def list_dead_letters(
    name: str,
    service: ServiceDep,
    principal: PrincipalDep,
    after_id: Annotated[
        int, Query(alias="afterId", ge=0, le=MAX_ROW_ID, description="only ids greater than this")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    include: Annotated[str | None, Query(description="`object` to include each object")] = None,
) -> DeadLetterList:
    if include not in (None, "", "object"):
        raise HTTPException(422, f"include must be 'object', not {include!r}")
    await service.store.get_subscription(name)
    rows = await service.engine.dead_letters(name, after_id=after_id, limit=limit)
    items = [
        dead_letter_view(row, with_object=include == "object", viewer=not principal.can_write) for row in rows
    ]
    return DeadLetterList(items=items, next_after_id=items[-1].id if len(items) == limit else None)


@router.post(
    "/{name}/resync",
    status_code=202,
    summary="Send every object of the subscription's view again",
    description=(
        "For a recipient that lost its own state: every object the subscription's filter "
        "matches now is queued as ADDED, with ids of their own (a recipient that drops ids it "
        "has seen keeps them), behind what is already queued; objects of clusters still listing "
        "follow when their list completes. Nothing is deleted first: drop what the resync does "
        "not mention once the backlog (`status`) is back to 0."
    ),
    response_model=ResyncResult,
    responses=NOT_FOUND,
)
async def resync(name: str, service: ServiceDep) -> ResyncResult:
    await service.store.get_subscription(name)
    await service.engine.resync(name)
    return ResyncResult(
        detail=f"every object in the view of {name!r} is queued as ADDED, behind what was queued"
    )


@router.post(
    "/{name}/dead-letters/replay",
    summary="Deliver dead letters again",
    description=(
        '`{"ids": [..]}` replays those dead letters, `{}` all of them; each gets fresh attempts. '
        "One whose object got a newer event delivered since (`supersededAt`), or has one still "
        "queued, is dropped instead of sent (`superseded`, counted as coalesced): it would leave "
        "the recipient with a state that is gone."
    ),
    response_model=ReplayResult,
    responses=NOT_FOUND,
)
async def replay_dead_letters(
    name: str, service: ServiceDep, body: Annotated[ReplayRequest | None, Body()] = None
) -> ReplayResult:
    await service.store.get_subscription(name)
    ids = body.ids if body is not None else None
    replayed = await service.engine.replay(name, ids)
    return ReplayResult(
        replayed=len(replayed.ids), superseded=replayed.superseded, not_found=replayed.not_found
    )

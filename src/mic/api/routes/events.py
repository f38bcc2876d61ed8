"""`GET /v1/events`: a live tail of changes as Server-Sent Events.

For debugging and for pull consumers that can afford to miss changes while disconnected: the
stream reads the hub directly (`Hub.events`), not the durable outbox, so nothing is stored
for it and nothing is replayed after a reconnect except the current objects, which every
new stream receives first (as ADDED) before the changes.

Each event is one SSE message: `id:` the CloudEvent id (stable across restarts, so a
consumer can deduplicate), `event:` the type (ADDED, MODIFIED, DELETED), `data:` the
CloudEvents structured JSON with Secret data redacted. A comment line every
`HEARTBEAT_SECONDS` keeps proxies from closing an idle stream and lets the server notice a
client that went away. When the response ends (the client disconnected, or the stream closed),
`TailResponse` closes the hub stream, which releases the watch, even if the body never started.

A tail opens watches in every cluster it covers, one per namespace it names, on behalf of
whoever holds a token (a viewer's too): so one tail names at most `MAX_TAIL_NAMESPACES`
namespaces (422 beyond), and MIC serves at most `ServiceSettings.max_event_tails` tails at once
(503 beyond; `TailSlots`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from mic.api.dependencies import get_service
from mic.api.models import ErrorBody
from mic.events import Event, EventType
from mic.events.encodings import cloudevent_json, stable_event_id
from mic.hub import EventStream, Hub, StreamOverflowError
from mic.kube.errors import AmbiguousResourceError, KubeError, UnknownResourceError
from mic.kube.selectors import LabelSelector
from mic.service.service import Service

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["events"])

ServiceDep = Annotated[Service, Depends(get_service)]

HEARTBEAT_SECONDS = 15.0
"""Idle time after which a comment line is sent."""

TAIL_MAX_WAIT = 5.0
"""Seconds a tail whose client stopped reading may hold back the informers (which also feed
every subscription) before its stream is closed: a tail is for looking, not a durable feed."""

RESOLVE_TIMEOUT = 5.0
"""How long the route waits for a cluster's discovery to say whether the resource exists."""

MAX_TAIL_NAMESPACES = 20
"""Most namespaces one tail may name: each is one more watch in every cluster it covers."""

TAILS_RETRY_AFTER = 30
"""Seconds a client turned away because MIC serves as many tails as it may is told to wait."""

SSE_EXAMPLE = (
    "id: 5f0c0d1e9a7b4c2d8e6f1a2b3c4d5e6f\n"
    "event: ADDED\n"
    'data: {"specversion":"1.0","id":"5f0c0d1e9a7b4c2d8e6f1a2b3c4d5e6f","type":"io.mic.resource.added",'
    '"source":"/clusters/eu-1/networking.k8s.io/v1/ingresses","subject":"shop/web",...}\n\n'
    ": heartbeat\n\n"
)


def _split(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated query values as one list, in order, without duplicates."""
    parts = (part.strip() for value in values or () for part in value.split(","))
    return list(dict.fromkeys(part for part in parts if part))


class TailSlots:
    """The tails one MIC (one hub) serves now, so that their number stays bounded.

    A tail takes a slot before its hub stream is made (`reserve`, so concurrent requests cannot
    all pass the check while one waits) and holds it as long as its stream is open: a stream
    closed for any reason (client gone, fell behind, hub closed) frees its slot.
    """

    def __init__(self) -> None:
        self._streams: set[EventStream] = set()
        self._reserved = 0

    def in_use(self) -> int:
        self._streams = {stream for stream in self._streams if not stream.closed}
        return len(self._streams) + self._reserved

    def reserve(self, limit: int) -> None:
        """Take a slot for a tail about to open; 503 when all `limit` are taken."""
        if self.in_use() >= limit:
            raise HTTPException(
                503,
                f"MIC already serves {limit} live tails, the most it serves at once "
                "(max_event_tails); close one or try again later, or use a subscription "
                "for a lasting feed",
                headers={"Retry-After": str(TAILS_RETRY_AFTER)},
            )
        self._reserved += 1

    def fill(self, stream: EventStream | None) -> None:
        """The reserved slot is now held by `stream` (None: the tail failed to open)."""
        self._reserved -= 1
        if stream is not None and not stream.closed:
            self._streams.add(stream)


_slots: weakref.WeakKeyDictionary[Hub, TailSlots] = weakref.WeakKeyDictionary()


def tail_slots(hub: Hub) -> TailSlots:
    """The tail slots of the MIC that owns `hub`."""
    slots = _slots.get(hub)
    if slots is None:
        slots = _slots[hub] = TailSlots()
    return slots


class TailResponse(StreamingResponse):
    """The SSE response; closes its hub stream when done, even if the body never started
    (a client gone before the first chunk), so neither the watch nor the slot leaks."""

    def __init__(self, stream: EventStream, content: AsyncIterator[bytes], headers: dict[str, Any]) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.stream.close()


def sse_message(event: Event) -> bytes:
    """One event as an SSE message; orjson writes no newline, so `data` is one line."""
    event_id = stable_event_id(event.cluster, event.uid, event.resource_version, event.type, event.occasion)
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (
        event_id.encode(),
        str(event.type).encode(),
        cloudevent_json(event, redact=True),
    )


async def _check_resource(service: Service, clusters: list[str], resource: str) -> None:
    """404 for a resource no cluster knows; clusters that cannot answer in time do not block."""

    async def one(cluster: str) -> None:
        try:
            async with asyncio.timeout(min(RESOLVE_TIMEOUT, service.settings.resource_sync_timeout)):
                await service.hub.resolve(cluster, resource)
        except (UnknownResourceError, AmbiguousResourceError):
            raise
        except (TimeoutError, KubeError) as error:  # unreachable or not added yet: stream anyway
            log.debug("events: cannot resolve %s in %s yet: %s", resource, cluster, error)

    await asyncio.gather(*(one(cluster) for cluster in clusters))


async def _stream_body(stream: EventStream, heartbeat: float) -> AsyncIterator[bytes]:
    try:
        yield b": stream open\n\n"
        while True:
            try:
                async with asyncio.timeout(heartbeat):
                    batch = await stream.next_batch()
            except TimeoutError:
                yield b": heartbeat\n\n"
                continue
            except StreamOverflowError as error:
                # A client that stopped reading must not hold back the informers that
                # deliver to subscriptions: its stream was closed, and it hears why last.
                yield b"event: error\ndata: %s\n\n" % orjson.dumps({"message": str(error)})
                return
            if batch is None:
                return
            yield b"".join(sse_message(event) for event in batch)
    finally:
        stream.close()


@router.get(
    "/events",
    summary="Live tail of changes (Server-Sent Events)",
    description=(
        "Streams matching changes as `text/event-stream` until the client disconnects: first the "
        "current objects as ADDED, then each change. Not durable: changes that happen while no "
        "client is connected are not kept for it (use a subscription for that). Each message: "
        "`id` = CloudEvent id, `event` = type, `data` = CloudEvents structured JSON with Secret "
        f"data redacted. A comment line every {HEARTBEAT_SECONDS:g} s while idle. A client that "
        f"stops reading holds back the clusters' informers for at most {TAIL_MAX_WAIT:g} s: "
        "then its stream ends with an `error` event saying so. A tail names at most "
        f"{MAX_TAIL_NAMESPACES} namespaces (or none: all of them), and MIC serves a bounded "
        "number of tails at once (`max_event_tails`, 64 by default): one more is answered 503 "
        "with `Retry-After`."
    ),
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {"example": SSE_EXAMPLE}}},
        404: {"model": ErrorBody, "description": "unknown cluster or resource"},
        422: {
            "model": ErrorBody,
            "description": (
                f"missing resource, invalid selector or type, more than {MAX_TAIL_NAMESPACES} namespaces"
            ),
        },
        503: {"model": ErrorBody, "description": "MIC already serves as many tails as it may"},
    },
)
async def tail_events(
    service: ServiceDep,
    resource: Annotated[str, Query(min_length=1, description="as kubectl names it: ingresses, ing, svc, …")],
    cluster: Annotated[
        list[str] | None, Query(description="cluster name(s), repeated or comma-separated; default all")
    ] = None,
    namespace: Annotated[
        list[str] | None,
        Query(
            description=(
                f"namespace(s), repeated or comma-separated, at most {MAX_TAIL_NAMESPACES}; default all"
            )
        ),
    ] = None,
    label_selector: Annotated[
        str | None, Query(alias="labelSelector", description="label selector, e.g. app=web")
    ] = None,
    cluster_selector: Annotated[
        str | None,
        Query(
            alias="clusterSelector",
            description=(
                "label selector over the clusters' labels, as a subscription's clusterSelector, "
                "e.g. env=prod; a cluster relabelled into it sends its objects as ADDED, one "
                "relabelled out as DELETED"
            ),
        ),
    ] = None,
    types: Annotated[
        str | None, Query(description="comma-separated event types; default all", examples=["ADDED,DELETED"])
    ] = None,
) -> StreamingResponse:
    clusters = _split(cluster) or None
    namespaces = _split(namespace) or None
    if namespaces is not None and len(namespaces) > MAX_TAIL_NAMESPACES:
        raise HTTPException(
            422,
            f"namespace: {len(namespaces)} namespaces named, a tail may name at most "
            f"{MAX_TAIL_NAMESPACES} (each one is a watch in every cluster): tail all namespaces "
            "(leave namespace out, and narrow with labelSelector) or name fewer",
        )
    selector = LabelSelector.parse(label_selector) if label_selector else None
    clusters_wanted = LabelSelector.parse(cluster_selector) if cluster_selector else None
    wanted: list[EventType] | None = None
    if types:
        try:
            wanted = [EventType(t.upper()) for t in _split([types])]
        except ValueError:
            raise HTTPException(
                422, f"types: {types!r} is not a comma-separated list of ADDED, MODIFIED, DELETED"
            ) from None
    for name in clusters or ():
        await service.store.get_cluster(name)  # NotFoundError -> 404
    await _check_resource(service, clusters or service.hub.cluster_names(selector=clusters_wanted), resource)
    slots = tail_slots(service.hub)
    slots.reserve(service.settings.max_event_tails)
    stream: EventStream | None = None
    try:
        stream = await service.hub.events(
            resource,
            clusters=clusters,
            namespaces=namespaces,
            label_selector=selector,
            types=wanted,
            max_wait=TAIL_MAX_WAIT,
            cluster_selector=clusters_wanted,
        )
    finally:
        slots.fill(stream)
    headers: dict[str, Any] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return TailResponse(stream, _stream_body(stream, HEARTBEAT_SECONDS), headers)

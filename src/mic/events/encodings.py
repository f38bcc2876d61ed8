"""How an `Event` is put on the wire: CloudEvents 1.0 (structured, binary, batch), the original
MIC envelope (`mic-v1`) and raw watch events.

This runs once per delivery attempt, so everything that does not depend on the event is
computed at import time and every request body is serialised by orjson exactly once (the
`mic-v1` envelope needs a second pass because the original carries the object as a JSON
*string*).

`Format` lives here rather than in `mic.routing.spec` because `mic.events` depends on nothing
else in MIC; routing imports it from here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote

import orjson

from mic.events.event import Event, EventType, KubeObject


class Format(StrEnum):
    """The body a subscription's recipient receives; the value is what the API and store use."""

    CLOUDEVENTS = "cloudevents"
    """CloudEvents 1.0 structured JSON (the default); the only format that can batch."""
    CLOUDEVENTS_BINARY = "cloudevents-binary"
    """CloudEvents 1.0 HTTP binary mode: attributes as `ce-*` headers, body = `data`."""
    MIC_V1 = "mic-v1"
    """The original MIC envelope, for receivers written against the Go tool."""
    RAW = "raw"
    """`{"type": ..., "object": ...}`, as a Kubernetes watch sends it."""


@dataclass(frozen=True, slots=True)
class EncodedRequest:
    """A ready-to-send HTTP body with the headers that describe it (content-type, `ce-*`).

    Signing headers are not included: they depend on the send time, so the sink adds them.
    """

    body: bytes
    headers: dict[str, str]


CLOUDEVENTS_CONTENT_TYPE: Final = "application/cloudevents+json; charset=utf-8"
CLOUDEVENTS_BATCH_CONTENT_TYPE: Final = "application/cloudevents-batch+json; charset=utf-8"
JSON_CONTENT_TYPE: Final = "application/json"
CLOUDEVENTS_TYPE_PREFIX: Final = "io.mic.resource."
REDACTED: Final = "<redacted>"
LAST_APPLIED_ANNOTATION: Final = "kubectl.kubernetes.io/last-applied-configuration"

CLOUDEVENT_EXTENSIONS: Final = (
    "cluster",
    "group",
    "version",
    "kind",
    "resource",
    "namespace",
    "name",
    "uid",
    "resourceversion",
)
"""The extension attributes MIC sets; all are valid CloudEvents names (a-z0-9, <= 20 chars)."""

CORE_GROUP: Final = "core"
"""How the core ("") API group is written in `source` and the `group` extension: CloudEvents
attributes are better non-empty, and an empty HTTP header is easily dropped on the way."""

MIC_V1_FIELDS: Final = (
    "app_environment_id",
    "app_environment_type",
    "app_event_id",
    "message",
    "resource_generations",
    "resource_id",
    "resource_name",
    "resource_type",
    "resource_version",
    "server_group_id",
    "trig_time",
    "type",
)
"""The original envelope's keys, in the (sorted) order Go's encoding/json wrote its map."""

_CE_TYPE: Final[Mapping[str, str]] = {t: CLOUDEVENTS_TYPE_PREFIX + t.value.lower() for t in EventType}
_STRUCTURED_HEADERS: Final = {"content-type": CLOUDEVENTS_CONTENT_TYPE}
_BATCH_HEADERS: Final = {"content-type": CLOUDEVENTS_BATCH_CONTENT_TYPE}
_JSON_HEADERS: Final = {"content-type": JSON_CONTENT_TYPE}
# CloudEvents HTTP binding 3.1.3.2: space, '"', '%' and anything outside U+0021..U+007E must be
# percent-encoded in ce-* header values. Kubernetes names never need it, so test first.
_HEADER_SAFE_CHARS: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')


def stable_event_id(
    cluster: str, uid: str, resource_version: str, type_: str, occasion: str | None = None
) -> str:
    """Return 32 hex chars identifying one change of one object in one cluster.

    Derived only from what Kubernetes says about the change, never from when or how often MIC
    saw it, so a relist after a restart or a redelivery produces the same id and recipients
    can deduplicate on it. NUL separates the parts: none of them can contain it.

    `occasion` (`Event.occasion`) sets apart an event MIC sends again on its own initiative (a
    snapshot, a view change) from earlier sends of the same change: it joins the hashed parts,
    so the id is new for that occasion yet the same across its retries. Without one the id is
    what it always was (a fifth part cannot make a four-part input: no part holds a NUL).
    """
    if occasion is None:
        data = f"{cluster}\0{uid}\0{resource_version}\0{type_}".encode()
    else:
        data = f"{cluster}\0{uid}\0{resource_version}\0{type_}\0{occasion}".encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _as_uuid(hex32: str) -> str:
    """The 32-hex id in the 8-4-4-4-12 form the original's `app_event_id` (a UUID) had."""
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


_second_cache: tuple[int, str] = (-1, "")


def _rfc3339(timestamp: float) -> str:
    """Unix seconds as RFC 3339 UTC with microseconds, e.g. `2024-05-01T12:00:00.250000Z`.

    strftime costs microseconds and events come in bursts within one second, so the formatted
    second is cached (one entry; a race between threads only costs a recomputation).
    """
    global _second_cache
    seconds = int(timestamp)
    micros = round((timestamp - seconds) * 1_000_000)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    cached_seconds, prefix = _second_cache
    if cached_seconds != seconds:
        prefix = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second_cache = (seconds, prefix)
    return f"{prefix}.{micros:06d}Z"


def _is_secret_object(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def _redacted_secret(obj: KubeObject) -> KubeObject:
    """A copy of a Secret whose values are hidden; only the containers we change are copied."""
    out = dict(obj)
    for field in ("data", "stringData"):
        values = obj.get(field)
        if isinstance(values, Mapping):
            out[field] = dict.fromkeys(values, REDACTED)
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping):
        annotations = metadata.get("annotations")
        # `kubectl apply` stores the whole manifest, data included, in this annotation.
        if isinstance(annotations, Mapping) and LAST_APPLIED_ANNOTATION in annotations:
            out["metadata"] = {
                **metadata,
                "annotations": {k: v for k, v in annotations.items() if k != LAST_APPLIED_ANNOTATION},
            }
    return out


def redact_secret(obj: KubeObject) -> KubeObject:
    """Hide a core v1 Secret's values; return any other object unchanged (the same dict).

    Every value of `data` and `stringData` becomes `"<redacted>"` (keys stay, so a recipient
    still sees which keys changed) and the `kubectl.kubernetes.io/last-applied-configuration`
    annotation is dropped because it holds the applied manifest, values in clear. The input is
    never mutated: objects are shared with the informer cache and other subscriptions.
    """
    return _redacted_secret(obj) if _is_secret_object(obj) else obj


def redact_secret_event(event: Event) -> Event:
    """The event of a core v1 Secret with its values hidden (`redact_secret`) in both states;
    any other event unchanged (the same one). What the delivery engine stores when none of
    the subscriptions an event may go to includes Secret data: the outbox then holds no
    Secret value at rest, as no recipient of it could be sent one."""
    if not (event.kind == "Secret" and not event.group):
        return event
    old = event.old_object
    return event.replace(
        object=_redacted_secret(event.object), old_object=_redacted_secret(old) if old is not None else None
    )


def _is_secret_event(event: Event) -> bool:
    """Whether the event is of a core Secret. The event's identity is trusted as well as the
    object's own kind/apiVersion, so that an object missing its type meta (as list items do)
    cannot slip through unredacted."""
    if event.kind == "Secret" and not event.group:
        return True
    if event.object_json is not None and b'"Secret"' not in event.object_json:
        return False  # no object of kind Secret encodes without that string: no need to decode
    return _is_secret_object(event.object)


def _objects(event: Event, redact: bool) -> tuple[KubeObject, KubeObject | None]:
    """The event's object and old object as this recipient may see them."""
    obj, old = event.object, event.old_object
    if not redact:
        return obj, old
    if _is_secret_event(event):
        return _redacted_secret(obj), (_redacted_secret(old) if old is not None else None)
    return obj, (redact_secret(old) if old is not None else None)


def _json_values(event: Event, redact: bool) -> tuple[Any, Any]:
    """`_objects` for a body orjson writes: where the event carries its states' JSON bytes
    (`Event.object_json`, `Event.old_json`) and nothing must be hidden, those bytes are spliced
    in as they are (`orjson.Fragment`) instead of encoding the objects again.

    Redaction looks inside objects, so a Secret, or an old state whose bytes so much as name
    one, takes the decoded path.
    """
    obj_json, old_json = event.object_json, event.old_json
    if obj_json is None or (redact and _is_secret_event(event)):
        return _objects(event, redact)
    obj: Any = orjson.Fragment(obj_json)
    if old_json is None:
        old = event.old_object
        return obj, (redact_secret(old) if redact and old is not None else old)
    if redact and b'"Secret"' in old_json:
        return obj, redact_secret(event.old_object or {})
    return obj, orjson.Fragment(old_json)


def _data(obj: Any, old: Any) -> dict[str, Any]:
    return {"object": obj} if old is None else {"object": obj, "oldObject": old}


def _attributes(event: Event) -> dict[str, str]:
    """Every CloudEvents context attribute except `datacontenttype`, as strings.

    `namespace` is left out for cluster-scoped objects (CloudEvents treats an absent attribute
    as unset; an empty one would be a value).
    """
    group = event.group or CORE_GROUP
    attributes = {
        "specversion": "1.0",
        "id": stable_event_id(event.cluster, event.uid, event.resource_version, event.type, event.occasion),
        "source": f"/clusters/{event.cluster}/{group}/{event.version}/{event.resource}",
        "type": _CE_TYPE[event.type],
        "subject": event.key,
        "time": _rfc3339(event.observed_at),
        "cluster": event.cluster,
        "group": group,
        "version": event.version,
        "kind": event.kind,
        "resource": event.resource,
        "namespace": event.namespace or "",
        "name": event.name,
        "uid": event.uid,
        "resourceversion": event.resource_version,
    }
    if not event.namespace:
        del attributes["namespace"]
    return attributes


def cloudevent(event: Event, *, redact: bool) -> dict[str, Any]:
    """The event as a CloudEvents 1.0 structured-mode JSON object (not yet serialised).

    `data` is `{"object": ..., "oldObject": ...}`; `oldObject` only when MIC knew it.
    `redact` hides Secret values (see `redact_secret`).
    """
    return _cloudevent(event, *_objects(event, redact))


def cloudevent_json(event: Event, *, redact: bool) -> bytes:
    """`cloudevent`, serialised (with the objects' JSON bytes spliced in where the event has them)."""
    return orjson.dumps(_cloudevent(event, *_json_values(event, redact)))


def _cloudevent(event: Event, obj: Any, old: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = _attributes(event)
    attributes["datacontenttype"] = JSON_CONTENT_TYPE
    attributes["data"] = _data(obj, old)
    return attributes


def _binary(event: Event, redact: bool) -> EncodedRequest:
    obj, old = _json_values(event, redact)
    attributes = _attributes(event)
    # Kubernetes names and our timestamps never need escaping; check all values at C speed.
    joined = "".join(attributes.values())
    if not (joined.isascii() and joined.isprintable()) or " " in joined or '"' in joined or "%" in joined:
        attributes = {name: quote(value, safe=_HEADER_SAFE_CHARS) for name, value in attributes.items()}
    # datacontenttype travels as Content-Type and MUST NOT also be a ce- header (3.1.1).
    headers = {"ce-" + name: value for name, value in attributes.items()}
    headers["content-type"] = JSON_CONTENT_TYPE
    return EncodedRequest(orjson.dumps(_data(obj, old)), headers)


def mic_v1_envelope(event: Event, *, redact: bool) -> dict[str, str]:
    """The original MIC envelope (every value a string), keys in the original's order.

    Differences from the Go tool, on purpose: `app_event_id` is the stable id (the original
    sent a random UUID per send), `resource_generations` is decimal (the original's
    `string(int)` made a rune), `trig_time` is the observed time (the original sent ""), and
    `app_environment_id` is the real cluster name.
    """
    obj, _ = _objects(event, redact)
    metadata = obj.get("metadata")
    generation = metadata.get("generation") if isinstance(metadata, Mapping) else None
    return {
        "app_environment_id": event.cluster,
        "app_environment_type": "Kubernetes",
        "app_event_id": _as_uuid(
            stable_event_id(event.cluster, event.uid, event.resource_version, event.type, event.occasion)
        ),
        "message": orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode(),
        "resource_generations": str(generation) if isinstance(generation, int) else "0",
        "resource_id": event.uid,
        "resource_name": event.name,
        "resource_type": event.kind,
        "resource_version": event.resource_version,
        "server_group_id": event.namespace or "",
        "trig_time": _rfc3339(event.observed_at),
        "type": event.type,  # a str; orjson writes the enum's value
    }


def encode(events: Sequence[Event], fmt: Format, *, batch: bool, redact: bool) -> EncodedRequest:
    """Build the HTTP request body and headers that deliver `events` in `fmt`.

    Without `batch` exactly one event is sent per request. `batch` is only defined for
    CloudEvents structured (the JSON batch format, `application/cloudevents-batch+json`), and
    a batch may hold any number of events, none included. Anything else is a programming error
    in the caller and raises ValueError.
    """
    if type(fmt) is not Format:
        fmt = Format(fmt)  # also accepts the plain string a store or API hands over
    if batch:
        if fmt is not Format.CLOUDEVENTS:
            raise _batching_undefined(fmt)
        body = orjson.dumps([_cloudevent(event, *_json_values(event, redact)) for event in events])
        return EncodedRequest(body, dict(_BATCH_HEADERS))
    if len(events) != 1:
        raise ValueError(f"without batching a request carries exactly one event, got {len(events)}")
    event = events[0]
    if fmt is Format.CLOUDEVENTS:
        return EncodedRequest(cloudevent_json(event, redact=redact), dict(_STRUCTURED_HEADERS))
    if fmt is Format.CLOUDEVENTS_BINARY:
        return _binary(event, redact)
    if fmt is Format.MIC_V1:
        return EncodedRequest(orjson.dumps(mic_v1_envelope(event, redact=redact)), dict(_JSON_HEADERS))
    if fmt is Format.RAW:
        obj, _ = _json_values(event, redact)
        return EncodedRequest(orjson.dumps({"type": event.type, "object": obj}), dict(_JSON_HEADERS))
    raise AssertionError(f"unhandled format {fmt!r}")  # pragma: no cover - Format(fmt) checked it


def _batching_undefined(fmt: Format) -> ValueError:
    return ValueError(f"batching is only defined for format {Format.CLOUDEVENTS.value!r}, not {fmt.value!r}")


PING_TYPE: Final = "io.mic.ping"
"""The CloudEvents type of a test ping (`encode_ping`)."""


def encode_ping(subscription: str, ping_id: str, at: float, fmt: Format, *, batch: bool) -> EncodedRequest:
    """A test ping to a subscription's sink, in the shape its recipient parses.

    A ping proves that the recipient accepts what MIC will send, so it takes the subscription's
    wire form: a one-element batch array when batching is on, `ce-*` headers in binary mode, an
    envelope with `type` "PING" for the `mic-v1` and `raw` formats (whose receivers know no
    CloudEvents). `data` (or `object`, or `message`) is `{"subscription": name}`.
    """
    if type(fmt) is not Format:
        fmt = Format(fmt)
    data = {"subscription": subscription}
    attributes = {
        "specversion": "1.0",
        "id": ping_id,
        "source": "/mic",
        "type": PING_TYPE,
        "time": _rfc3339(at),
    }
    if fmt is Format.CLOUDEVENTS:
        structured = {**attributes, "datacontenttype": JSON_CONTENT_TYPE, "data": data}
        if batch:
            return EncodedRequest(orjson.dumps([structured]), dict(_BATCH_HEADERS))
        return EncodedRequest(orjson.dumps(structured), dict(_STRUCTURED_HEADERS))
    if batch:
        raise _batching_undefined(fmt)
    if fmt is Format.CLOUDEVENTS_BINARY:
        headers = {"ce-" + name: value for name, value in attributes.items()}
        headers["content-type"] = JSON_CONTENT_TYPE
        return EncodedRequest(orjson.dumps(data), headers)
    if fmt is Format.MIC_V1:
        envelope = {
            "app_environment_id": "",
            "app_environment_type": "Kubernetes",
            "app_event_id": ping_id,
            "message": orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(),
            "resource_generations": "0",
            "resource_id": "",
            "resource_name": subscription,
            "resource_type": "Ping",
            "resource_version": "",
            "server_group_id": "",
            "trig_time": _rfc3339(at),
            "type": "PING",
        }
        return EncodedRequest(orjson.dumps(envelope), dict(_JSON_HEADERS))
    if fmt is Format.RAW:
        return EncodedRequest(orjson.dumps({"type": "PING", "object": data}), dict(_JSON_HEADERS))
    raise AssertionError(f"unhandled format {fmt!r}")  # pragma: no cover - Format(fmt) checked it

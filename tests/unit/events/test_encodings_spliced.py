"""Bodies built from an event's JSON bytes (compact caches) equal those built from its dicts."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from encoding_samples import ingress_event, ingress_object, secret_event, secret_object

from mic.events import Event, Format, encode
from mic.events.encodings import cloudevent, cloudevent_json

CLEAR_VALUES = (b"aHVudGVyMg==", b"YWRtaW4=", b"clear-text")


def with_bytes(event: Event) -> Event:
    """The event as a compact cache's informer makes it: both states also as JSON bytes."""
    assert event.old_object is not None
    return event.replace(
        old_object=None, old_json=orjson.dumps(event.old_object), object_json=orjson.dumps(event.object)
    )


@pytest.mark.parametrize("fmt", [Format.CLOUDEVENTS, Format.CLOUDEVENTS_BINARY, Format.RAW])
@pytest.mark.parametrize("redact", [True, False])
def test_spliced_bodies_decode_to_the_same_documents(fmt: Format, redact: bool) -> None:
    plain = encode([ingress_event()], fmt, batch=False, redact=redact)
    spliced = encode([with_bytes(ingress_event())], fmt, batch=False, redact=redact)
    assert orjson.loads(spliced.body) == orjson.loads(plain.body)
    assert spliced.headers == plain.headers


def test_a_batch_splices_every_event() -> None:
    events = [ingress_event(), ingress_event(object=ingress_object("12346", "b.example.com"))]
    plain = encode(events, Format.CLOUDEVENTS, batch=True, redact=True)
    spliced = encode([with_bytes(e) for e in events], Format.CLOUDEVENTS, batch=True, redact=True)
    assert orjson.loads(spliced.body) == orjson.loads(plain.body)


def test_the_bytes_are_spliced_as_they_are() -> None:
    # Bytes that differ from the dict in key order only: the body carries the bytes.
    event = ingress_event(old_object=None).replace(
        object_json=orjson.dumps(dict(reversed(list(ingress_object().items()))))
    )
    body = cloudevent_json(event, redact=True)
    assert b'"object":{"spec":' in body
    assert orjson.loads(body) == cloudevent(event, redact=True)


@pytest.mark.parametrize("fmt", [Format.CLOUDEVENTS, Format.CLOUDEVENTS_BINARY, Format.RAW])
def test_secrets_are_redacted_even_with_bytes_at_hand(fmt: Format) -> None:
    body = encode([with_bytes(secret_event())], fmt, batch=False, redact=True).body
    for value in CLEAR_VALUES:
        assert value not in body
    opted_in = encode([with_bytes(secret_event())], fmt, batch=False, redact=False).body
    assert b"clear-text" in opted_in


def test_an_old_state_that_names_a_secret_is_redacted() -> None:
    # A lookalike resource whose old state is a core Secret (its bytes are not spliced).
    old: dict[str, Any] = secret_object("6")
    event = ingress_event(old_object=None).replace(
        object_json=orjson.dumps(ingress_object()), old_json=orjson.dumps(old)
    )
    body = cloudevent_json(event, redact=True)
    for value in CLEAR_VALUES:
        assert value not in body
    assert orjson.loads(body)["data"]["oldObject"]["data"] == {"password": "<redacted>", "user": "<redacted>"}


@pytest.mark.parametrize("fmt", [Format.CLOUDEVENTS, Format.CLOUDEVENTS_BINARY, Format.RAW])
def test_events_left_to_their_bytes_encode_the_same_and_secrets_stay_hidden(fmt: Format) -> None:
    # As the delivery engine queues them (`Event.without_decoded`).
    plain = encode([ingress_event()], fmt, batch=False, redact=True)
    slim = encode([with_bytes(ingress_event()).without_decoded()], fmt, batch=False, redact=True)
    assert orjson.loads(slim.body) == orjson.loads(plain.body)
    # A core Secret under a lookalike resource: found in the bytes, decoded and redacted.
    lookalike = secret_event().replace(kind="Opaque", group="example.com")
    body = encode([with_bytes(lookalike).without_decoded()], fmt, batch=False, redact=True).body
    for value in CLEAR_VALUES:
        assert value not in body

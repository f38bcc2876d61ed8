"""`encode_ping`: a test ping in the wire form the subscription's recipient parses."""

from __future__ import annotations

import orjson
import pytest

from mic.events import Format, encode_ping

AT = 1_700_000_000.25


def test_structured_ping_is_one_cloudevent() -> None:
    request = encode_ping("hooks", "p-1", AT, Format.CLOUDEVENTS, batch=False)
    assert request.headers == {"content-type": "application/cloudevents+json; charset=utf-8"}
    assert orjson.loads(request.body) == {
        "specversion": "1.0",
        "id": "p-1",
        "source": "/mic",
        "type": "io.mic.ping",
        "time": "2023-11-14T22:13:20.250000Z",
        "datacontenttype": "application/json",
        "data": {"subscription": "hooks"},
    }


def test_batching_subscription_gets_a_batch_of_one() -> None:
    request = encode_ping("hooks", "p-1", AT, Format.CLOUDEVENTS, batch=True)
    assert request.headers == {"content-type": "application/cloudevents-batch+json; charset=utf-8"}
    (ping,) = orjson.loads(request.body)
    assert ping["type"] == "io.mic.ping"
    assert ping["data"] == {"subscription": "hooks"}


def test_binary_ping_carries_attributes_as_headers() -> None:
    request = encode_ping("hooks", "p-1", AT, Format.CLOUDEVENTS_BINARY, batch=False)
    assert request.headers == {
        "ce-specversion": "1.0",
        "ce-id": "p-1",
        "ce-source": "/mic",
        "ce-type": "io.mic.ping",
        "ce-time": "2023-11-14T22:13:20.250000Z",
        "content-type": "application/json",
    }
    assert orjson.loads(request.body) == {"subscription": "hooks"}


def test_mic_v1_ping_is_an_envelope_of_type_ping() -> None:
    request = encode_ping("hooks", "p-1", AT, Format.MIC_V1, batch=False)
    envelope = orjson.loads(request.body)
    assert envelope["type"] == "PING"
    assert envelope["app_event_id"] == "p-1"
    assert envelope["resource_name"] == "hooks"
    assert orjson.loads(envelope["message"]) == {"subscription": "hooks"}
    assert all(isinstance(value, str) for value in envelope.values())  # as every mic-v1 value


def test_raw_ping_is_a_watch_like_line() -> None:
    request = encode_ping("hooks", "p-1", AT, "raw", batch=False)  # type: ignore[arg-type]
    assert orjson.loads(request.body) == {"type": "PING", "object": {"subscription": "hooks"}}
    assert request.headers == {"content-type": "application/json"}


@pytest.mark.parametrize("fmt", [Format.CLOUDEVENTS_BINARY, Format.MIC_V1, Format.RAW])
def test_batch_only_for_structured(fmt: Format) -> None:
    with pytest.raises(ValueError, match="batching is only defined"):
        encode_ping("hooks", "p-1", AT, fmt, batch=True)

"""CloudEvents 1.0 encodings: structured (golden), binary (ce-* headers), batch, and the rules
the spec sets for attribute names and required attributes."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import unquote

import orjson
import pytest
from encoding_samples import OBSERVED_AT, UID, ingress_event, ingress_object, namespace_event, secret_event

from mic.events import Event, EventType, Format, cloudevent, encode, stable_event_id
from mic.events.encodings import CLOUDEVENT_EXTENSIONS

ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,20}$")  # CloudEvents 1.0 "Attribute Naming Convention"
REQUIRED = ("id", "source", "specversion", "type")
CORE_ATTRIBUTES = {*REQUIRED, "datacontenttype", "dataschema", "subject", "time"}
INGRESS_ID = "d35096eeae16cf36ee927f4c8763da60"

GOLDEN_INGRESS = {
    "specversion": "1.0",
    "id": INGRESS_ID,
    "source": "/clusters/prod-eu/networking.k8s.io/v1/ingresses",
    "type": "io.mic.resource.modified",
    "subject": "default/web",
    "time": "2024-05-01T12:00:00.250000Z",
    "cluster": "prod-eu",
    "group": "networking.k8s.io",
    "version": "v1",
    "kind": "Ingress",
    "resource": "ingresses",
    "namespace": "default",
    "name": "web",
    "uid": UID,
    "resourceversion": "12345",
    "datacontenttype": "application/json",
    "data": {
        "object": ingress_object(),
        "oldObject": ingress_object("12300", "old.example.com"),
    },
}


def test_structured_event_is_exactly_the_documented_shape(ingress: Event) -> None:
    request = encode([ingress], Format.CLOUDEVENTS, batch=False, redact=True)
    assert request.headers == {"content-type": "application/cloudevents+json; charset=utf-8"}
    assert orjson.loads(request.body) == GOLDEN_INGRESS
    assert cloudevent(ingress, redact=True) == GOLDEN_INGRESS


def test_the_format_may_be_given_as_its_string_value(ingress: Event) -> None:
    as_string = encode([ingress], "cloudevents", batch=False, redact=True)  # type: ignore[arg-type]
    assert as_string == encode([ingress], Format.CLOUDEVENTS, batch=False, redact=True)


def test_id_is_the_stable_id_in_every_cloudevents_mode(ingress: Event) -> None:
    assert stable_event_id("prod-eu", UID, "12345", EventType.MODIFIED) == INGRESS_ID
    binary = encode([ingress], Format.CLOUDEVENTS_BINARY, batch=False, redact=True)
    assert binary.headers["ce-id"] == INGRESS_ID
    batch = encode([ingress], Format.CLOUDEVENTS, batch=True, redact=True)
    assert orjson.loads(batch.body)[0]["id"] == INGRESS_ID


@pytest.mark.parametrize("event", [ingress_event(), secret_event(), namespace_event()], ids=str)
def test_attributes_follow_the_cloudevents_rules(event: Event) -> None:
    ce = cloudevent(event, redact=True)
    for name in REQUIRED:
        assert isinstance(ce[name], str)
        assert ce[name], f"{name} must be a non-empty string"
    assert ce["specversion"] == "1.0"
    assert ce["source"].startswith("/")  # a URI-reference
    for name in ce:
        if name != "data":
            assert ATTRIBUTE_NAME.match(name), f"{name!r} is not a valid CloudEvents attribute name"
            assert isinstance(ce[name], str)
    assert set(ce) - CORE_ATTRIBUTES - {"data"} <= set(CLOUDEVENT_EXTENSIONS)
    # RFC 3339 with a UTC designator
    assert datetime.fromisoformat(ce["time"]).timestamp() == pytest.approx(OBSERVED_AT)
    assert ce["time"].endswith("Z")


def test_every_documented_extension_name_is_valid() -> None:
    for name in CLOUDEVENT_EXTENSIONS:
        assert ATTRIBUTE_NAME.match(name)
        assert name not in CORE_ATTRIBUTES | {"data", "data_base64"}


@pytest.mark.parametrize(
    ("type_", "ce_type"),
    [
        (EventType.ADDED, "io.mic.resource.added"),
        (EventType.MODIFIED, "io.mic.resource.modified"),
        (EventType.DELETED, "io.mic.resource.deleted"),
    ],
)
def test_type_names_the_change(type_: EventType, ce_type: str) -> None:
    assert cloudevent(ingress_event(type=type_), redact=True)["type"] == ce_type


def test_core_group_and_cluster_scoped_objects() -> None:
    ce = cloudevent(namespace_event(), redact=True)
    assert ce["source"] == "/clusters/prod-eu/core/v1/namespaces"
    assert ce["group"] == "core"
    assert ce["subject"] == "shop"
    assert "namespace" not in ce  # absent, not empty: there is no namespace
    assert ce["data"] == {"object": namespace_event().object}  # no oldObject when unknown


def test_time_rounds_to_microseconds_and_carries_into_the_next_second() -> None:
    assert cloudevent(ingress_event(observed_at=1714564800.0), redact=True)["time"] == (
        "2024-05-01T12:00:00.000000Z"
    )
    assert cloudevent(ingress_event(observed_at=1714564800.9999999), redact=True)["time"] == (
        "2024-05-01T12:00:01.000000Z"
    )
    assert cloudevent(ingress_event(observed_at=1714564861.5), redact=True)["time"] == (
        "2024-05-01T12:01:01.500000Z"
    )


def test_binary_mode_puts_attributes_in_ce_headers_and_data_in_the_body(ingress: Event) -> None:
    request = encode([ingress], Format.CLOUDEVENTS_BINARY, batch=False, redact=True)
    expected_headers = {"content-type": "application/json"} | {
        f"ce-{name}": value
        for name, value in GOLDEN_INGRESS.items()
        if name not in ("data", "datacontenttype")
    }
    assert request.headers == expected_headers
    assert "ce-datacontenttype" not in request.headers  # it travels as Content-Type (spec 3.1.1)
    assert orjson.loads(request.body) == GOLDEN_INGRESS["data"]


def test_binary_header_values_are_percent_encoded_when_needed() -> None:
    event = ingress_event(cluster="zone a", name='we"b%', namespace="é")
    headers = encode([event], Format.CLOUDEVENTS_BINARY, batch=False, redact=True).headers
    for value in headers.values():
        assert value.isascii()
        assert value.isprintable()
        assert " " not in value
        assert '"' not in value
    assert headers["ce-cluster"] == "zone%20a"
    assert headers["ce-name"] == "we%22b%25"
    assert headers["ce-namespace"] == "%C3%A9"
    assert unquote(headers["ce-subject"]) == 'é/we"b%'
    assert headers["ce-time"] == "2024-05-01T12:00:00.250000Z"  # ':' needs no encoding


def test_binary_mode_without_old_object_and_for_cluster_scoped_objects() -> None:
    request = encode([namespace_event()], Format.CLOUDEVENTS_BINARY, batch=False, redact=True)
    assert "ce-namespace" not in request.headers
    assert request.headers["ce-group"] == "core"
    assert orjson.loads(request.body) == {"object": namespace_event().object}


def test_batch_is_a_json_array_of_structured_events() -> None:
    events = [ingress_event(), secret_event(), namespace_event()]
    request = encode(events, Format.CLOUDEVENTS, batch=True, redact=True)
    assert request.headers == {"content-type": "application/cloudevents-batch+json; charset=utf-8"}
    body = orjson.loads(request.body)
    assert body == [cloudevent(event, redact=True) for event in events]
    assert body[0] == GOLDEN_INGRESS
    assert {event["specversion"] for event in body} == {"1.0"}  # one specversion per batch


def test_batches_of_one_and_of_none_are_valid() -> None:
    one = encode([ingress_event()], Format.CLOUDEVENTS, batch=True, redact=True)
    assert orjson.loads(one.body) == [GOLDEN_INGRESS]
    assert orjson.loads(encode([], Format.CLOUDEVENTS, batch=True, redact=True).body) == []


@pytest.mark.parametrize("fmt", [Format.CLOUDEVENTS_BINARY, Format.MIC_V1, Format.RAW])
def test_only_structured_cloudevents_can_batch(fmt: Format) -> None:
    with pytest.raises(ValueError, match="batching is only defined for format 'cloudevents'"):
        encode([ingress_event()], fmt, batch=True, redact=True)


@pytest.mark.parametrize("fmt", list(Format))
@pytest.mark.parametrize("count", [0, 2])
def test_without_batching_a_request_carries_exactly_one_event(fmt: Format, count: int) -> None:
    with pytest.raises(ValueError, match=f"exactly one event, got {count}"):
        encode([ingress_event()] * count, fmt, batch=False, redact=True)


def test_unknown_format_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a valid Format"):
        encode([ingress_event()], "xml", batch=False, redact=True)  # type: ignore[arg-type]


def test_format_values_are_the_documented_ones() -> None:
    assert [f.value for f in Format] == ["cloudevents", "cloudevents-binary", "mic-v1", "raw"]

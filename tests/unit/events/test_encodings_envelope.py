"""The original MIC envelope (`mic-v1`) and the raw watch-event format."""

from __future__ import annotations

import uuid

import orjson
import pytest
from encoding_samples import UID, ingress_event, ingress_object, namespace_event, secret_event

from mic.events import Event, EventType, Format, encode, mic_v1_envelope, stable_event_id
from mic.events.encodings import MIC_V1_FIELDS

# The keys parseAndSendData (pkg/kubeController) put in its map[string]string, sorted as Go's
# encoding/json writes a map.
ORIGINAL_FIELDS = sorted(
    [
        "app_event_id",
        "resource_type",
        "resource_name",
        "resource_generations",
        "resource_id",
        "app_environment_id",
        "app_environment_type",
        "type",
        "trig_time",
        "server_group_id",
        "resource_version",
        "message",
    ]
)


def _v1(event: Event) -> tuple[dict[str, str], dict[str, str], bytes]:
    request = encode([event], Format.MIC_V1, batch=False, redact=True)
    return orjson.loads(request.body), request.headers, request.body


def test_envelope_is_exactly_the_documented_shape(ingress: Event) -> None:
    body, headers, raw = _v1(ingress)
    assert headers == {"content-type": "application/json"}
    assert body == {
        "app_environment_id": "prod-eu",
        "app_environment_type": "Kubernetes",
        "app_event_id": "d35096ee-ae16-cf36-ee92-7f4c8763da60",
        "message": orjson.dumps(ingress_object(), option=orjson.OPT_INDENT_2).decode(),
        "resource_generations": "3",
        "resource_id": UID,
        "resource_name": "web",
        "resource_type": "Ingress",
        "resource_version": "12345",
        "server_group_id": "default",
        "trig_time": "2024-05-01T12:00:00.250000Z",
        "type": "MODIFIED",
    }
    assert list(body) == ORIGINAL_FIELDS  # same keys, in the order the original sent them
    assert raw.startswith(b'{"app_environment_id":"prod-eu",')


def test_envelope_fields_match_the_original_and_are_all_strings() -> None:
    assert list(MIC_V1_FIELDS) == ORIGINAL_FIELDS
    for event in (ingress_event(), secret_event(), namespace_event()):
        body, _, _ = _v1(event)
        assert list(body) == ORIGINAL_FIELDS
        assert all(isinstance(value, str) for value in body.values())


def test_message_is_the_object_as_indented_json(ingress: Event) -> None:
    body, _, _ = _v1(ingress)
    assert orjson.loads(body["message"]) == ingress_object()
    assert body["message"].startswith('{\n  "apiVersion": "networking.k8s.io/v1",\n  "kind": "Ingress"')


def test_app_event_id_is_the_stable_id_as_a_uuid(ingress: Event) -> None:
    body, _, _ = _v1(ingress)
    parsed = uuid.UUID(body["app_event_id"])
    assert parsed.hex == stable_event_id("prod-eu", UID, "12345", EventType.MODIFIED)
    assert str(parsed) == body["app_event_id"]
    assert _v1(ingress_event())[0]["app_event_id"] == body["app_event_id"]


def test_missing_generation_namespace_and_other_types() -> None:
    body, _, _ = _v1(namespace_event())
    assert body["resource_generations"] == "0"  # ObjectMeta.Generation's zero value
    assert body["server_group_id"] == ""  # cluster-scoped: the original's empty Namespace
    assert body["type"] == "ADDED"
    deleted, _, _ = _v1(ingress_event(type=EventType.DELETED))
    assert deleted["type"] == "DELETED"


def test_envelope_function_equals_the_encoded_body(ingress: Event) -> None:
    assert mic_v1_envelope(ingress, redact=True) == _v1(ingress)[0]


@pytest.mark.parametrize("type_", list(EventType))
def test_raw_is_the_watch_event(type_: EventType) -> None:
    event = ingress_event(type=type_)
    request = encode([event], Format.RAW, batch=False, redact=True)
    assert request.headers == {"content-type": "application/json"}
    assert orjson.loads(request.body) == {"type": type_.value, "object": ingress_object()}
    assert request.body.startswith(b'{"type":"%s","object":{' % type_.value.encode())

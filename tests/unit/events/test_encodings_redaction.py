"""Secret values never leave MIC unless a subscription opted in, in any format."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from encoding_samples import ingress_event, ingress_object, secret_event, secret_object

from mic.events import Event, Format, cloudevent, encode, redact_secret

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
CLEAR_VALUES = (b"aHVudGVyMg==", b"YWRtaW4=", b"clear-text")


def _redacted(obj: dict[str, Any]) -> dict[str, Any]:
    expected = copy.deepcopy(obj)
    expected["data"] = {"password": "<redacted>", "user": "<redacted>"}
    expected["stringData"] = {"token": "<redacted>"}
    del expected["metadata"]["annotations"][LAST_APPLIED]
    return expected


def test_secret_values_are_replaced_and_keys_kept() -> None:
    original = secret_object()
    redacted = redact_secret(original)
    assert redacted == _redacted(secret_object())
    assert redacted["metadata"]["annotations"] == {"team": "payments"}
    assert redacted["type"] == "Opaque"


def test_the_input_is_never_mutated() -> None:
    original = secret_object()
    snapshot = copy.deepcopy(original)
    redact_secret(original)
    encode([secret_event(object=original)], Format.CLOUDEVENTS, batch=False, redact=True)
    assert original == snapshot


def test_secret_without_values_or_annotations() -> None:
    bare = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "empty"}}
    assert redact_secret(bare) == bare
    only_data = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "data": {"k": "dg=="}}
    assert redact_secret(only_data)["data"] == {"k": "<redacted>"}


def test_other_kinds_are_returned_unchanged() -> None:
    ingress = ingress_object()
    assert redact_secret(ingress) is ingress
    lookalike = {"apiVersion": "example.com/v1", "kind": "Secret", "data": {"k": "v"}}
    assert redact_secret(lookalike) is lookalike  # only the core v1 Secret


@pytest.mark.parametrize("fmt", list(Format))
def test_every_format_redacts_secrets(fmt: Format) -> None:
    body = encode([secret_event()], fmt, batch=False, redact=True).body
    for value in CLEAR_VALUES:
        assert value not in body
    assert b"<redacted>" in body


def test_object_and_old_object_are_both_redacted() -> None:
    data = cloudevent(secret_event(), redact=True)["data"]
    assert data["object"] == _redacted(secret_object())
    assert data["oldObject"] == _redacted(secret_object("6"))


def test_opting_in_sends_values_unchanged(secret: Event) -> None:
    assert cloudevent(secret, redact=False)["data"] == {
        "object": secret_object(),
        "oldObject": secret_object("6"),
    }
    body = encode([secret], Format.MIC_V1, batch=False, redact=False).body
    assert orjson.loads(orjson.loads(body)["message"]) == secret_object()


def test_a_secret_missing_its_type_meta_is_still_redacted() -> None:
    # List items come without kind/apiVersion; the event's identity is enough.
    obj = secret_object()
    del obj["kind"], obj["apiVersion"]
    data = cloudevent(secret_event(object=obj, old_object=None), redact=True)["data"]
    assert data["object"]["data"] == {"password": "<redacted>", "user": "<redacted>"}
    assert "oldObject" not in data


def test_non_secret_events_are_untouched_by_redaction() -> None:
    event = ingress_event()
    assert cloudevent(event, redact=True)["data"] == cloudevent(event, redact=False)["data"]
    assert cloudevent(event, redact=True)["data"]["object"] is event.object

"""The id a lane sends with (`Pending.event_id`: Standard Webhooks `webhook-id`, batch ids)
follows the event's occasion, as the body's id does."""

from __future__ import annotations

import orjson

from mic.delivery.lane import Pending, _batch_id, object_key
from mic.events import Event, EventType, Format, encode, stable_event_id


def _event(occasion: str | None = None) -> Event:
    obj = {"metadata": {"name": "web", "namespace": "ns", "uid": "u-web", "resourceVersion": "7"}}
    return Event(
        EventType.ADDED,
        "c1",
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "ns",
        "web",
        "u-web",
        "7",
        obj,
        occasion=occasion,
    )


def _pending(id_: int, event: Event) -> Pending:
    return Pending(id=id_, object_key=object_key(event), event=event, created_at=0.0, seq=id_)


def test_pending_event_id_is_the_body_id_with_or_without_an_occasion() -> None:
    observed, again = _pending(1, _event()), _pending(2, _event("0123456789ab"))
    assert observed.event_id == stable_event_id("c1", "u-web", "7", "ADDED")
    assert again.event_id == stable_event_id("c1", "u-web", "7", "ADDED", "0123456789ab")
    assert again.event_id != observed.event_id
    for pending in (observed, again):
        body = encode([pending.event], Format.CLOUDEVENTS, batch=False, redact=True).body
        assert orjson.loads(body)["id"] == pending.event_id


def test_a_batch_of_resent_events_gets_its_own_id() -> None:
    observed = [_pending(1, _event())]
    again = [_pending(1, _event("0123456789ab"))]
    assert _batch_id(observed) != _batch_id(again)

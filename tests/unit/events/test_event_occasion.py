"""`Event.occasion`: events MIC sends again on its own initiative (a snapshot, a view change) get
ids of their own, while an observed change keeps the id it always had.

The bug it fixes: relabel a cluster out of a subscription (DELETED), back in (ADDED of the
unchanged object): that ADDED had exactly the id of the object's first ADDED, and a recipient
that drops duplicate ids lost the object.
"""

from __future__ import annotations

import uuid

import orjson
from encoding_samples import UID, ingress_event, ingress_object

from mic.events import (
    EventType,
    Format,
    cloudevent,
    encode,
    mic_v1_envelope,
    new_occasion,
    stable_event_id,
)
from mic.store.records import StoredEvent

PINNED_UID = "0b9e6f3a-5c1d-4e2f-8a7b-9c0d1e2f3a4b"
PINNED_ID = "5cc375e2d4c11be5fcdf3c89ac0b1155"
"""`stable_event_id("prod-eu", PINNED_UID, "4711", "ADDED")`, computed by the code before
occasions existed: every event already delivered or stored keeps this id."""

OCCASION = "0123456789ab"


def test_without_an_occasion_the_id_is_the_one_it_always_was() -> None:
    assert stable_event_id("prod-eu", PINNED_UID, "4711", EventType.ADDED) == PINNED_ID
    assert stable_event_id("prod-eu", PINNED_UID, "4711", EventType.ADDED, None) == PINNED_ID
    assert stable_event_id("prod-eu", PINNED_UID, "4711", "ADDED", occasion=None) == PINNED_ID


def test_an_occasion_makes_a_new_id_the_same_on_every_retry() -> None:
    with_occasion = stable_event_id("prod-eu", PINNED_UID, "4711", EventType.ADDED, OCCASION)
    assert with_occasion != PINNED_ID
    assert len(with_occasion) == 32
    int(with_occasion, 16)
    # Pinned too: a retry after a restart (the occasion read back from the store) must match.
    assert with_occasion == "6fc402076a460360c4fa19175a063c99"
    assert stable_event_id("prod-eu", PINNED_UID, "4711", "ADDED", OCCASION) == with_occasion
    other = stable_event_id("prod-eu", PINNED_UID, "4711", EventType.ADDED, "ba9876543210")
    assert other not in (with_occasion, PINNED_ID)


def test_an_occasion_cannot_pose_as_another_part() -> None:
    # The occasion is a fifth NUL-separated part: it cannot run into the type or the version.
    assert stable_event_id("c", "u", "1", "ADDED", "") != stable_event_id("c", "u", "1", "ADDED")
    assert stable_event_id("c", "u", "1", "ADDED", "x") != stable_event_id("c", "u", "1", "ADDEDx")


def test_new_occasions_are_short_random_hex() -> None:
    occasions = {new_occasion() for _ in range(1000)}
    assert len(occasions) == 1000
    for occasion in occasions:
        assert len(occasion) == 12
        int(occasion, 16)


def test_occasion_is_none_by_default_and_kept_by_copies() -> None:
    plain = ingress_event()
    assert plain.occasion is None
    event = ingress_event(occasion=OCCASION)
    assert event.occasion == OCCASION
    assert event.replace(type=EventType.ADDED).occasion == OCCASION
    assert event.replace(object=ingress_object("12346")).occasion == OCCASION
    assert plain.replace(occasion=OCCASION).occasion == OCCASION
    assert event.replace(occasion=None).occasion is None


def test_without_decoded_keeps_the_occasion() -> None:
    obj = ingress_object()
    event = ingress_event(object=obj, object_json=orjson.dumps(obj), occasion=OCCASION)
    slim = event.without_decoded()
    assert slim is not event
    assert slim.occasion == OCCASION
    assert slim.id == event.id
    assert slim == event


def test_the_occasion_is_compared_and_shown() -> None:
    event = ingress_event(occasion=OCCASION)
    assert event == ingress_event(occasion=OCCASION)
    assert event != ingress_event()  # sent with another id, so another event
    assert f"occasion={OCCASION!r}" in repr(event)


def test_every_encoding_carries_the_id_of_the_occasion() -> None:
    observed = ingress_event()
    again = ingress_event(occasion=OCCASION)
    plain_id = stable_event_id("prod-eu", UID, "12345", EventType.MODIFIED)
    new_id = stable_event_id("prod-eu", UID, "12345", EventType.MODIFIED, OCCASION)
    assert plain_id != new_id

    assert cloudevent(observed, redact=True)["id"] == plain_id
    assert cloudevent(again, redact=True)["id"] == new_id
    structured = encode([again], Format.CLOUDEVENTS, batch=False, redact=True)
    assert orjson.loads(structured.body)["id"] == new_id
    batch = encode([observed, again], Format.CLOUDEVENTS, batch=True, redact=True)
    assert [item["id"] for item in orjson.loads(batch.body)] == [plain_id, new_id]
    binary = encode([again], Format.CLOUDEVENTS_BINARY, batch=False, redact=True)
    assert binary.headers["ce-id"] == new_id
    assert uuid.UUID(mic_v1_envelope(observed, redact=True)["app_event_id"]).hex == plain_id
    assert uuid.UUID(mic_v1_envelope(again, redact=True)["app_event_id"]).hex == new_id
    envelope = encode([again], Format.MIC_V1, batch=False, redact=True)
    assert uuid.UUID(orjson.loads(envelope.body)["app_event_id"]).hex == new_id


def test_a_stored_event_gives_its_occasion_back() -> None:
    event = ingress_event(occasion=OCCASION)
    stored = StoredEvent(
        seq=1,
        event_id=event.id,
        cluster=event.cluster,
        group=event.group,
        version=event.version,
        kind=event.kind,
        resource=event.resource,
        namespace=event.namespace,
        name=event.name,
        uid=event.uid,
        resource_version=event.resource_version,
        type=event.type,
        observed_at=event.observed_at,
        object_json=orjson.dumps(event.object),
        old_json=None if event.old_object is None else orjson.dumps(event.old_object),
        occasion=event.occasion,
    )
    back = stored.to_event()
    assert back.occasion == OCCASION
    assert back == event
    assert cloudevent(back, redact=True)["id"] == cloudevent(event, redact=True)["id"]


def test_relabelled_back_in_the_added_is_not_a_duplicate_of_the_first() -> None:
    """The scenario of the bug, at the ids: first ADDED, DELETED on leaving, ADDED on return."""
    obj = ingress_object()
    first = ingress_event(type=EventType.ADDED, object=obj, old_object=None)
    left = first.replace(type=EventType.DELETED, occasion=new_occasion())
    back = first.replace(occasion=new_occasion())
    ids = [cloudevent(e, redact=True)["id"] for e in (first, left, back)]
    assert len(set(ids)) == 3

"""An event's old state may come as JSON bytes (compact caches) and is decoded on first read."""

from __future__ import annotations

from typing import Any

import orjson

from mic.events import Event, EventType

OLD = {"metadata": {"name": "a", "resourceVersion": "1"}, "data": {"k": "before"}}
NEW = {"metadata": {"name": "a", "resourceVersion": "2"}, "data": {"k": "after"}}


def event(**kwargs: Any) -> Event:
    kwargs.setdefault("observed_at", 1.0)
    return Event(
        EventType.MODIFIED, "c1", "", "v1", "ConfigMap", "configmaps", "ns", "a", "u1", "2", NEW, **kwargs
    )


def test_old_json_is_decoded_on_first_read_and_kept_for_encoders() -> None:
    lazy = event(old_json=orjson.dumps(OLD))
    assert lazy.has_old_object
    assert lazy.old_json is not None
    assert lazy.old_object == OLD
    assert lazy.old_object is lazy.old_object  # decoded once; the dict is kept
    assert lazy.old_json == orjson.dumps(OLD)  # ... and so are the bytes, to splice into bodies


def test_an_event_with_old_json_equals_one_with_the_decoded_object() -> None:
    assert event(old_json=orjson.dumps(OLD)) == event(old_object=OLD)
    assert event(old_json=orjson.dumps(OLD)) != event(old_object=None)
    assert not event().has_old_object
    assert event().old_object is None


def test_a_given_old_object_wins_over_old_json() -> None:
    both = event(old_object=OLD, old_json=b'{"other": true}')
    assert both.old_json is None
    assert both.old_object == OLD


def test_replace_keeps_the_old_state_undecoded() -> None:
    copy = event(old_json=orjson.dumps(OLD)).replace(cluster="c2")
    assert copy.cluster == "c2"
    assert copy.old_json == orjson.dumps(OLD)
    assert copy.old_object == OLD
    setting = event(old_json=orjson.dumps(OLD))
    setting.old_object = None
    assert not setting.has_old_object


def test_object_json_travels_with_the_object_and_not_with_a_replaced_one() -> None:
    encoded = event(object_json=orjson.dumps(NEW), old_json=orjson.dumps(OLD))
    assert encoded.replace(cluster="c2").object_json == orjson.dumps(NEW)
    other = {"metadata": {"name": "a", "resourceVersion": "3"}}
    replaced = encoded.replace(object=other, old_object=NEW)
    assert replaced.object_json is None
    assert replaced.old_json is None
    assert replaced.old_object == NEW


def test_without_decoded_leaves_both_states_to_their_bytes_and_equals_the_original() -> None:
    original = event(object_json=orjson.dumps(NEW), old_json=orjson.dumps(OLD))
    assert original.old_object == OLD  # decoded, and kept by the original
    slim = original.without_decoded()
    assert slim is not original
    assert slim == original
    assert slim.object == NEW
    assert slim.object is not original.object  # decoded again, from the bytes
    assert slim.old_object == OLD
    assert slim.old_object is not original.old_object
    assert original.object is NEW  # other consumers keep what they were handed
    assert slim.id == original.id
    assert (slim.object_json, slim.old_json) == (original.object_json, original.old_json)


def test_without_decoded_keeps_what_has_no_bytes() -> None:
    plain = event(old_object=OLD)
    assert plain.without_decoded() is plain  # nothing to decode from: kept as it is
    given_old = event(object_json=orjson.dumps(NEW), old_object=OLD).without_decoded()
    assert given_old.old_object is OLD  # an old state given decoded has no bytes to fall back on
    assert given_old.object == NEW


def test_setting_the_object_drops_bytes_of_the_one_replaced() -> None:
    encoded = event(object_json=orjson.dumps(NEW)).without_decoded()
    other = {"metadata": {"name": "a", "resourceVersion": "3"}}
    encoded.object = other
    assert encoded.object is other
    assert encoded.object_json is None
    assert encoded.replace(cluster="c2").object == other

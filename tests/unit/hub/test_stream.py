"""EventStream: ordered, bounded, back-pressured, and closable without stranding producers."""

from __future__ import annotations

import asyncio

import pytest

from mic.events import Event, EventType
from mic.hub.spec import WatchSpec
from mic.hub.stream import EventStream, StreamOverflowError
from mic.kube.selectors import LabelSelector


def event(name: str, type_: EventType = EventType.ADDED) -> Event:
    return Event(
        type=type_, cluster="c", group="", version="v1", kind="Pod", resource="pods",
        namespace="default", name=name, uid=name, resource_version="1", object={},
    )  # fmt: skip


async def test_events_come_out_in_order_across_batches() -> None:
    stream = EventStream(WatchSpec("pods"))
    await stream.put([event("a"), event("b")])
    await stream.put([event("c")])
    stream.close()
    assert [e.name async for e in stream] == ["a", "b", "c"]


async def test_type_filter() -> None:
    stream = EventStream(WatchSpec("pods"), types=[EventType.DELETED])
    await stream.put([event("a"), event("b", EventType.DELETED)])
    stream.close()
    assert [e.name async for e in stream] == ["b"]


async def test_full_stream_makes_producer_wait_until_consumer_reads() -> None:
    stream = EventStream(WatchSpec("pods"), max_batches=2)
    await stream.put([event("1")])
    await stream.put([event("2")])
    producer = asyncio.create_task(stream.put([event("3")]))
    await asyncio.sleep(0.01)
    assert not producer.done(), "a full stream must hold the producer back, not drop events"
    assert stream.backlog == 2
    assert (await anext(stream)).name == "1"
    await asyncio.wait_for(producer, 1)
    assert stream.backlog == 2
    batch = await stream.next_batch()
    assert batch is not None
    assert [e.name for e in batch] == ["2", "3"]


async def test_close_releases_a_waiting_producer() -> None:
    stream = EventStream(WatchSpec("pods"), max_batches=1)
    await stream.put([event("1")])
    producer = asyncio.create_task(stream.put([event("2")]))
    await asyncio.sleep(0.01)
    stream.close()
    await asyncio.wait_for(producer, 1)
    assert [e.name async for e in stream] == ["1"]
    assert await stream.next_batch() is None


async def test_a_consumer_that_stops_reading_loses_its_stream_not_the_producers_time() -> None:
    """The producer (an informer, feeding every other consumer too) waits `max_wait` at most;
    the consumer then reads what was queued, in order, and learns that its stream ended."""
    stream = EventStream(WatchSpec("pods"), max_batches=2, max_wait=0.05)
    await stream.put([event("1")])
    await stream.put([event("2")])
    await asyncio.wait_for(stream.put([event("3")]), 1)  # gave up waiting: the stream is closed
    assert stream.closed
    assert stream.overflowed
    await stream.put([event("4")])  # later batches are not queued for it
    assert [e.name for e in [await anext(stream), await anext(stream)]] == ["1", "2"]
    with pytest.raises(StreamOverflowError, match="fell 2 batches behind"):
        await anext(stream)
    with pytest.raises(StreamOverflowError):
        await stream.next_batch()


async def test_without_max_wait_the_producer_waits_for_as_long_as_it_takes() -> None:
    stream = EventStream(WatchSpec("pods"), max_batches=1, max_wait=None)
    await stream.put([event("1")])
    producer = asyncio.create_task(stream.put([event("2")]))
    await asyncio.sleep(0.2)
    assert not producer.done()
    assert not stream.overflowed
    assert (await anext(stream)).name == "1"
    await asyncio.wait_for(producer, 1)
    assert (await anext(stream)).name == "2"


async def test_a_cluster_selector_judges_cluster_labels() -> None:
    stream = EventStream(WatchSpec("pods"), cluster_selector=LabelSelector.parse("env=prod"))
    assert stream.selects({"env": "prod", "region": "eu"})
    assert not stream.selects({"env": "dev"})
    assert not stream.selects({})
    assert EventStream(WatchSpec("pods"), cluster_selector=LabelSelector.parse("")).cluster_selector is None


async def test_a_batch_taken_before_the_cluster_entered_or_left_the_view_is_dropped() -> None:
    stream = EventStream(WatchSpec("pods"), cluster_selector=LabelSelector.parse("env=prod"))
    taken = stream.view_epoch("c")
    stream.change_view("c", [event("a", EventType.DELETED)])
    await stream.put([event("a")], epoch=("c", taken))  # the snapshot above accounts for it
    await stream.put([event("b")], epoch=("c", stream.view_epoch("c")))
    await stream.put([event("x")], epoch=("other", taken))  # another cluster's view is unchanged
    stream.close()
    assert [(e.type, e.name) async for e in stream] == [
        (EventType.DELETED, "a"),
        (EventType.ADDED, "b"),
        (EventType.ADDED, "x"),
    ]


async def test_a_producer_waiting_for_room_drops_its_batch_if_the_view_changed_meanwhile() -> None:
    stream = EventStream(WatchSpec("pods"), max_batches=1)
    await stream.put([event("1")])
    producer = asyncio.create_task(stream.put([event("2")], epoch=("c", stream.view_epoch("c"))))
    await asyncio.sleep(0.01)
    stream.change_view("c", [event("2", EventType.DELETED)])
    assert (await anext(stream)).name == "1"
    await asyncio.wait_for(producer, 1)
    stream.close()
    assert [(e.type, e.name) async for e in stream] == [(EventType.DELETED, "2")]

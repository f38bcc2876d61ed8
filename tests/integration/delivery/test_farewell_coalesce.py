"""Farewell DELETEDs meet events still queued for the same object.

When a subscription's view shrinks (a PUT narrowing its filter, or its cluster relabelled out
of its `clusterSelector`), the engine queues a DELETED of every object that leaves the view,
stamped at that moment. The recipient may still have an undelivered MODIFIED of the same object
queued (it answers 503, so the MODIFIED waits for its retry), and the view may widen again
while the farewell itself is still queued. Whatever the lane does with them (plain, coalescing
by object, batched or not), the recipient's last word on the object must match its view:

* narrowed out: the DELETED, last, never followed by the older MODIFIED, never dropped;
* widened again: the object's current state (ADDED), after any DELETED.

Each test asserts the exact sequence of events one object got at a real HTTP recipient.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from delivery_helpers import Pipeline, Recipient, eventually, summary

from mic.delivery.lane import Pending
from mic.testing.objects import configmap

SUBJECT = "default/web"  # the object whose story the tests follow
OTHER = "default/keep"  # one that stays in the view of a narrowing PUT
NARROW_CEL = 'object.data["lb"] == "keep"'
RETRY_AFTER = "1"  # the recipient's Retry-After while down: the queued event surely waits

LANES = [
    pytest.param(False, None, id="plain"),
    pytest.param(True, None, id="coalesce"),
    pytest.param(False, {"maxEvents": 10, "maxWaitMs": 50}, id="batched"),
    pytest.param(True, {"maxEvents": 10, "maxWaitMs": 50}, id="batched-coalesce"),
]
TRIGGERS = ["put", "relabel"]


# -- helpers ----------------------------------------------------------------------------------


def story(recipient: Recipient, subject: str = SUBJECT) -> list[tuple[str, str]]:
    """(type, resourceVersion) of every event the recipient accepted about `subject`, in order."""
    return [(kind, rv) for kind, subj, rv in summary(recipient.events()) if subj == subject]


def queued(pipeline: Pipeline, subject: str = SUBJECT) -> list[Pending]:
    """What the subscription's lane holds for `subject` (head first)."""
    lane = pipeline.engine._subscriptions["s"].lane
    for key, queue in lane._objects.items():
        if key.endswith("/" + subject):
            return list(queue.items)
    return []


def in_flight(pipeline: Pipeline, subject: str = SUBJECT) -> bool:
    lane = pipeline.engine._subscriptions["s"].lane
    return any(q.in_flight for key, q in lane._objects.items() if key.endswith("/" + subject))


def queued_types(pipeline: Pipeline, subject: str = SUBJECT) -> list[str]:
    return [pending.event.type.value.lower() for pending in queued(pipeline, subject)]


def rv(emulator: Any, name: str = "web") -> str:
    return str(emulator.get("configmaps", name)["metadata"]["resourceVersion"])


def go_down(recipient: Recipient) -> None:
    recipient.status = 503
    recipient.retry_after = RETRY_AFTER


def come_back(recipient: Recipient) -> None:
    recipient.status = 200
    recipient.retry_after = None


async def start(
    pipeline: Pipeline,
    recipient: Recipient,
    emulator: Any,
    *,
    coalesce: bool,
    batching: dict[str, int] | None,
) -> None:
    """Two objects in a cluster labelled env=prod, a subscription selecting it, both ADDED."""
    emulator.create(configmap("web", lb="mic"))
    emulator.create(configmap("keep", lb="keep"))
    await pipeline.add_cluster(emulator, labels={"env": "prod"})
    spec: dict[str, Any] = {
        "filter": {"resources": ["configmaps"], "clusterSelector": "env=prod"},
        "delivery": {"coalesce": coalesce, "initialBackoffSeconds": 0.05, "maxBackoffSeconds": 0.2},
    }
    if batching is not None:
        spec["batching"] = batching
    await pipeline.subscribe("s", recipient, **spec)
    await recipient.wait_events(lambda _: bool(story(recipient)) and bool(story(recipient, OTHER)))
    await eventually(lambda: not pipeline.engine._subscriptions["s"].deferred)
    assert story(recipient) == [("added", rv(emulator))]


async def put_filter(pipeline: Pipeline, *, cel: str | None, **changes: Any) -> None:
    """PUT the subscription with the same filter but `cel` (None: without CEL), and `changes`."""
    record = await pipeline.store.get_subscription("s")
    spec = {**record.spec, **changes}
    new_filter = {key: value for key, value in spec["filter"].items() if key != "cel"}
    if cel is not None:
        new_filter["cel"] = cel
    spec["filter"] = new_filter
    await pipeline.engine.apply(
        await pipeline.store.replace_subscription(dataclasses.replace(record, spec=spec))
    )


async def snapshots_taken(pipeline: Pipeline) -> None:
    """Wait until no snapshot of the subscription is deferred any more. A PUT of the filter
    restarts the informer (the watch is released and taken again), so the snapshot of the new
    view waits for its first list (polled every `SNAPSHOT_POLL`)."""
    await eventually(lambda: not pipeline.engine._subscriptions["s"].deferred)


async def narrow(pipeline: Pipeline, emulator: Any, trigger: str, *, settle_snapshot: bool = True) -> None:
    """Make SUBJECT leave the subscription's view."""
    if trigger == "put":
        await put_filter(pipeline, cel=NARROW_CEL)
    else:
        await pipeline.hub.set_cluster_labels(emulator.name, {"env": "dev"})
    if settle_snapshot:
        await snapshots_taken(pipeline)


async def widen(pipeline: Pipeline, emulator: Any, trigger: str) -> None:
    """Bring SUBJECT back into the subscription's view."""
    if trigger == "put":
        await put_filter(pipeline, cel=None)
    else:
        await pipeline.hub.set_cluster_labels(emulator.name, {"env": "prod"})
    await snapshots_taken(pipeline)


async def refused_and_waiting(pipeline: Pipeline, recipient: Recipient, kind: str) -> None:
    """Wait until the head of SUBJECT's queue is a `kind` the recipient refused (503) and that
    now waits for its retry (not in flight: its Retry-After keeps it waiting for seconds)."""

    def waiting() -> bool:
        items = queued(pipeline)
        if not items or in_flight(pipeline):
            return False
        return items[0].event.type.value.lower() == kind and items[0].attempts >= 1

    await eventually(waiting)
    assert len(recipient.requests) > len(recipient.accepted)


async def a_refused_modified(pipeline: Pipeline, recipient: Recipient, emulator: Any) -> str:
    """The recipient goes down and SUBJECT changes: its MODIFIED is refused and waits for its
    retry. Returns that MODIFIED's resourceVersion."""
    go_down(recipient)
    emulator.patch("configmaps", "web", {"data": {"v": "1"}})
    modified = rv(emulator)
    await refused_and_waiting(pipeline, recipient, "modified")
    return modified


async def ledger_holds(pipeline: Pipeline, emulator: Any, resource_version: str) -> None:
    """Wait until the ledger (what routing has recorded) holds SUBJECT at `resource_version`."""
    async with asyncio.timeout(10):
        while True:
            for key in list(pipeline.hub._clusters[emulator.name]._informers):
                entries = await pipeline.store.load_ledger(emulator.name, key.scope)
                if any(e.name == "web" and e.resource_version == resource_version for e in entries.values()):
                    return
            await asyncio.sleep(0.02)


async def settle(pipeline: Pipeline, recipient: Recipient, last: str) -> None:
    """Wait until the subscription's backlog is empty and SUBJECT's last event is a `last`; then a
    little more, so that anything sent after it would be seen."""
    await eventually(lambda: pipeline.engine.status("s").backlog == 0, timeout=15)
    await recipient.wait_events(lambda _: bool(story(recipient)) and story(recipient)[-1][0] == last)
    await asyncio.sleep(0.4)
    assert pipeline.engine.status("s").backlog == 0
    assert pipeline.engine.status("s").dead == 0


# -- narrowed out with a MODIFIED still queued --------------------------------------------------


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(("coalesce", "batching"), LANES)
async def test_farewell_after_a_queued_modified_is_the_last_word(
    pipeline: Pipeline,
    recipient: Recipient,
    kube_emulator: Any,
    trigger: str,
    coalesce: bool,
    batching: dict[str, int] | None,
) -> None:
    await start(pipeline, recipient, kube_emulator, coalesce=coalesce, batching=batching)
    added = rv(kube_emulator)

    modified = await a_refused_modified(pipeline, recipient, kube_emulator)

    await narrow(pipeline, kube_emulator, trigger)
    await eventually(lambda: "deleted" in queued_types(pipeline))
    assert not in_flight(pipeline)  # the MODIFIED still waits for its retry

    come_back(recipient)
    await settle(pipeline, recipient, "deleted")
    # The farewell names the last state routed (the MODIFIED's); coalescing sends only it.
    between = [] if coalesce else [("modified", modified)]
    assert story(recipient) == [("added", added), *between, ("deleted", modified)]


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(("coalesce", "batching"), LANES)
async def test_farewell_while_the_modified_is_in_flight_is_the_last_word(
    pipeline: Pipeline,
    recipient: Recipient,
    kube_emulator: Any,
    trigger: str,
    coalesce: bool,
    batching: dict[str, int] | None,
) -> None:
    """The MODIFIED is in the recipient's hands (a slow 503) when the farewell is queued."""
    await start(pipeline, recipient, kube_emulator, coalesce=coalesce, batching=batching)
    added = rv(kube_emulator)

    # Decided as each request arrives: while `down`, held 1 s and then refused.
    down = {"now": True}
    refused: set[int] = set()

    def delay(received: Any) -> float:
        if down["now"]:
            refused.add(id(received))
            return 1.0
        return 0.0

    recipient.delay = delay
    recipient.status = lambda received: 503 if id(received) in refused else 200
    recipient.retry_after = RETRY_AFTER
    kube_emulator.patch("configmaps", "web", {"data": {"v": "1"}})
    modified = rv(kube_emulator)
    await eventually(lambda: in_flight(pipeline) and queued_types(pipeline) == ["modified"])

    await narrow(pipeline, kube_emulator, trigger)
    await eventually(lambda: queued_types(pipeline) == ["modified", "deleted"])
    assert in_flight(pipeline)  # the farewell came while the MODIFIED was being sent
    down["now"] = False

    await settle(pipeline, recipient, "deleted")
    got = story(recipient)
    assert got[0] == ("added", added)
    assert got[-1] == ("deleted", modified)
    # The MODIFIED may be sent (it was in flight when the DELETED came) or coalesced away, but
    # never after the DELETED, and the DELETED exactly once.
    assert got[1:] in ([("modified", modified), ("deleted", modified)], [("deleted", modified)])


@pytest.mark.parametrize(("coalesce", "batching"), LANES)
async def test_farewell_after_a_queued_modified_survives_a_restart(
    pipeline: Pipeline,
    recipient: Recipient,
    kube_emulator: Any,
    coalesce: bool,
    batching: dict[str, int] | None,
) -> None:
    """MIC restarts with both queued: the lane reads them back from the store (and coalesces
    them there, by the stored observation times)."""
    await start(pipeline, recipient, kube_emulator, coalesce=coalesce, batching=batching)
    added = rv(kube_emulator)

    modified = await a_refused_modified(pipeline, recipient, kube_emulator)
    await narrow(pipeline, kube_emulator, "put")
    await eventually(lambda: "deleted" in queued_types(pipeline))

    await pipeline.restart()
    await eventually(lambda: "deleted" in queued_types(pipeline))
    come_back(recipient)
    await settle(pipeline, recipient, "deleted")
    between = [] if coalesce else [("modified", modified)]
    assert story(recipient) == [("added", added), *between, ("deleted", modified)]


# -- widened again while the farewell is still queued -----------------------------------------


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(("coalesce", "batching"), LANES)
async def test_widening_while_the_farewell_is_queued_ends_with_the_current_state(
    pipeline: Pipeline,
    recipient: Recipient,
    kube_emulator: Any,
    trigger: str,
    coalesce: bool,
    batching: dict[str, int] | None,
) -> None:
    await start(pipeline, recipient, kube_emulator, coalesce=coalesce, batching=batching)
    added = rv(kube_emulator)

    go_down(recipient)
    await narrow(pipeline, kube_emulator, trigger)
    await refused_and_waiting(pipeline, recipient, "deleted")
    # The object changes while out of the view: routing records it but does not send it.
    kube_emulator.patch("configmaps", "web", {"data": {"v": "2"}})
    current = rv(kube_emulator)
    await ledger_holds(pipeline, kube_emulator, current)

    await widen(pipeline, kube_emulator, trigger)
    await eventually(lambda: "added" in queued_types(pipeline))
    assert not in_flight(pipeline)  # the DELETED still waits for its retry

    come_back(recipient)
    await settle(pipeline, recipient, "added")
    between = [] if coalesce else [("deleted", added)]
    assert story(recipient) == [("added", added), *between, ("added", current)]


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(("coalesce", "batching"), LANES)
async def test_narrowed_and_widened_with_a_modified_queued_ends_with_the_current_state(
    pipeline: Pipeline,
    recipient: Recipient,
    kube_emulator: Any,
    trigger: str,
    coalesce: bool,
    batching: dict[str, int] | None,
) -> None:
    await start(pipeline, recipient, kube_emulator, coalesce=coalesce, batching=batching)
    added = rv(kube_emulator)

    modified = await a_refused_modified(pipeline, recipient, kube_emulator)
    await narrow(pipeline, kube_emulator, trigger)
    await eventually(lambda: "deleted" in queued_types(pipeline))
    await widen(pipeline, kube_emulator, trigger)
    await eventually(lambda: "added" in queued_types(pipeline))
    assert not in_flight(pipeline)

    come_back(recipient)
    await settle(pipeline, recipient, "added")
    between = [] if coalesce else [("modified", modified), ("deleted", modified)]
    assert story(recipient) == [("added", added), *between, ("added", modified)]


@pytest.mark.parametrize(("coalesce", "batching"), LANES)
async def test_narrowing_and_widening_puts_in_quick_succession_end_with_the_current_state(
    pipeline: Pipeline,
    recipient: Recipient,
    kube_emulator: Any,
    coalesce: bool,
    batching: dict[str, int] | None,
) -> None:
    """The widening PUT comes while the narrowing PUT's snapshot still waits for the restarted
    informer's first list: that snapshot starts over, of the widened view, and runs once."""
    await start(pipeline, recipient, kube_emulator, coalesce=coalesce, batching=batching)
    added = rv(kube_emulator)

    modified = await a_refused_modified(pipeline, recipient, kube_emulator)
    await narrow(pipeline, kube_emulator, "put", settle_snapshot=False)
    assert pipeline.engine._subscriptions["s"].deferred  # its snapshot is still deferred
    await widen(pipeline, kube_emulator, "put")
    await eventually(lambda: "added" in queued_types(pipeline))
    assert not in_flight(pipeline)

    come_back(recipient)
    await settle(pipeline, recipient, "added")
    between = [] if coalesce else [("modified", modified), ("deleted", modified)]
    # One snapshot of the widened view, not one per PUT: the object's current state comes once.
    assert story(recipient) == [("added", added), *between, ("added", modified)]


# -- a change observed before the farewell, routed after it ---------------------------------------


@pytest.mark.parametrize(("coalesce", "batching"), LANES)
async def test_a_change_routed_after_the_farewell_has_the_last_word(
    pipeline: Pipeline,
    recipient: Recipient,
    kube_emulator: Any,
    coalesce: bool,
    batching: dict[str, int] | None,
) -> None:
    """The change that brings SUBJECT into the narrowed filter is observed just before the PUT
    and waits for the route lock while the PUT sends its farewell: routed after the farewell,
    under the new filter, it arrives as ADDED, and it must stay the last word (the farewell is
    stamped later than that change was observed, but speaks of an older state). The PUT also
    turns `initialState` off, so no snapshot of the new view follows the farewell to mend it."""
    await start(pipeline, recipient, kube_emulator, coalesce=coalesce, batching=batching)
    added = rv(kube_emulator)
    other = await Recipient().start()  # shares the informer, which the PUT then keeps running
    try:
        await pipeline.subscribe("other", other)
        await other.wait_events(lambda events: len(events) == 2)
        modified = await a_refused_modified(pipeline, recipient, kube_emulator)

        engine = pipeline.engine
        informer = pipeline.hub.informer(kube_emulator.name, engine._subscriptions["s"].watches[0])
        assert informer is not None
        await engine._route_lock.acquire()
        narrowing = asyncio.create_task(put_filter(pipeline, cel=NARROW_CEL, initialState=False))
        await eventually(lambda: bool(engine._route_lock._waiters))  # the PUT is first in line
        kube_emulator.patch("configmaps", "web", {"data": {"lb": "keep"}})
        back_in = rv(kube_emulator)
        cached = lambda: (informer.cache.get("default", "web") or {})["metadata"]["resourceVersion"]  # noqa: E731
        await eventually(lambda: cached() == back_in)  # observed; its batch waits behind the PUT
        engine._route_lock.release()
        await narrowing
        await eventually(lambda: "added" in queued_types(pipeline) or back_in in str(story(recipient)))

        come_back(recipient)
        await settle(pipeline, recipient, "added")
        between = [] if coalesce else [("modified", modified), ("deleted", modified)]
        assert story(recipient) == [("added", added), *between, ("added", back_in)]
    finally:
        await other.stop()

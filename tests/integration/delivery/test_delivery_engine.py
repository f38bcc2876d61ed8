"""Reliable delivery over real HTTP: order, outages, dead letters, restarts, 410s, formats."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import ANY

import orjson
import pytest
import sqlalchemy as sa
from delivery_helpers import LockedStore, Pipeline, eventually, summary
from standardwebhooks.webhooks import Webhook

from mic.delivery.signing import generate_secret
from mic.store import Replayed
from mic.testing.objects import configmap
from mic.testing.recipient import Received
from mic.testing.recipient import WebhookRecipient as Recipient


async def test_changes_arrive_as_cloudevents_in_order(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    kube_emulator.create(configmap("before", v="0"))
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("hooks", recipient)
    await recipient.wait_events(lambda events: len(events) >= 1)
    made = kube_emulator.patch("configmaps", "before", {"data": {"v": "1"}})
    kube_emulator.delete("configmaps", "before")
    await recipient.wait_events(lambda events: len(events) >= 3)
    events = recipient.events()
    assert [e["type"] for e in events] == [
        "io.mic.resource.added",
        "io.mic.resource.modified",
        "io.mic.resource.deleted",
    ]
    assert events[1]["resourceversion"] == made["metadata"]["resourceVersion"]
    assert events[1]["data"]["oldObject"]["data"] == {"v": "0"}
    assert events[0]["cluster"] == "c1"
    assert recipient.accepted[0].headers["Content-Type"].startswith("application/cloudevents+json")
    status = pipeline.engine.status("hooks")
    await eventually(lambda: pipeline.engine.status("hooks").delivered_total == 3)
    assert status.dead == 0


async def test_recipient_down_then_back_gets_everything_in_order_per_object(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe(
        "hooks", recipient, delivery={"initialBackoffSeconds": 0.05, "maxBackoffSeconds": 0.2}
    )
    await kube_emulator.wait_for_watches(1, "configmaps")
    recipient.status = 503
    expected: dict[str, list[str]] = defaultdict(list)
    for i in range(5):
        made = kube_emulator.create(configmap(f"cm-{i}", v="0"))
        expected[f"default/cm-{i}"].append(made["metadata"]["resourceVersion"])
    for round_ in range(1, 4):
        for i in range(5):
            made = kube_emulator.patch("configmaps", f"cm-{i}", {"data": {"v": str(round_)}})
            expected[f"default/cm-{i}"].append(made["metadata"]["resourceVersion"])
    await eventually(lambda: pipeline.engine.status("hooks").retrying > 0)
    recipient.status = 200
    await recipient.wait_events(lambda events: len(events) >= 20)
    got: dict[str, list[str]] = defaultdict(list)
    for event in recipient.events():
        got[event["subject"]].append(event["resourceversion"])
    assert got == expected
    await eventually(lambda: pipeline.engine.status("hooks").backlog == 0)


async def test_permanent_failure_becomes_a_dead_letter_and_replay_delivers_it(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 400
    await pipeline.subscribe("hooks", recipient)
    kube_emulator.create(configmap("rejected"))
    await eventually(lambda: pipeline.engine.status("hooks").dead == 1)
    status = pipeline.engine.status("hooks")
    assert status.last_error is not None
    assert "400" in status.last_error
    letters = await pipeline.engine.dead_letters("hooks")
    assert [row.event.name for row in letters] == ["rejected"]
    assert len(recipient.requests) == 1, "a permanent 4xx must not be retried"
    recipient.status = 200
    assert len((await pipeline.engine.replay("hooks", None)).ids) == 1
    await recipient.wait_events(lambda events: [e["subject"] for e in events] == ["default/rejected"])
    await eventually(lambda: pipeline.engine.status("hooks").dead == 0)


async def test_max_attempts_dead_letters_and_later_events_of_the_object_go_on(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    await pipeline.add_cluster(kube_emulator)
    calls = {"n": 0}

    def first_two_fail(received: Received) -> int:
        calls["n"] += 1
        return 503 if calls["n"] <= 2 else 200

    recipient.status = first_two_fail
    await pipeline.subscribe("hooks", recipient, delivery={"maxAttempts": 2, "initialBackoffSeconds": 0.01})
    kube_emulator.create(configmap("a", v="0"))
    await eventually(lambda: pipeline.engine.status("hooks").dead == 1)
    kube_emulator.patch("configmaps", "a", {"data": {"v": "1"}})
    await recipient.wait_events(lambda events: len(events) == 1)
    assert summary(recipient.events())[0][0] == "modified"


async def test_coalescing_delivers_only_the_latest_state_when_the_recipient_lags(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    await pipeline.add_cluster(kube_emulator)
    gate = asyncio.Event()
    recipient.status = 503
    await pipeline.subscribe(
        "lb", recipient, delivery={"coalesce": True, "initialBackoffSeconds": 0.2, "maxBackoffSeconds": 0.2}
    )
    kube_emulator.create(configmap("a", v="0"))
    await eventually(lambda: len(recipient.requests) >= 1)
    last = None
    for i in range(1, 6):
        last = kube_emulator.patch("configmaps", "a", {"data": {"v": str(i)}})
    await eventually(lambda: pipeline.engine.status("lb").coalesced_total >= 4)
    recipient.status = 200
    gate.set()
    assert last is not None
    await recipient.wait_events(
        lambda events: any(e["resourceversion"] == last["metadata"]["resourceVersion"] for e in events)
    )
    await asyncio.sleep(0.3)
    versions = [e["resourceversion"] for e in recipient.events()]
    assert len(versions) <= 2, versions  # the ADDED that was in flight, then only the newest
    assert versions[-1] == last["metadata"]["resourceVersion"]


async def test_changes_queued_behind_a_failing_attempt_are_coalesced_when_it_fails(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """Every change arrives while the first attempt is in flight (a slow recipient that then
    fails): when it fails, the queue behind it is coalesced at once, not only when yet another
    change arrives (which may never happen)."""
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 503
    recipient.delay = lambda received: 0.5 if not recipient.requests else 0.0
    await pipeline.subscribe(
        "lb", recipient, delivery={"coalesce": True, "initialBackoffSeconds": 0.2, "maxBackoffSeconds": 0.2}
    )
    await kube_emulator.wait_for_watches(1, "configmaps")
    kube_emulator.create(configmap("a", v="0"))
    await eventually(lambda: pipeline.engine.status("lb").in_flight == 1)
    last = None
    for i in range(1, 6):
        last = kube_emulator.patch("configmaps", "a", {"data": {"v": str(i)}})
    await eventually(lambda: pipeline.engine.status("lb").backlog == 6)  # all behind the attempt
    assert not recipient.requests  # still in flight
    await eventually(lambda: pipeline.engine.status("lb").coalesced_total == 5)
    recipient.status = 200
    assert last is not None
    await recipient.wait_events(lambda events: len(events) == 1)
    await eventually(lambda: pipeline.engine.status("lb").backlog == 0)
    assert [e["resourceversion"] for e in recipient.events()] == [last["metadata"]["resourceVersion"]]


async def test_a_coalesced_head_s_backoff_passes_to_its_successor_in_the_store_too(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """The newest state takes the failing head's place and its backoff; after a restart it
    still waits as long, instead of hitting a recipient that is down at once, from attempt 0."""
    await pipeline.add_cluster(kube_emulator)

    def answer(received: Received) -> int:
        return 503 if received.json["subject"] == "default/web" else 200

    recipient.status = answer
    await pipeline.subscribe(
        "lb", recipient, delivery={"coalesce": True, "initialBackoffSeconds": 60, "maxBackoffSeconds": 60}
    )
    await kube_emulator.wait_for_watches(1, "configmaps")
    kube_emulator.create(configmap("web", v="1"))
    await eventually(lambda: pipeline.engine.status("lb").retrying == 1)
    v2 = kube_emulator.patch("configmaps", "web", {"data": {"v": "2"}})
    await eventually(lambda: pipeline.engine.status("lb").coalesced_total == 1)
    kube_emulator.create(configmap("other"))  # a send: coalesced rows are dropped before it
    await recipient.wait_events(lambda events: any(e["subject"] == "default/other" for e in events))

    await pipeline.restart()
    [row] = await pipeline.store.pending_deliveries("lb")
    assert row.event.resource_version == v2["metadata"]["resourceVersion"]
    assert row.attempts == 1
    assert row.next_attempt_at is not None
    assert row.next_attempt_at > datetime.now(UTC) + timedelta(seconds=20)
    assert len([r for r in recipient.requests if r.json["subject"] == "default/web"]) == 1


async def test_coalescing_keeps_the_deletion_of_a_replaced_object(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """A name deleted and created again while the recipient lags: it gets the old object's
    DELETED, then only the newest state of the new one, in that order."""
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 503
    await pipeline.subscribe(
        "lb", recipient, delivery={"coalesce": True, "initialBackoffSeconds": 0.2, "maxBackoffSeconds": 0.2}
    )
    old = kube_emulator.create(configmap("a", v="0"))
    await eventually(lambda: len(recipient.requests) >= 1)
    kube_emulator.patch("configmaps", "a", {"data": {"v": "1"}})
    kube_emulator.delete("configmaps", "a")
    kube_emulator.create(configmap("a", v="2"))
    last = kube_emulator.patch("configmaps", "a", {"data": {"v": "3"}})
    await eventually(lambda: pipeline.engine.status("lb").coalesced_total >= 2)
    recipient.status = 200
    await recipient.wait_events(
        lambda events: any(e["resourceversion"] == last["metadata"]["resourceVersion"] for e in events)
    )
    await asyncio.sleep(0.3)
    received = [(e["type"].rsplit(".", 1)[-1], e["uid"]) for e in recipient.events()]
    new_uid = last["metadata"]["uid"]
    assert received[-2:] == [("deleted", old["metadata"]["uid"]), ("modified", new_uid)], received
    assert len(received) <= 3, received  # at most the ADDED that was in flight before these


async def test_a_name_deleted_and_created_again_arrives_in_order(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """Order is kept per name, not per uid: with many objects in parallel, the DELETED of an
    object still reaches the recipient before the ADDED of its successor."""
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("hooks", recipient, delivery={"concurrency": 32})
    # Deletions answer slowly: keyed by uid, the successor's ADDED would overtake them.
    recipient.delay = lambda received: 0.05 if b".deleted" in received.body else 0.0
    await kube_emulator.wait_for_watches(1, "configmaps")
    for round_ in range(5):
        for i in range(8):
            if round_:
                kube_emulator.delete("configmaps", f"cm-{i}")
            kube_emulator.create(configmap(f"cm-{i}", v=str(round_)))
    await recipient.wait_events(lambda events: len(events) >= 8 + 4 * 16)
    by_name: dict[str, list[tuple[str, str]]] = {}
    for event in recipient.events():
        by_name.setdefault(event["subject"], []).append((event["type"].rsplit(".", 1)[-1], event["uid"]))
    for name, sequence in by_name.items():
        for (type_a, uid_a), (type_b, uid_b) in itertools.pairwise(sequence):
            if uid_a != uid_b:
                assert (type_a, type_b) == ("deleted", "added"), (name, sequence)


async def test_batching_sends_cloudevent_batches(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    for i in range(30):
        kube_emulator.create(configmap(f"cm-{i:02}"))
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("batched", recipient, batching={"maxEvents": 10, "maxWaitMs": 50})
    await recipient.wait_events(lambda events: len(events) >= 30)
    assert all(
        r.headers["Content-Type"].startswith("application/cloudevents-batch+json") for r in recipient.accepted
    )
    assert max(len(r.json) for r in recipient.accepted) == 10
    assert len(recipient.accepted) <= 6


async def test_signatures_verify_with_the_standard_webhooks_library(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    secret = generate_secret()
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("signed", recipient, sink={"signingSecret": secret})
    kube_emulator.create(configmap("a"))
    await recipient.wait_events(lambda events: len(events) == 1)
    received = recipient.accepted[0]
    headers = {k.lower(): v for k, v in received.headers.items()}
    payload = Webhook(secret).verify(received.body, headers)
    assert payload["subject"] == "default/a"
    assert headers["webhook-id"] == payload["id"]


async def test_secrets_are_redacted_unless_the_subscription_opts_in(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("secrets", recipient, filter={"resources": ["secrets"]})
    kube_emulator.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": "default"},
            "data": {"password": "c2VjcmV0"},
        }
    )
    await recipient.wait_events(lambda events: len(events) == 1)
    assert recipient.events()[0]["data"]["object"]["data"] == {"password": "<redacted>"}
    assert b"c2VjcmV0" not in recipient.accepted[0].body


async def test_secret_values_are_not_kept_at_rest_for_subscriptions_that_never_send_them(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """The outbox stores each event once for its subscriptions: when none of them includes
    Secret data, the stored event has none either (a copy of the database must not hold the
    cluster's secrets for nothing)."""
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 503  # keep the events queued, stored
    await pipeline.subscribe(
        "secrets", recipient, filter={"resources": ["secrets"]}, delivery={"initialBackoffSeconds": 5}
    )
    await kube_emulator.wait_for_watches(1, "secrets")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default"}}
    kube_emulator.create({**secret, "data": {"password": "c2VjcmV0"}})
    kube_emulator.patch("secrets", "db", {"data": {"password": "bmV3c2VjcmV0"}})
    await eventually(lambda: pipeline.engine.status("secrets").backlog == 2)
    async with pipeline.store.engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT object, old_object FROM events"))).all()
    assert len(rows) == 2
    stored = " ".join(str(value) for row in rows for value in row)
    assert "<redacted>" in stored
    assert "c2VjcmV0" not in stored
    assert "bmV3c2VjcmV0" not in stored


async def test_filters_no_op_and_cel(pipeline: Pipeline, recipient: Recipient, kube_emulator: Any) -> None:
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe(
        "filtered",
        recipient,
        filter={"cel": "object.metadata.name.startsWith('web')", "eventTypes": ["ADDED", "MODIFIED"]},
    )
    await kube_emulator.wait_for_watches(1, "configmaps")
    kube_emulator.create(configmap("web-1", v="0"))
    kube_emulator.create(configmap("db-1", v="0"))
    kube_emulator.patch("configmaps", "web-1", {"metadata": {"annotations": {"touched": "yes"}}})
    kube_emulator.delete("configmaps", "web-1")
    kube_emulator.create(configmap("web-2"))
    await recipient.wait_events(lambda events: len(events) >= 3)
    await asyncio.sleep(0.2)
    delivered = [(t, s) for t, s, _ in summary(recipient.events())]
    # Order holds per object; different objects travel in parallel.
    assert [d for d in delivered if d[1] == "default/web-1"] == [
        ("added", "default/web-1"),
        ("modified", "default/web-1"),
    ]
    assert [d for d in delivered if d[1] != "default/web-1"] == [("added", "default/web-2")]


async def test_the_original_envelope(pipeline: Pipeline, recipient: Recipient, kube_emulator: Any) -> None:
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("legacy", recipient, format="mic-v1")
    made = kube_emulator.create(configmap("a"))
    await recipient.wait_for(lambda accepted: len(accepted) == 1)
    envelope = recipient.accepted[0].json
    assert envelope["app_environment_id"] == "c1"
    assert envelope["app_environment_type"] == "Kubernetes"
    assert envelope["resource_type"] == "ConfigMap"
    assert envelope["type"] == "ADDED"
    assert envelope["server_group_id"] == "default"
    assert envelope["resource_version"] == made["metadata"]["resourceVersion"]
    assert orjson.loads(envelope["message"])["metadata"]["name"] == "a"
    assert all(isinstance(value, str) for value in envelope.values())


async def test_restart_reports_only_what_changed_while_down(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    for name in ("same", "changed", "gone"):
        kube_emulator.create(configmap(name, v="0"))
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("hooks", recipient)
    await recipient.wait_events(lambda events: len(events) == 3)
    await eventually(lambda: pipeline.engine.status("hooks").backlog == 0)
    await asyncio.sleep(0.1)  # let the acknowledgements reach the store
    await pipeline.stop()
    kube_emulator.patch("configmaps", "changed", {"data": {"v": "1"}})
    kube_emulator.delete("configmaps", "gone")
    kube_emulator.create(configmap("new"))
    await pipeline.start()
    await recipient.wait_events(lambda events: len(events) >= 6)
    await asyncio.sleep(0.5)
    after = [(t, s) for t, s, _ in summary(recipient.events()[3:])]
    assert sorted(after) == [
        ("added", "default/new"),
        ("deleted", "default/gone"),
        ("modified", "default/changed"),
    ]


async def test_forced_410_delivers_the_deletes_of_the_gap(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    for i in range(4):
        kube_emulator.create(configmap(f"cm-{i}"))
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("hooks", recipient)
    await recipient.wait_events(lambda events: len(events) == 4)
    await kube_emulator.wait_for_watches(1, "configmaps")
    kube_emulator.pause()
    kube_emulator.drop_watches()
    kube_emulator.delete("configmaps", "cm-0")
    kube_emulator.patch("configmaps", "cm-1", {"data": {"x": "1"}})
    kube_emulator.compact()
    kube_emulator.resume()
    await recipient.wait_events(lambda events: len(events) >= 6)
    await asyncio.sleep(0.3)
    assert sorted((t, s) for t, s, _ in summary(recipient.events()[4:])) == [
        ("deleted", "default/cm-0"),
        ("modified", "default/cm-1"),
    ]


async def test_ping(pipeline: Pipeline, recipient: Recipient) -> None:
    await pipeline.subscribe("hooks", recipient, sink={"signingSecret": generate_secret()})
    result = await pipeline.engine.test("hooks")
    assert result.ok
    assert result.status_code == 200
    assert recipient.accepted[0].json["type"] == "io.mic.ping"


async def test_ping_takes_the_subscriptions_wire_form(pipeline: Pipeline, recipient: Recipient) -> None:
    """A batch receiver gets an array, a binary-mode one `ce-*` headers, a raw one a line of type
    PING: each signed over the body it receives."""
    secret = generate_secret()
    await pipeline.subscribe("batched", recipient, batching={"maxEvents": 10}, sink={"signingSecret": secret})
    await pipeline.subscribe("binary", recipient, format="cloudevents-binary", sink={"signingSecret": secret})
    await pipeline.subscribe("raw", recipient, format="raw", sink={"signingSecret": secret})
    for name in ("batched", "binary", "raw"):
        assert (await pipeline.engine.test(name)).ok
    batched, binary, raw = recipient.accepted
    assert batched.headers["Content-Type"].startswith("application/cloudevents-batch+json")
    assert [ping["type"] for ping in batched.json] == ["io.mic.ping"]
    assert binary.headers["ce-type"] == "io.mic.ping"
    assert binary.json == {"subscription": "binary"}
    assert raw.json == {"type": "PING", "object": {"subscription": "raw"}}
    for received in (batched, binary, raw):
        headers = {k.lower(): v for k, v in received.headers.items()}
        Webhook(secret).verify(received.body, headers)


async def test_backlog_limit_dead_letters_what_does_not_fit(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 503
    await pipeline.subscribe(
        "bounded",
        recipient,
        delivery={
            "backlogLimit": 3,
            "overflow": "dead-letter",
            "initialBackoffSeconds": 5,
            "maxBackoffSeconds": 5,
        },
    )
    await kube_emulator.wait_for_watches(1, "configmaps")
    for i in range(5):
        kube_emulator.create(configmap(f"cm-{i}"))
    await eventually(lambda: pipeline.engine.status("bounded").dead == 2)
    status = pipeline.engine.status("bounded")
    assert status.backlog == 3
    assert status.overflowing

    async def letters() -> list[Any]:
        return await pipeline.engine.dead_letters("bounded")

    async with asyncio.timeout(5):
        while len(await letters()) < 2:
            await asyncio.sleep(0.02)
    assert all("backlog limit of 3" in (row.last_error or "") for row in await letters())


async def test_an_event_over_the_backlog_limit_holds_its_object_until_its_dead_letter_is_stored(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """The refused event is dead-lettered by a task of its own. Were the object's next event
    sent and acknowledged first, the acknowledgement's mark (`superseded_at`) would find no dead
    letter yet, and a replay would send the refused, older state after the newer one."""
    store, engine = pipeline.store, pipeline.engine
    await pipeline.add_cluster(kube_emulator)
    blocking = True

    def answer(received: Received) -> int:
        return 503 if blocking and received.json["subject"].startswith("default/blocker") else 200

    recipient.status = answer
    delivery = {"backlogLimit": 2, "overflow": "dead-letter", "initialBackoffSeconds": 0.1}
    await pipeline.subscribe("bounded", recipient, delivery={**delivery, "maxBackoffSeconds": 0.2})
    await kube_emulator.wait_for_watches(1, "configmaps")

    gate = asyncio.Event()  # the refused row's dead-lettering waits for it (a slow store)
    real_dead_letter = store.dead_letter

    async def slow_refusal(subscription: str, ids: Any, error: str, *, attempted: bool = True) -> int:
        if not attempted:
            await gate.wait()
        return await real_dead_letter(subscription, ids, error, attempted=attempted)

    store.dead_letter = slow_refusal  # type: ignore[method-assign]
    for name in ("blocker-a", "blocker-b"):
        kube_emulator.create(configmap(name))
    await eventually(lambda: engine.status("bounded").backlog == 2)
    v1 = kube_emulator.create(configmap("web", v="1"))  # over the limit: refused
    await eventually(lambda: engine.status("bounded").dead == 1)
    blocking = False
    await eventually(lambda: engine.status("bounded").backlog == 0)

    v2 = kube_emulator.patch("configmaps", "web", {"data": {"v": "2"}})
    kube_emulator.create(configmap("other"))
    await recipient.wait_events(lambda events: any(e["subject"] == "default/other" for e in events))
    assert not [e for e in recipient.events() if e["subject"] == "default/web"], "web went before v1 was dead"

    gate.set()
    await recipient.wait_events(lambda events: any(e["subject"] == "default/web" for e in events))
    await eventually(lambda: engine.status("bounded").delivered_total == 4)  # blockers, other, web
    await pipeline.restart()  # every acknowledgement (and its mark) is written by then
    letters = await pipeline.engine.dead_letters("bounded")
    assert [row.event.resource_version for row in letters] == [v1["metadata"]["resourceVersion"]]
    assert letters[0].superseded_at is not None
    assert await pipeline.engine.replay("bounded", None) == Replayed([], 1)
    web = [e["resourceversion"] for e in recipient.events() if e["subject"] == "default/web"]
    assert web == [v2["metadata"]["resourceVersion"]]


async def test_a_failing_recipient_is_logged_when_it_fails_and_when_it_answers_again(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator must see in the log that a recipient is down (and when it is back), without
    one line per retry, and without the URL's credentials."""
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 503
    url = recipient.url + "?api_key=hunter2"
    await pipeline.subscribe(
        "hooks",
        recipient,
        sink={"url": url},
        delivery={"initialBackoffSeconds": 0.05, "maxBackoffSeconds": 0.05},
    )
    caplog.set_level(logging.INFO, logger="mic.delivery.lane")
    kube_emulator.create(configmap("web"))
    await eventually(lambda: pipeline.engine.status("hooks").failed_attempts_total >= 3)
    recipient.status = 200
    await eventually(lambda: pipeline.engine.status("hooks").delivered_total == 1)

    lines = [r.getMessage() for r in caplog.records if r.name == "mic.delivery.lane"]
    failing = [line for line in lines if "failed (recipient answered 503)" in line]
    assert len(failing) == 1, lines  # the first failure; the next line would come a minute later
    origin = recipient.url.split("/hook")[0]
    assert f"delivery to {origin} failed" in failing[0]
    assert [line for line in lines if "answers again, after" in line]
    assert not [line for line in lines if "hunter2" in line]


async def test_when_the_recipient_answers_again_objects_waiting_out_a_backoff_go_at_once(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """After an outage the backlog drains at once, not as each object's backoff runs out."""
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 503
    await pipeline.subscribe("lb", recipient, delivery={"initialBackoffSeconds": 60, "maxBackoffSeconds": 60})
    await kube_emulator.wait_for_watches(1, "configmaps")
    for name in ("a", "b", "c"):
        kube_emulator.create(configmap(name))
    await eventually(lambda: pipeline.engine.status("lb").retrying == 3)  # each waits 30-90 s
    recipient.status = 200
    kube_emulator.create(configmap("d"))  # goes at once, and gets through
    await eventually(lambda: pipeline.engine.status("lb").delivered_total == 4, timeout=5)
    assert sorted(e["subject"] for e in recipient.events()) == [f"default/{n}" for n in "abcd"]


async def test_a_failing_store_holds_events_back_and_loses_none(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """Fault injection: the outbox write fails twice (as a locked or unreachable database
    would); the informer waits, and every change still arrives, in order."""
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("hooks", recipient)
    await kube_emulator.wait_for_watches(1, "configmaps")
    locked = LockedStore(pipeline.store, "record_changes", times=2)
    kube_emulator.create(configmap("a", v="0"))
    kube_emulator.patch("configmaps", "a", {"data": {"v": "1"}})
    await recipient.wait_events(lambda events: len(events) >= 2, timeout=20)
    assert [t for t, _, _ in summary(recipient.events())] == ["added", "modified"]
    assert locked.left == 0


async def test_a_subscription_made_while_lists_run_after_a_restart_gets_every_object(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """After a restart, informers start from the ledger and their first list reports only
    what changed. A subscription created before that list completes must still get every
    object as its initial state, once each."""
    for i in range(20):
        kube_emulator.create(configmap(f"cm-{i:02}"))
    await pipeline.add_cluster(kube_emulator)
    async with Recipient() as first:
        await pipeline.subscribe("first", first)
        await first.wait_events(lambda events: len(events) >= 20)
    kube_emulator.set_latency(0.3)  # the lists after the restart take a while
    await pipeline.restart()
    await pipeline.subscribe("second", recipient)
    informers = list(pipeline.hub._cluster(kube_emulator.name).informers())
    assert not any(i.synced for i in informers), "the list completed before the subscription: slow it"
    kube_emulator.set_latency(0)
    await recipient.wait_events(lambda events: len({e["subject"] for e in events}) == 20)
    await asyncio.sleep(0.5)
    assert sorted(e["subject"] for e in recipient.events()) == [f"default/cm-{i:02}" for i in range(20)]


async def test_a_replay_is_not_overtaken_by_rows_committed_meanwhile(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """A change routed while a replay commits must not put rows with later ids in the lane
    before the replayed ones: the lane reads the store only past what it holds. The wait
    inside the replay gives the writer the time to commit, if it can (it cannot: a replay holds
    the writer's lock), so the test passes whatever the timing when the replay is right."""
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 400
    await pipeline.subscribe("hooks", recipient)
    kube_emulator.create(configmap("rejected"))
    engine = pipeline.engine
    await eventually(lambda: engine.status("hooks").dead == 1)
    recipient.status = 200
    real = pipeline.store.replay

    async def replay_then_a_change(*args: Any, **kwargs: Any) -> int:
        count = await real(*args, **kwargs)
        kube_emulator.create(configmap("later"))
        await eventually(lambda: engine._writer.queued > 0)  # routed, waiting for the writer
        await asyncio.sleep(0.5)
        return count

    pipeline.store.replay = replay_then_a_change  # type: ignore[method-assign]
    assert len((await engine.replay("hooks", None)).ids) == 1
    await recipient.wait_events(lambda events: len(events) == 2)  # what it accepted
    assert sorted(e["subject"] for e in recipient.events()) == ["default/later", "default/rejected"]
    await eventually(lambda: engine.status("hooks").backlog == 0)


async def test_dead_lettering_over_the_backlog_limit_is_retried_until_stored(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 503
    await pipeline.subscribe(
        "bounded",
        recipient,
        delivery={"backlogLimit": 2, "overflow": "dead-letter", "initialBackoffSeconds": 5},
    )
    await kube_emulator.wait_for_watches(1, "configmaps")
    locked = LockedStore(pipeline.store, "dead_letter", times=1)
    for i in range(4):
        kube_emulator.create(configmap(f"cm-{i}"))
    async with asyncio.timeout(10):
        while len(await pipeline.engine.dead_letters("bounded")) < 2:
            await asyncio.sleep(0.05)
    assert locked.left == 0
    assert pipeline.engine.status("bounded").backlog == 2


async def test_a_stored_spec_that_is_no_longer_valid_does_not_stop_the_others(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any, caplog: Any
) -> None:
    """Specs stored by an older MIC under looser rules: the engine starts the rest, says which
    one it left stopped and why, and runs it once a replacement is valid."""
    from mic.store import SubscriptionRecord

    bad = {"name": "old", "sink": {"url": recipient.url, "headers": {"X-Team": "caf€"}}}
    bad["filter"] = {"resources": ["configmaps"]}
    await pipeline.store.create_subscription(SubscriptionRecord(name="old", spec=bad))
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("good", recipient)
    await pipeline.restart()
    assert pipeline.engine.names() == ["good"]
    assert "subscription old is not started" in caplog.text
    assert "sink.headers.X-Team" in caplog.text
    kube_emulator.create(configmap("a"))
    await recipient.wait_events(lambda events: [e["subject"] for e in events] == ["default/a"])
    fixed = dict(bad, sink={"url": recipient.url, "headers": {"X-Team": "cafe"}})
    record = await pipeline.store.replace_subscription(SubscriptionRecord(name="old", spec=fixed))
    await pipeline.engine.apply(record)
    assert pipeline.engine.names() == ["good", "old"]


async def test_nothing_is_sent_while_this_mic_may_not_deliver(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """The service's lease gate (`StoreLease.current`): a holder frozen past its renewals
    holds every request back until it renews, or exits for having lost the lease."""
    gate = {"open": False, "asked": 0}

    def may_deliver() -> bool:
        gate["asked"] += 1
        return bool(gate["open"])

    pipeline.engine._may_deliver = may_deliver
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("hooks", recipient)
    kube_emulator.create(configmap("a"))
    await eventually(lambda: gate["asked"] >= 3)  # the request waits at the gate, asking again
    assert recipient.requests == []
    gate["open"] = True
    await recipient.wait_events(lambda events: len(events) == 1)


async def test_a_replayed_dead_letter_older_than_what_its_object_got_since_is_not_sent(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """v1 becomes a dead letter, v2 is delivered, then the dead letters are replayed: sending
    v1 now would leave the recipient with a state that is gone. It is dropped; a dead letter of
    another object, still the newest word on it, is sent."""
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 400
    await pipeline.subscribe("hooks", recipient)
    kube_emulator.create(configmap("web", v="1"))
    kube_emulator.create(configmap("api", v="1"))
    await eventually(lambda: pipeline.engine.status("hooks").dead == 2)
    recipient.status = 200
    changed = kube_emulator.patch("configmaps", "web", {"data": {"v": "2"}})
    await recipient.wait_events(lambda events: len(events) == 1)
    assert await pipeline.engine.replay("hooks", None) == Replayed(ids=ANY, superseded=1)
    await recipient.wait_events(lambda events: len(events) == 2)
    await eventually(lambda: pipeline.engine.status("hooks").backlog == 0)
    assert pipeline.engine.status("hooks").coalesced_total == 1  # web's v1: dropped, not sent
    assert [(e["subject"], e["resourceversion"]) for e in recipient.events()] == [
        ("default/web", changed["metadata"]["resourceVersion"]),
        ("default/api", kube_emulator.get("configmaps", "api")["metadata"]["resourceVersion"]),
    ]
    assert pipeline.engine.status("hooks").dead == 0


async def test_a_dead_deleted_is_not_superseded_by_a_new_object_of_the_same_name(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """web (uid A) is deleted, its DELETED refused; web is created again (uid B) and delivered.
    B's ADDED says nothing of A: replayed after a restart, A's DELETED is sent, or a recipient
    that tracks uids keeps A for good."""
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("hooks", recipient)
    first = kube_emulator.create(configmap("web", v="1"))
    await recipient.wait_events(lambda events: len(events) == 1)
    recipient.status = lambda received: 400 if received.json["type"].endswith("deleted") else 200
    kube_emulator.delete("configmaps", "web")
    await eventually(lambda: pipeline.engine.status("hooks").dead == 1)
    second = kube_emulator.create(configmap("web", v="2"))
    await recipient.wait_events(lambda events: len(events) == 2)
    await eventually(lambda: pipeline.engine.status("hooks").delivered_total == 2)
    await pipeline.restart()
    recipient.status = 200
    assert await pipeline.engine.replay("hooks", None) == Replayed(ids=ANY, superseded=0)
    await recipient.wait_events(lambda events: len(events) == 3)
    assert [(e["type"], e["data"]["object"]["metadata"]["uid"]) for e in recipient.events()] == [
        ("io.mic.resource.added", first["metadata"]["uid"]),
        ("io.mic.resource.added", second["metadata"]["uid"]),
        ("io.mic.resource.deleted", first["metadata"]["uid"]),
    ]


async def test_a_dead_letter_superseded_before_a_restart_is_not_sent_by_a_replay_after_it(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """What the recipient got since a dead letter is kept with the dead letter in the store
    (`superseded_at`), so a replay after a restart still knows that v1 would undo v2."""
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 400
    await pipeline.subscribe("hooks", recipient)
    kube_emulator.create(configmap("web", v="1"))
    await eventually(lambda: pipeline.engine.status("hooks").dead == 1)
    recipient.status = 200
    changed = kube_emulator.patch("configmaps", "web", {"data": {"v": "2"}})
    await recipient.wait_events(lambda events: len(events) == 1)
    await eventually(lambda: pipeline.engine.status("hooks").delivered_total == 1)
    delivered_at = pipeline.engine.status("hooks").last_delivered_at
    await pipeline.restart()
    assert await pipeline.engine.replay("hooks", None) == Replayed(ids=[], superseded=1)
    status = pipeline.engine.status("hooks")
    assert (status.dead, status.backlog, status.coalesced_total) == (0, 0, 1)
    # the last delivery is told after a restart too (its acknowledgement's time, not the lane's)
    assert delivered_at is not None
    assert status.last_delivered_at is not None
    assert abs(status.last_delivered_at - delivered_at) < 5
    assert await pipeline.store.dead_letters("hooks") == []
    kube_emulator.patch("configmaps", "web", {"data": {"v": "3"}})  # the lane still sends
    await recipient.wait_events(lambda events: len(events) == 2)
    assert recipient.events()[0]["resourceversion"] == changed["metadata"]["resourceVersion"]


async def test_a_dead_letter_is_not_replayed_behind_a_newer_event_of_its_object_still_queued(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    """v1 dead, v2 waiting for a retry, replay: v1 would go after v2 and stay the last word."""
    await pipeline.add_cluster(kube_emulator)
    recipient.status = 400
    await pipeline.subscribe(
        "hooks", recipient, delivery={"initialBackoffSeconds": 0.2, "maxBackoffSeconds": 0.2}
    )
    kube_emulator.create(configmap("web", v="1"))
    kube_emulator.create(configmap("api", v="1"))
    await eventually(lambda: pipeline.engine.status("hooks").dead == 2)
    recipient.status = 503
    changed = kube_emulator.patch("configmaps", "web", {"data": {"v": "2"}})
    await eventually(lambda: pipeline.engine.status("hooks").retrying == 1)
    assert await pipeline.engine.replay("hooks", None) == Replayed(ids=ANY, superseded=1)  # api's v1 only
    recipient.status = 200
    await recipient.wait_events(lambda events: len(events) == 2)
    await eventually(lambda: pipeline.engine.status("hooks").backlog == 0)
    assert sorted((e["subject"], e["resourceversion"]) for e in recipient.events()) == [
        ("default/api", kube_emulator.get("configmaps", "api")["metadata"]["resourceVersion"]),
        ("default/web", changed["metadata"]["resourceVersion"]),
    ]
    assert pipeline.engine.status("hooks").coalesced_total == 1

"""A subscription's view changes (a cluster relabelled in or out of its selector, a PUT that
narrows its filter, a cluster PUT changing connection and labels at once): the recipient gets
ADDED for what enters, DELETED for what leaves, each under a new id, and nothing is missed
when a change races the view change or another selected cluster is down."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest
from delivery_helpers import Pipeline, Recipient, eventually, summary

from mic.kube.direct import from_token
from mic.service.connections import ConnectionPolicy
from mic.service.supervisor import Supervisor
from mic.store import ClusterRecord
from mic.testing.objects import configmap, namespace


def kinds(recipient: Recipient) -> list[tuple[str, str]]:
    return [(kind, subject) for kind, subject, _ in summary(recipient.events())]


async def add_down_cluster(pipeline: Pipeline, labels: dict[str, str]) -> None:
    """A selected cluster that never answers: its part of every snapshot stays deferred."""
    await pipeline.store.create_cluster(
        ClusterRecord(name="down", connection={"type": "test"}, labels=labels)
    )
    await pipeline.hub.add_cluster(
        "down", from_token("https://127.0.0.1:9", token="x", insecure=True), labels=labels
    )


async def test_relabelling_out_and_in_sends_new_ids_even_with_a_selected_cluster_down(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    kube_emulator.create(configmap("web"))
    await pipeline.add_cluster(kube_emulator, labels={"env": "prod"})
    await add_down_cluster(pipeline, {"env": "prod"})
    await pipeline.subscribe("prod", recipient, filter={"clusterSelector": "env=prod"})
    await recipient.wait_events(lambda events: len(events) == 1)
    for labels, count in (({"env": "dev"}, 2), ({"env": "prod"}, 3), ({"env": "dev"}, 4)):
        await pipeline.hub.set_cluster_labels(kube_emulator.name, labels)
        await recipient.wait_events(lambda events, count=count: len(events) == count)
    assert kinds(recipient) == [("added", "default/web"), ("deleted", "default/web")] * 2
    # A recipient dropping duplicate ids (as examples/webhook_receiver.py does) must keep all four.
    assert len({event["id"] for event in recipient.events()}) == 4

    # What the deferred snapshot of the down cluster remembers is only that cluster's.
    deferred = pipeline.engine._subscriptions["prod"].deferred
    await eventually(lambda: [cluster for cluster, _ in deferred] == ["down"])  # c1's was taken
    for _ in range(50):
        kube_emulator.patch("configmaps", "web", {"data": {"v": "x"}})
        kube_emulator.patch("configmaps", "web", {"data": {"v": "y"}})
    await pipeline.hub.set_cluster_labels(kube_emulator.name, {"env": "prod"})
    await recipient.wait_events(lambda events: len(events) >= 5)
    assert [cluster for cluster, _ in deferred] == ["down"]
    assert all(not snapshot.routed for snapshot in deferred.values())


async def test_a_delete_racing_a_relabel_out_is_delivered(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    kube_emulator.create(configmap("web"))
    kube_emulator.create(configmap("api"))
    await pipeline.add_cluster(kube_emulator, labels={"env": "prod"})
    await pipeline.subscribe("prod", recipient, filter={"clusterSelector": "env=prod"})
    await recipient.wait_events(lambda events: len(events) == 2)
    subscription = pipeline.engine._subscriptions["prod"]
    await eventually(lambda: not subscription.deferred)
    informer = pipeline.hub.informer(kube_emulator.name, subscription.watches[0])
    assert informer is not None

    # Anything holding the route lock a moment (another informer's batch, a snapshot waiting
    # for its commit) lets the cache run ahead of routing: the delete is cached, not routed.
    lock = pipeline.engine._route_lock
    await lock.acquire()
    relabel = asyncio.create_task(pipeline.hub.set_cluster_labels(kube_emulator.name, {"env": "dev"}))
    await eventually(lambda: bool(lock._waiters))  # the relabel waits for the lock first
    kube_emulator.delete("configmaps", "api")
    await eventually(lambda: informer.cache.get("default", "api") is None)
    lock.release()
    await relabel
    await recipient.wait_events(lambda events: len(events) == 4)
    assert sorted(kinds(recipient)[2:]) == [("deleted", "default/api"), ("deleted", "default/web")]


async def test_a_put_narrowing_the_filter_deletes_what_it_leaves_out(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    kube_emulator.create(configmap("api", lb="mic"))
    kube_emulator.create(configmap("web", lb="nginx"))
    kube_emulator.create(namespace("team-b"))
    kube_emulator.create(configmap("db", "team-b", lb="mic"))
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("s", recipient, filter={"cel": 'object.data["lb"] == "mic"'})
    await recipient.wait_events(lambda events: len(events) == 2)
    assert sorted(kinds(recipient)) == [("added", "default/api"), ("added", "team-b/db")]

    record = await pipeline.store.get_subscription("s")
    spec = dict(record.spec)
    spec["filter"] = {**spec["filter"], "cel": 'object.data["lb"] == "nginx"', "namespaces": ["default"]}
    await pipeline.engine.apply(
        await pipeline.store.replace_subscription(dataclasses.replace(record, spec=spec))
    )
    await recipient.wait_events(lambda events: len(events) == 5)
    assert sorted(kinds(recipient)[2:]) == [
        ("added", "default/web"),  # the snapshot of the new view
        ("deleted", "default/api"),  # CEL no longer matches
        ("deleted", "team-b/db"),  # namespace no longer included
    ]


async def test_a_cluster_put_changing_connection_and_labels_sends_the_newly_selected_objects(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    kube_emulator.create(configmap("web"))
    supervisor = Supervisor(pipeline.store, pipeline.hub, ConnectionPolicy())
    text = kube_emulator.kubeconfig_yaml()
    try:
        await supervisor.create(
            ClusterRecord(
                name="c1", connection={"type": "kubeconfig", "kubeconfig": text}, labels={"env": "staging"}
            )
        )
        await pipeline.subscribe("prod", recipient, filter={"clusterSelector": "env=prod"})
        assert await pipeline.hub.wait_synced(timeout=5)
        await pipeline.engine._writer.flush()  # the first list is in the ledger
        await eventually(lambda: not pipeline.engine._subscriptions["prod"].deferred)  # snapshot taken
        assert recipient.events() == []

        current = await pipeline.store.get_cluster("c1")
        rotated = {"type": "kubeconfig", "kubeconfig": text + "\n# rotated\n"}
        await supervisor.replace(dataclasses.replace(current, labels={"env": "prod"}, connection=rotated))
        await recipient.wait_events(lambda events: len(events) == 1)
        assert kinds(recipient) == [("added", "default/web")]
    finally:
        await supervisor.close()


async def test_relabelling_out_a_cluster_down_since_the_start_deletes_what_its_ledger_holds(
    pipeline: Pipeline, recipient: Recipient, kube_emulators: Any
) -> None:
    """MIC restarts while one selected cluster is down; it is then relabelled out (perhaps
    because it is down). That cluster has no informer to name its scopes by: another cluster
    watching the same resource stands in, and its ledger's objects are sent as DELETED."""
    up = await kube_emulators("up")
    gone = await kube_emulators("gone")
    up.create(configmap("web"))
    gone.create(configmap("api"))
    gone.create(configmap("db"))
    await pipeline.add_cluster(up, labels={"env": "prod"})
    await pipeline.add_cluster(gone, labels={"env": "prod"})
    await pipeline.subscribe("prod", recipient, filter={"clusterSelector": "env=prod"})
    await recipient.wait_events(lambda events: len(events) == 3)
    await eventually(lambda: pipeline.engine.status("prod").backlog == 0)

    await gone.stop()
    await pipeline.restart()
    assert await pipeline.hub.wait_synced(timeout=1) is False  # "gone" cannot be listed
    await pipeline.hub.set_cluster_labels("gone", {"env": "dev"})
    await recipient.wait_events(lambda events: len(events) == 5)
    farewells = recipient.events()[3:]
    assert sorted((event["type"], event["subject"], event["cluster"]) for event in farewells) == [
        ("io.mic.resource.deleted", "default/api", "gone"),
        ("io.mic.resource.deleted", "default/db", "gone"),
    ]
    assert {event["kind"] for event in farewells} == {"ConfigMap"}


async def test_relabelling_out_the_only_cluster_down_since_the_start_says_what_it_cannot_send(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """No cluster resolved the subscription's resources: the objects cannot be named."""
    kube_emulator.create(configmap("web"))
    await pipeline.add_cluster(kube_emulator, labels={"env": "prod"})
    await pipeline.subscribe("prod", recipient, filter={"clusterSelector": "env=prod"})
    await recipient.wait_events(lambda events: len(events) == 1)
    await kube_emulator.stop()
    await pipeline.restart()
    with caplog.at_level(logging.WARNING, logger="mic.delivery.engine"):
        await pipeline.hub.set_cluster_labels(kube_emulator.name, {"env": "dev"})
    assert "its configmaps were never resolved there or in another cluster" in caplog.text
    assert await pipeline.store.backlog("prod") == 0

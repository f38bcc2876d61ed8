"""End to end through the store: a CEL filter over the object makes a subscription follow the
objects it matches. A ConfigMap (standing in for an Ingress whose class changes) that starts
to match reaches the recipient as ADDED, one that stops matching as DELETED, and one deleted
while MIC was down as DELETED, while a subscription without CEL hears the same changes as
they happened."""

from __future__ import annotations

from typing import Any

from delivery_helpers import Pipeline, Recipient, eventually, summary

from mic.testing.objects import configmap

FOLLOWS_MIC = '"lb" in object.data && object.data["lb"] == "mic"'


def kinds(recipient: Recipient) -> list[tuple[str, str]]:
    return [(kind, subject) for kind, subject, _ in summary(recipient.events())]


async def test_objects_entering_and_leaving_the_filter(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    everything = await Recipient().start()
    try:
        kube_emulator.create(configmap("web", lb="nginx"))
        kube_emulator.create(configmap("api", lb="mic"))
        await pipeline.add_cluster(kube_emulator)
        await pipeline.subscribe("follows-mic", recipient, filter={"cel": FOLLOWS_MIC})
        await pipeline.subscribe("everything", everything)
        await recipient.wait_events(lambda events: len(events) == 1)
        assert kinds(recipient) == [("added", "default/api")]

        kube_emulator.patch("configmaps", "web", {"data": {"lb": "mic"}})  # enters
        kube_emulator.patch("configmaps", "api", {"data": {"lb": "nginx"}})  # leaves
        kube_emulator.patch("configmaps", "api", {"data": {"lb": "haproxy"}})  # stays out
        kube_emulator.patch("configmaps", "web", {"data": {"port": "80"}})  # stays in
        kube_emulator.delete("configmaps", "web")
        await recipient.wait_events(lambda events: len(events) == 5)
        await everything.wait_events(lambda events: len(events) == 2 + 5)
        assert kinds(recipient) == [
            ("added", "default/api"),
            ("added", "default/web"),
            ("deleted", "default/api"),
            ("modified", "default/web"),
            ("deleted", "default/web"),
        ]
        assert kinds(everything)[2:] == [
            ("modified", "default/web"),
            ("modified", "default/api"),
            ("modified", "default/api"),
            ("modified", "default/web"),
            ("deleted", "default/web"),
        ]
        left = recipient.events()[2]
        assert left["data"]["object"]["data"]["lb"] == "nginx"  # its state now, which left
        await eventually(lambda: pipeline.engine.status("follows-mic").backlog == 0)
        await eventually(lambda: pipeline.engine.status("everything").backlog == 0)
    finally:
        await everything.stop()


async def test_what_changed_while_down_reaches_a_cel_subscription(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    kube_emulator.create(configmap("api", lb="mic"))
    kube_emulator.create(configmap("web", lb="mic"))
    kube_emulator.create(configmap("db", lb="nginx"))
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("follows-mic", recipient, filter={"cel": FOLLOWS_MIC})
    await recipient.wait_events(lambda events: len(events) == 2)
    await eventually(lambda: pipeline.engine.status("follows-mic").backlog == 0)

    await pipeline.stop()
    kube_emulator.delete("configmaps", "api")
    kube_emulator.patch("configmaps", "web", {"data": {"lb": "nginx"}})  # left while down
    kube_emulator.patch("configmaps", "db", {"data": {"lb": "mic"}})  # entered while down
    await pipeline.start()

    await recipient.wait_events(lambda events: len(events) == 5)
    assert sorted(kinds(recipient)[2:]) == [
        ("added", "default/db"),
        ("deleted", "default/api"),
        ("deleted", "default/web"),
    ]

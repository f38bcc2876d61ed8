"""An object deleted while MIC was down reaches a subscription with a label selector.

After a restart the informer lists from the ledger of the selector's scope and reports an
object that is gone as a tombstone: name, uid and resourceVersion, no labels. The matcher
used to re-check the label selector on that tombstone, found no labels, and dropped the
DELETED; the ledger entry was removed all the same, so the delete was lost for good.
"""

from __future__ import annotations

from typing import Any

from delivery_helpers import Pipeline, Recipient, eventually, summary

from mic.testing.objects import configmap


async def test_a_delete_while_down_reaches_a_label_selector_subscription(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any
) -> None:
    kube_emulator.create(configmap("web", labels={"app": "web"}, v="0"))
    kube_emulator.create(configmap("db", labels={"app": "db"}, v="0"))
    await pipeline.add_cluster(kube_emulator)
    await pipeline.subscribe("s1", recipient, filter={"labelSelector": "app=web"})
    await recipient.wait_events(lambda events: len(events) == 1)
    await eventually(lambda: pipeline.engine.status("s1").backlog == 0)

    await pipeline.stop()
    kube_emulator.delete("configmaps", "web", namespace="default")
    await pipeline.start()

    await recipient.wait_events(lambda events: len(events) == 2)
    kinds = [(kind, subject) for kind, subject, _ in summary(recipient.events())]
    assert kinds == [("added", "default/web"), ("deleted", "default/web")]

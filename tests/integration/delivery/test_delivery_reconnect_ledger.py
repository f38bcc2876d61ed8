"""A cluster reconnected (its connection changed) must resume from the ledger even when the
cluster's own watch (`mic clusters add --resource`) is declared before the subscription's:
informers start only once every pending watch has been resolved to them, so the one the
subscription shares gets the ledger. Started without it, the informer re-sent every object as
ADDED and never reported what was deleted while the cluster was disconnected."""

from __future__ import annotations

from typing import Any

import pytest
from delivery_helpers import Pipeline, Recipient, eventually, summary

from mic.kube.kubeconfig import from_kubeconfig_text
from mic.testing.objects import configmap


@pytest.mark.parametrize("cluster_watch_first", [False, True])
async def test_a_reconnect_reports_the_delete_made_meanwhile_and_nothing_else(
    pipeline: Pipeline, recipient: Recipient, kube_emulator: Any, cluster_watch_first: bool
) -> None:
    kube_emulator.create(configmap("web"))
    kube_emulator.create(configmap("api"))
    await pipeline.add_cluster(kube_emulator, labels={"env": "prod"})
    if cluster_watch_first:  # what the supervisor declares for the cluster's `resources`
        await pipeline.hub.watch("configmaps", clusters=[kube_emulator.name])
    await pipeline.subscribe("prod", recipient, filter={"clusterSelector": "env=prod"})
    await recipient.wait_events(lambda events: len(events) == 2)
    await eventually(lambda: pipeline.engine.status("prod").backlog == 0)

    # what the supervisor does when a cluster's connection changes: remove it, add it again
    await pipeline.hub.remove_cluster(kube_emulator.name)
    kube_emulator.delete("configmaps", "api")
    await pipeline.hub.add_cluster(
        kube_emulator.name, from_kubeconfig_text(kube_emulator.kubeconfig_yaml()), labels={"env": "prod"}
    )
    assert await pipeline.hub.wait_synced(timeout=5)
    await recipient.wait_events(lambda events: len(events) >= 3)
    await pipeline.engine._writer.flush()  # the whole relist is routed and stored
    await eventually(lambda: pipeline.engine.status("prod").backlog == 0)  # ... and sent
    assert [(kind, subject) for kind, subject, _ in summary(recipient.events())[2:]] == [
        ("deleted", "default/api")
    ]

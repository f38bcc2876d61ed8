"""The supervisor restarts only what changed, and frees what is removed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from mic.hub import ClusterState
from mic.kube.informer import Informer
from mic.service.supervisor import Supervisor
from mic.store import AlreadyExistsError, ClusterRecord, StoreUnavailableError
from mic.testing.emulator import KubeEmulator

pytestmark = pytest.mark.integration


def record(emulator: KubeEmulator, name: str = "eu-1", **fields: Any) -> ClusterRecord:
    connection = {"type": "kubeconfig", "kubeconfig": emulator.kubeconfig_yaml(), "context": None}
    return ClusterRecord(name=name, connection=connection, **fields)


def informers(supervisor: Supervisor, name: str = "eu-1") -> dict[str, Informer]:
    runtime = supervisor.hub._cluster(name)
    return {informer.resource.resource: informer for informer in runtime.informers()}


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_only_what_changed_restarts(supervisor: Supervisor, kube_emulator: KubeEmulator) -> None:
    stored = await supervisor.create(record(kube_emulator, labels={"a": "1"}, resources=("configmaps",)))
    await eventually(lambda: "configmaps" in informers(supervisor))
    configmaps = informers(supervisor)["configmaps"]
    client = supervisor.hub._cluster("eu-1").client

    # labels: updated in place, same informer, same client
    stored = await supervisor.replace(record(kube_emulator, labels={"a": "2"}, resources=("configmaps",)))
    assert supervisor.hub.status("eu-1").labels == {"a": "2"}
    assert informers(supervisor)["configmaps"] is configmaps
    assert supervisor.hub._cluster("eu-1").client is client

    # resources: only the difference is watched
    await supervisor.replace(record(kube_emulator, labels={"a": "2"}, resources=("configmaps", "services")))
    await eventually(lambda: "services" in informers(supervisor))
    assert informers(supervisor)["configmaps"] is configmaps
    services = informers(supervisor)["services"]
    await supervisor.replace(record(kube_emulator, labels={"a": "2"}, resources=("services",)))
    assert set(informers(supervisor)) == {"services"}
    assert informers(supervisor)["services"] is services

    # an identical replacement changes nothing at all
    same = await supervisor.replace(record(kube_emulator, labels={"a": "2"}, resources=("services",)))
    assert informers(supervisor)["services"] is services
    assert same.generation > stored.generation

    # connection: a new client and new informers, same watches
    changed = record(kube_emulator, labels={"a": "2"}, resources=("services",))
    changed = ClusterRecord(
        name="eu-1",
        connection={**changed.connection, "kubeconfig": kube_emulator.kubeconfig_yaml(namespace="other")},
        labels=changed.labels,
        resources=changed.resources,
    )
    await supervisor.replace(changed)
    await eventually(lambda: "services" in informers(supervisor))
    assert supervisor.hub._cluster("eu-1").client is not client
    assert informers(supervisor)["services"] is not services


async def test_delete_stops_and_frees(supervisor: Supervisor, kube_emulator: KubeEmulator) -> None:
    await supervisor.create(record(kube_emulator, resources=("configmaps",)))
    await supervisor.ensure_cached("eu-1", "services")
    assert set(informers(supervisor)) == {"configmaps", "services"}
    await supervisor.delete("eu-1")
    assert supervisor.hub.cluster_names() == []
    assert supervisor.statuses() == []
    # re-created with the same name: no leftover on-demand watch
    await supervisor.create(record(kube_emulator))
    await eventually(lambda: supervisor.hub.status("eu-1").state is ClusterState.READY)
    assert informers(supervisor) == {}


async def test_a_store_failure_leaves_the_hub_untouched(
    supervisor: Supervisor, kube_emulator: KubeEmulator
) -> None:
    await supervisor.create(record(kube_emulator, resources=("configmaps",)))
    await eventually(lambda: "configmaps" in informers(supervisor))
    with pytest.raises(AlreadyExistsError):
        await supervisor.create(record(kube_emulator, resources=("services",)))
    assert set(informers(supervisor)) == {"configmaps"}

    async def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailableError("store unavailable: disk I/O error")

    supervisor.store.replace_cluster = unavailable  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailableError):
        await supervisor.replace(record(kube_emulator, resources=("services",)))
    assert set(informers(supervisor)) == {"configmaps"}


async def test_resync_picks_up_changes_made_elsewhere(
    supervisor: Supervisor, kube_emulator: KubeEmulator
) -> None:
    # another MIC sharing the database writes straight to the store
    await supervisor.store.create_cluster(record(kube_emulator, resources=("configmaps",)))
    await eventually(lambda: "eu-1" in supervisor.hub.cluster_names())
    await eventually(lambda: "configmaps" in informers(supervisor))
    await supervisor.store.delete_cluster("eu-1")
    await eventually(lambda: supervisor.hub.cluster_names() == [])


async def test_unbuildable_connection_is_reported_and_retried(
    supervisor: Supervisor, kube_emulator: KubeEmulator, tmp_path: Any
) -> None:
    path = tmp_path / "eu-1.yaml"
    supervisor.policy = type(supervisor.policy)(kubeconfig_dir=tmp_path)
    await supervisor.store.create_cluster(
        ClusterRecord(
            name="eu-1", connection={"type": "kubeconfigFile", "path": "eu-1.yaml", "context": None}
        )
    )
    await eventually(lambda: supervisor.view("eu-1").status.last_error is not None)
    view = supervisor.view("eu-1")
    assert view.status.state is ClusterState.UNREACHABLE
    assert "no kubeconfig file 'eu-1.yaml'" in (view.status.last_error or "")
    kube_emulator.write_kubeconfig(path)
    await eventually(lambda: supervisor.view("eu-1").status.state is ClusterState.READY)

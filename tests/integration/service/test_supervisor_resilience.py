"""The supervisor keeps clusters running through failures and changes on disk."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mic.hub import ClusterState, Hub
from mic.kube.errors import ConfigError
from mic.kube.informer import InformerOptions
from mic.service.connections import (
    ConnectionPolicy,
    KubeconfigFileConnection,
    build_connection,
    parse_connection,
    resolve_kubeconfig_path,
    source_fingerprint,
)
from mic.service.supervisor import Supervisor
from mic.store import ClusterRecord, Store
from mic.testing import KubeEmulator, TokenPolicy

pytestmark = pytest.mark.integration


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def file_record(name: str, path: str, **fields: Any) -> ClusterRecord:
    return ClusterRecord(
        name=name, connection={"type": "kubeconfigFile", "path": path, "context": None}, **fields
    )


async def test_a_rewritten_kubeconfig_file_is_picked_up_without_an_api_write(
    store: Store, kube_emulators: Any, tmp_path: Path
) -> None:
    emulator = await kube_emulators(name="c1", tokens={"old": TokenPolicy(), "new": TokenPolicy()})
    emulator.write_kubeconfig(tmp_path / "eu-1.yaml", token="old")
    hub = Hub(informer_options=InformerOptions(auth_retry_interval=0.2, initial_backoff=0.05))
    supervisor = Supervisor(store, hub, ConnectionPolicy(kubeconfig_dir=tmp_path), resync_interval=0.05)
    await supervisor.start()
    try:
        await supervisor.create(file_record("eu-1", "eu-1.yaml", resources=("configmaps",)))
        await eventually(lambda: supervisor.view("eu-1").status.state is ClusterState.READY)
        client = hub._cluster("eu-1").client

        def reconnected() -> bool:
            runtime = hub._clusters.get("eu-1")  # briefly absent while it is replaced
            return runtime is not None and runtime.client is not client

        # the operator rotates the credential: new token in the file, the old one revoked
        emulator.write_kubeconfig(tmp_path / "eu-1.yaml", token="new")
        del emulator.server.tokens["old"]
        await eventually(reconnected)
        await eventually(lambda: supervisor.view("eu-1").status.state is ClusterState.READY)
    finally:
        await supervisor.close()
        await hub.close()


def test_the_source_digest_follows_the_certificate_files_a_kubeconfig_names(tmp_path: Path) -> None:
    (tmp_path / "client.crt").write_text("cert one")
    (tmp_path / "client.key").write_text("key one")
    (tmp_path / "eu-1.yaml").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {client-certificate: client.crt, client-key: client.key}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
    )
    policy = ConnectionPolicy(kubeconfig_dir=tmp_path)
    spec = KubeconfigFileConnection(type="kubeconfigFile", path="eu-1.yaml")
    before = source_fingerprint(spec, policy)
    assert before == source_fingerprint(spec, policy)
    (tmp_path / "client.crt").write_text("cert two")  # cert-manager renewed it
    (tmp_path / "client.key").write_text("key two")
    assert source_fingerprint(spec, policy) != before


def test_a_nul_in_a_kubeconfig_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NUL"):
        resolve_kubeconfig_path("eu-1\0.yaml", tmp_path)


async def test_one_cluster_that_cannot_be_started_neither_stops_start_up_nor_the_others(
    store: Store, kube_emulator: KubeEmulator
) -> None:
    good = {"type": "kubeconfig", "kubeconfig": kube_emulator.kubeconfig_yaml(), "context": None}
    await store.create_cluster(ClusterRecord(name="a-broken", connection=good, resources=("configmaps",)))
    await store.create_cluster(ClusterRecord(name="b-good", connection=good, resources=("configmaps",)))
    hub = Hub()
    supervisor = Supervisor(store, hub, ConnectionPolicy(), resync_interval=0.05)
    real_validate = supervisor.validate
    broken = [True]

    def validate(connection: Any) -> Any:
        if broken and connection is not None and supervisor._applied.get("a-broken") is not None:
            applied = supervisor._applied["a-broken"]
            if applied.record.connection is connection:
                raise RuntimeError("a defect somewhere in building a connection")
        return real_validate(connection)

    supervisor.validate = validate  # type: ignore[method-assign]
    try:
        await supervisor.start()
        await eventually(lambda: supervisor.view("b-good").status.state is ClusterState.READY)
        view = supervisor.view("a-broken")
        assert view.status.state is ClusterState.UNREACHABLE
        assert view.status.last_error == "invalid connection (RuntimeError; see the MIC log)"
        broken.clear()  # fixed: the next resync pass starts it
        await eventually(lambda: supervisor.view("a-broken").status.state is ClusterState.READY)
    finally:
        await supervisor.close()
        await hub.close()


async def test_the_resync_pass_survives_an_unexpected_failure(
    store: Store, kube_emulator: KubeEmulator
) -> None:
    hub = Hub()
    supervisor = Supervisor(store, hub, ConnectionPolicy(), resync_interval=0.05)
    await supervisor.start()
    real_list = store.list_clusters
    calls = [0]

    async def flaky_list() -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("unexpected")
        return await real_list()

    store.list_clusters = flaky_list  # type: ignore[method-assign]
    try:
        good = {"type": "kubeconfig", "kubeconfig": kube_emulator.kubeconfig_yaml(), "context": None}
        await store.create_cluster(ClusterRecord(name="eu-1", connection=good))  # another replica
        await eventually(lambda: "eu-1" in hub.cluster_names())
    finally:
        await supervisor.close()
        await hub.close()


async def test_a_token_rotated_in_a_kubernetes_secret_volume_is_sent(tmp_path: Path) -> None:
    # kubelet's layout: `kubeconfig` and `token` link through `..data` to a timestamped
    # directory, replaced (and the old one deleted) on every update of the secret.
    kubeconfig = (
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443', insecure-skip-tls-verify: true}}]\n"
        "users: [{name: u, user: {tokenFile: token}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )

    def publish(version: str, token: str) -> None:
        (tmp_path / version).mkdir()
        (tmp_path / version / "kubeconfig").write_text(kubeconfig)
        (tmp_path / version / "token").write_text(token)
        os.symlink(version, tmp_path / "..data_tmp")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")

    publish("..2026_a", "old-token")
    for name in ("kubeconfig", "token"):
        os.symlink(f"..data/{name}", tmp_path / name)
    spec = parse_connection({"type": "kubeconfigFile", "path": "kubeconfig"})
    connection = build_connection(spec, ConnectionPolicy(kubeconfig_dir=tmp_path))
    assert connection.authenticator is not None
    assert await connection.authenticator.authorization() == "Bearer old-token"

    publish("..2026_b", "new-token")
    shutil.rmtree(tmp_path / "..2026_a")
    assert connection.authenticator.invalidate()  # what a 401 makes the client do
    assert await connection.authenticator.authorization() == "Bearer new-token"

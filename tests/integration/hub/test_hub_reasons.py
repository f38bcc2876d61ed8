"""`ClusterStatus.reason`: each failure named by a stable word, over real HTTP and TLS.

The reason comes from the error's type (status code, aiohttp/ssl/socket exception), so each
test brings the failure about for real: a wrong token, RBAC, a closed port, a name that does not
resolve, a certificate signed by a CA MIC does not trust.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from hub_helpers import FAST, connect, eventually

from mic.events import Event
from mic.hub import ClusterState, ClusterStatus, Hub
from mic.hub.cluster import ClusterRuntime, InformerKey
from mic.hub.status import ClusterReason
from mic.kube.client import KubeClient
from mic.kube.direct import from_token
from mic.kube.informer import InformerState
from mic.kube.kubeconfig import load_kubeconfig
from mic.testing import KubeEmulator, TokenPolicy


@pytest_asyncio.fixture
async def hub() -> AsyncIterator[Hub]:
    """One hub per test (the reasons do not depend on the kind of informer cache)."""
    async with Hub(informer_options=FAST, discovery_refresh_interval=0.3) as running:
        yield running


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def settled(hub: Hub, name: str) -> ClusterStatus:
    """The cluster's status once it has left `connecting`."""
    await eventually(lambda: hub.status(name).state is not ClusterState.CONNECTING, what=f"{name} settled")
    return hub.status(name)


async def test_a_ready_cluster_is_connected(hub: Hub, kube_emulator: KubeEmulator) -> None:
    await hub.add_cluster("c1", connect(kube_emulator))
    await hub.watch("configmaps")
    await eventually(lambda: hub.status("c1").state is ClusterState.READY)
    status = hub.status("c1")
    assert status.reason is ClusterReason.CONNECTED
    assert [r.reason for r in status.resources] == [None]


async def test_a_rejected_token_is_unauthorized(hub: Hub, kube_emulators: Any) -> None:
    emulator = await kube_emulators(name="c1", tokens={"right": TokenPolicy.allow_all()})
    await hub.add_cluster("c1", connect(emulator, token="wrong"))
    status = await settled(hub, "c1")
    assert (status.state, status.reason) == (ClusterState.UNAUTHORIZED, ClusterReason.UNAUTHORIZED)


async def test_a_403_on_discovery_is_forbidden(hub: Hub, kube_emulator: KubeEmulator) -> None:
    kube_emulator.fail_requests(403, count=1000, path_contains="/version")
    await hub.add_cluster("c1", connect(kube_emulator))
    status = await settled(hub, "c1")
    assert (status.state, status.reason) == (ClusterState.UNAUTHORIZED, ClusterReason.FORBIDDEN)


@pytest.mark.parametrize(
    ("status_code", "reason"),
    [
        (500, ClusterReason.SERVER_ERROR),
        (503, ClusterReason.SERVER_ERROR),
        (429, ClusterReason.TOO_MANY_REQUESTS),
    ],
)
async def test_server_errors_and_throttling_on_discovery(
    hub: Hub, kube_emulator: KubeEmulator, status_code: int, reason: ClusterReason
) -> None:
    kube_emulator.fail_requests(status_code, count=1000, path_contains="/version")
    await hub.add_cluster("c1", connect(kube_emulator))
    status = await settled(hub, "c1")
    assert (status.state, status.reason) == (ClusterState.UNREACHABLE, reason)


async def test_a_resource_rbac_forbids_is_resource_forbidden(hub: Hub, kube_emulators: Any) -> None:
    emulator = await kube_emulators(name="c1", tokens={"only-pods": TokenPolicy(resources={"pods"})})
    await hub.add_cluster("c1", connect(emulator, token="only-pods"))
    await hub.watch("configmaps")
    await hub.watch("pods")
    await eventually(lambda: hub.status("c1").state is ClusterState.DEGRADED)
    status = hub.status("c1")
    assert status.reason is ClusterReason.RESOURCE_FORBIDDEN
    assert status.last_error is not None
    assert 'cannot list resource "configmaps"' in status.last_error
    reasons = {r.resource: r.reason for r in status.resources}
    assert reasons["configmaps"] is ClusterReason.RESOURCE_FORBIDDEN
    await eventually(lambda: next(r for r in hub.status("c1").resources if r.resource == "pods").synced)
    assert next(r for r in hub.status("c1").resources if r.resource == "pods").reason is None


async def test_every_resource_forbidden_is_unauthorized_with_resource_forbidden(
    hub: Hub, kube_emulators: Any
) -> None:
    emulator = await kube_emulators(name="c1", tokens={"only-pods": TokenPolicy(resources={"pods"})})
    await hub.add_cluster("c1", connect(emulator, token="only-pods"))
    await hub.watch("configmaps")
    await eventually(
        lambda: any(r.state is InformerState.FORBIDDEN for r in hub.status("c1").resources), what="forbidden"
    )
    status = hub.status("c1")
    assert (status.state, status.reason) == (ClusterState.UNAUTHORIZED, ClusterReason.RESOURCE_FORBIDDEN)


async def test_a_resource_the_cluster_does_not_serve(hub: Hub, kube_emulator: KubeEmulator) -> None:
    await hub.add_cluster("c1", connect(kube_emulator))
    await hub.watch("widgets")
    await eventually(lambda: hub.status("c1").state is ClusterState.DEGRADED)
    assert hub.status("c1").reason is ClusterReason.RESOURCE_NOT_SERVED


async def test_a_closed_port_is_connection_refused(hub: Hub, closed_port: int) -> None:
    await hub.add_cluster("c1", from_token(f"http://127.0.0.1:{closed_port}", token="x"))
    status = await settled(hub, "c1")
    assert (status.state, status.reason) == (ClusterState.UNREACHABLE, ClusterReason.CONNECTION_REFUSED)


async def test_a_host_name_that_does_not_resolve_is_dns_failure(hub: Hub) -> None:
    await hub.add_cluster("c1", from_token("https://nonexistent.invalid:6443", token="x"))
    status = await settled(hub, "c1")
    assert (status.state, status.reason) == (ClusterState.UNREACHABLE, ClusterReason.DNS_FAILURE)


async def test_a_certificate_from_an_untrusted_ca_is_tls_verify_failed(hub: Hub, kube_emulators: Any) -> None:
    emulator = await kube_emulators(name="c1", tls=True)
    await hub.add_cluster("c1", from_token(emulator.url, token="x"))  # the system's roots only
    status = await settled(hub, "c1")
    assert (status.state, status.reason) == (ClusterState.UNREACHABLE, ClusterReason.TLS_VERIFY_FAILED)


async def test_a_certificate_for_another_host_is_tls_verify_failed(hub: Hub, kube_emulators: Any) -> None:
    emulator = await kube_emulators(name="c1", tls=True)
    assert emulator.ca_pem is not None
    connection = from_token(
        emulator.url, token="x", ca_data=emulator.ca_pem, tls_server_name="other.example"
    )  # trusted CA, but the certificate does not name this host
    await hub.add_cluster("c1", connection)
    status = await settled(hub, "c1")
    assert (status.state, status.reason) == (ClusterState.UNREACHABLE, ClusterReason.TLS_VERIFY_FAILED)


async def test_tls_to_a_server_that_speaks_plain_http_is_tls_error(
    hub: Hub, kube_emulator: KubeEmulator
) -> None:
    await hub.add_cluster("c1", from_token(kube_emulator.url.replace("http://", "https://"), token="x"))
    status = await settled(hub, "c1")
    assert (status.state, status.reason) == (ClusterState.UNREACHABLE, ClusterReason.TLS_ERROR)


async def test_a_failing_credential_plugin(hub: Hub, kube_emulator: KubeEmulator, tmp_path: Any) -> None:
    plugin = tmp_path / "plugin.sh"
    plugin.write_text("#!/bin/sh\necho 'error: your login session expired' >&2\nexit 1\n")
    plugin.chmod(0o700)
    config = kube_emulator.kubeconfig()
    config["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin),
            "interactiveMode": "Never",
        }
    }
    await hub.add_cluster("c1", load_kubeconfig(config))
    status = await settled(hub, "c1")
    assert (status.state, status.reason) == (
        ClusterState.UNAUTHORIZED,
        ClusterReason.CREDENTIAL_PLUGIN_FAILED,
    )


async def ignore(runtime: ClusterRuntime, key: InformerKey, events: list[Event]) -> None:
    """No informer runs in the runtime tests below."""


async def test_a_server_that_never_answers_is_timeout_and_a_closed_runtime_stopped(
    kube_emulator: KubeEmulator,
) -> None:
    kube_emulator.pause()  # accepts connections, never answers
    connection = connect(kube_emulator)
    runtime = ClusterRuntime(
        "c1", connection, labels={}, sink=ignore, informer_options=FAST, discovery_refresh_interval=60.0
    )
    await runtime.client.close()
    runtime.client = KubeClient(connection, request_timeout=0.3)  # not 30 s
    runtime.start()
    try:
        await eventually(lambda: runtime.status().state is not ClusterState.CONNECTING)
        status = runtime.status()
        assert (status.state, status.reason) == (ClusterState.UNREACHABLE, ClusterReason.TIMEOUT)
    finally:
        kube_emulator.resume()
        await runtime.close()
    assert (runtime.status().state, runtime.status().reason) == (ClusterState.STOPPED, ClusterReason.STOPPED)


async def test_a_watched_resource_failing_with_503_is_server_error(
    hub: Hub, kube_emulator: KubeEmulator
) -> None:
    """An informer's retried error is classified by the error behind it (`last_failure`), not
    only by its state (BACKOFF alone would read `Error`)."""
    await hub.add_cluster("c1", connect(kube_emulator))
    await hub.wait_synced(timeout=10)
    kube_emulator.fail_requests(503, count=1000, path_contains="/configmaps")
    await hub.watch("configmaps")
    await eventually(
        lambda: any(r.state is InformerState.BACKOFF for r in hub.status("c1").resources), what="backoff"
    )
    (resource,) = hub.status("c1").resources
    assert resource.reason is ClusterReason.SERVER_ERROR
    assert hub.status("c1").reason is ClusterReason.SERVER_ERROR

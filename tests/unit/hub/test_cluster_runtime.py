"""ClusterRuntime's connect task: an unexpected error is reported and retried, never fatal."""

from __future__ import annotations

import asyncio

import pytest

from mic.events import Event
from mic.hub.cluster import ClusterRuntime, InformerKey
from mic.hub.status import ClusterState
from mic.kube.auth import StaticToken
from mic.kube.connection import ClusterConnection
from mic.kube.errors import ConnectionFailure
from mic.kube.informer import InformerOptions


async def ignore(runtime: ClusterRuntime, key: InformerKey, events: list[Event]) -> None:
    """No informer runs in these tests; the sink is never called."""


def runtime_for(connection: ClusterConnection) -> ClusterRuntime:
    return ClusterRuntime(
        "c1",
        connection,
        labels={},
        sink=ignore,
        informer_options=InformerOptions(),
        discovery_refresh_interval=60.0,
    )


async def wait_state(runtime: ClusterRuntime, state: ClusterState, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while runtime.status().state is not state:
            await asyncio.sleep(0.01)


async def test_unexpected_discovery_error_is_reported_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    # Built by hand, past the validation that now refuses it: aiohttp will not send a URL with
    # credentials together with an Authorization header and raises ValueError, which used to
    # end the connect task and leave the cluster "connecting" with no error.
    connection = ClusterConnection(
        server="http://admin:hunter2@127.0.0.1:1", authenticator=StaticToken("t0ken-abc")
    )
    runtime = runtime_for(connection)
    runtime.start()
    try:
        await wait_state(runtime, ClusterState.UNREACHABLE)
        assert runtime.status().last_error == (
            "unexpected error during discovery (ValueError); see the MIC log"
        )
        assert len(runtime.tasks) == 1, "the connect task must keep retrying"
        assert "unexpected error during discovery" in caplog.text
    finally:
        await runtime.close()


async def test_a_query_gets_a_kube_error_not_the_unexpected_one() -> None:
    # A resource query resolves through the same discovery; the API maps KubeErrors to 502,
    # anything else to 500.
    connection = ClusterConnection(
        server="http://admin:hunter2@127.0.0.1:1", authenticator=StaticToken("t0ken-abc")
    )
    runtime = runtime_for(connection)
    try:
        with pytest.raises(ConnectionFailure, match=r"unexpected error during discovery \(ValueError\)"):
            await runtime.resolve("pods")
    finally:
        await runtime.close()

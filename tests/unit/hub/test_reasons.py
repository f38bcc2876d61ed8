"""`reason_for`: the error's type decides the reason; an unknown error is `Error`, never a crash.

The failures that can be brought about for real (a refused port, DNS, TLS, 401/403, RBAC) are
in tests/integration/hub/test_hub_reasons.py; here are the ones that cannot be, built by hand.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import aiohttp
import pytest

from mic.hub.reasons import reason_for, reason_for_informer
from mic.hub.status import ClusterReason, ClusterState, ClusterStatus
from mic.kube.errors import (
    AmbiguousResourceError,
    ApiError,
    ConfigError,
    ConnectionFailure,
    UnknownResourceError,
)
from mic.kube.exec_plugin import ExecPluginError
from mic.kube.informer import InformerState

KEY: Any = object()  # aiohttp's ConnectionKey, only used to word its message


def wrapped(cause: BaseException) -> ConnectionFailure:
    """A ConnectionFailure as `mic.kube.client` raises it: `raise ... from cause`."""
    failure = ConnectionFailure("cannot reach https://10.0.0.1:6443: ...")
    failure.__cause__ = cause
    return failure


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ApiError(401, "Unauthorized"), ClusterReason.UNAUTHORIZED),
        (ApiError(403, "forbidden"), ClusterReason.FORBIDDEN),
        (ApiError(404, "not found"), ClusterReason.ERROR),
        (ApiError(408, "timeout"), ClusterReason.TIMEOUT),
        (ApiError(429, "slow down", retry_after=1.0), ClusterReason.TOO_MANY_REQUESTS),
        (ApiError(500, "boom"), ClusterReason.SERVER_ERROR),
        (ApiError(504, "gateway"), ClusterReason.SERVER_ERROR),
        (ExecPluginError("plugin exited 1"), ClusterReason.CREDENTIAL_PLUGIN_FAILED),
        (ConfigError("token file gone"), ClusterReason.CONFIG_INVALID),
        (UnknownResourceError("widgets", []), ClusterReason.RESOURCE_NOT_SERVED),
        (AmbiguousResourceError("w", ["w.a", "w.b"]), ClusterReason.RESOURCE_AMBIGUOUS),
        (wrapped(TimeoutError()), ClusterReason.TIMEOUT),  # asyncio's, in 3.11
        (wrapped(aiohttp.ConnectionTimeoutError()), ClusterReason.TIMEOUT),
        (wrapped(aiohttp.ServerTimeoutError()), ClusterReason.TIMEOUT),
        (
            wrapped(aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused"))),
            ClusterReason.CONNECTION_REFUSED,
        ),
        (wrapped(aiohttp.ClientConnectorError(KEY, TimeoutError())), ClusterReason.TIMEOUT),
        (
            wrapped(aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(-2, "unknown"))),
            ClusterReason.DNS_FAILURE,
        ),
        (
            wrapped(aiohttp.ClientConnectorError(KEY, OSError(101, "unreachable"))),
            ClusterReason.CONNECTION_FAILED,
        ),
        (
            wrapped(aiohttp.ClientConnectorCertificateError(KEY, ssl.SSLCertVerificationError())),
            ClusterReason.TLS_VERIFY_FAILED,
        ),
        (wrapped(aiohttp.ClientConnectorSSLError(KEY, ssl.SSLError())), ClusterReason.TLS_ERROR),
        (wrapped(ssl.SSLError(1, "wrong version number")), ClusterReason.TLS_ERROR),
        (wrapped(aiohttp.ServerDisconnectedError()), ClusterReason.CONNECTION_FAILED),
        (wrapped(aiohttp.ClientPayloadError("cut short")), ClusterReason.CONNECTION_FAILED),
        (wrapped(ConnectionResetError(104, "reset")), ClusterReason.CONNECTION_FAILED),
        (wrapped(RuntimeError("Connection closed")), ClusterReason.CONNECTION_FAILED),
        (ConnectionFailure("connection to https://10.0.0.1:6443 closed"), ClusterReason.CONNECTION_FAILED),
        # a defect made a ConnectionFailure so that it is retried: not a network problem
        (wrapped(ValueError("bug")), ClusterReason.ERROR),
        (ValueError("anything else"), ClusterReason.ERROR),
        (KeyError("x"), ClusterReason.ERROR),
    ],
)
def test_reason_for(error: BaseException, reason: ClusterReason) -> None:
    assert reason_for(error) is reason


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (InformerState.PENDING, None),
        (InformerState.LISTING, None),
        (InformerState.WATCHING, None),
        (InformerState.UNAUTHORIZED, ClusterReason.UNAUTHORIZED),
        (InformerState.FORBIDDEN, ClusterReason.RESOURCE_FORBIDDEN),
        (InformerState.NOT_FOUND, ClusterReason.RESOURCE_NOT_SERVED),
        (InformerState.UNREACHABLE, ClusterReason.CONNECTION_FAILED),
        (InformerState.BACKOFF, ClusterReason.ERROR),
        (InformerState.STOPPED, ClusterReason.STOPPED),
    ],
)
def test_reason_of_an_informer_state(state: InformerState, reason: ClusterReason | None) -> None:
    assert reason_for_informer(state) is reason


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (ClusterState.CONNECTING, ClusterReason.CONNECTING),
        (ClusterState.READY, ClusterReason.CONNECTED),
        (ClusterState.UNAUTHORIZED, ClusterReason.UNAUTHORIZED),
        (ClusterState.STOPPED, ClusterReason.STOPPED),
        (ClusterState.UNREACHABLE, ClusterReason.ERROR),
        (ClusterState.DEGRADED, ClusterReason.ERROR),
    ],
)
def test_a_status_built_without_a_reason_gets_the_one_its_state_implies(
    state: ClusterState, reason: ClusterReason
) -> None:
    assert ClusterStatus(name="c1", state=state).reason is reason
    assert ClusterStatus(name="c1", state=state, reason=ClusterReason.DNS_FAILURE).reason is (
        ClusterReason.DNS_FAILURE
    )


def test_reasons_are_camel_case_words() -> None:
    for reason in ClusterReason:
        assert reason.value.isalnum(), reason
        assert reason.value[0].isupper(), reason

"""Turn the error that explains a cluster's state into its `ClusterReason`.

Only exception types and status codes are looked at, never messages: aiohttp's and OpenSSL's
wording changes between versions, and `lastError` is for people. `ConnectionFailure` (what
`mic.kube.client` raises for any transport failure) keeps the aiohttp or OS error it wraps as
its `__cause__`, which tells a refused connection from a failed certificate check.
"""

from __future__ import annotations

import socket
import ssl

import aiohttp

from mic.hub.status import ClusterReason
from mic.kube.errors import (
    AmbiguousResourceError,
    ApiError,
    ConfigError,
    ConnectionFailure,
    UnknownResourceError,
)
from mic.kube.exec_plugin import ExecPluginError
from mic.kube.informer import InformerState


def reason_for(error: BaseException) -> ClusterReason:
    """The reason `error` explains; `Error` for anything not known, never an exception."""
    if isinstance(error, ApiError):
        return reason_for_status(error.status)
    if isinstance(error, ExecPluginError):  # a ConfigError: checked first
        return ClusterReason.CREDENTIAL_PLUGIN_FAILED
    if isinstance(error, ConfigError):
        return ClusterReason.CONFIG_INVALID
    if isinstance(error, UnknownResourceError):
        return ClusterReason.RESOURCE_NOT_SERVED
    if isinstance(error, AmbiguousResourceError):
        return ClusterReason.RESOURCE_AMBIGUOUS
    if isinstance(error, ConnectionFailure):
        return _connection_failure_reason(error)
    return _transport_reason(error) or ClusterReason.ERROR


def reason_for_status(status: int) -> ClusterReason:
    """The reason of an HTTP error status from the API server."""
    if status == 401:
        return ClusterReason.UNAUTHORIZED
    if status == 403:
        return ClusterReason.FORBIDDEN
    if status == 408:
        return ClusterReason.TIMEOUT
    if status == 429:
        return ClusterReason.TOO_MANY_REQUESTS
    if status >= 500:
        return ClusterReason.SERVER_ERROR
    return ClusterReason.ERROR


_INFORMER_REASONS = {
    InformerState.UNAUTHORIZED: ClusterReason.UNAUTHORIZED,
    InformerState.FORBIDDEN: ClusterReason.RESOURCE_FORBIDDEN,
    InformerState.NOT_FOUND: ClusterReason.RESOURCE_NOT_SERVED,
    # Without the error behind it (see `reason_for_informer`), the generic reason of each kind.
    InformerState.UNREACHABLE: ClusterReason.CONNECTION_FAILED,
    InformerState.BACKOFF: ClusterReason.ERROR,
    InformerState.STOPPED: ClusterReason.STOPPED,
}


def reason_for_informer(state: InformerState, failure: BaseException | None = None) -> ClusterReason | None:
    """Why a watched resource fails, from its informer's state and the error behind it; None
    while it works. The error refines only a transport failure or a retried error (5xx, 429,
    a timeout): an informer's 401, 403 or 404 means its resource, whatever the error says."""
    if failure is not None and state in (InformerState.UNREACHABLE, InformerState.BACKOFF):
        return reason_for(failure)
    return _INFORMER_REASONS.get(state)


def _connection_failure_reason(error: ConnectionFailure) -> ClusterReason:
    """A transport failure's reason, from the error it wraps.

    Without a cause it is MIC's own word for a dropped stream; a cause that is no transport
    error is a defect turned into a ConnectionFailure so that it is retried (see
    `ClusterRuntime._guarded_rediscover`): `Error`, not a network problem.
    """
    cause = error.__cause__
    if cause is None or type(cause) is RuntimeError:  # aiohttp's "Connection closed", not a subclass
        return ClusterReason.CONNECTION_FAILED
    return _transport_reason(cause) or ClusterReason.ERROR


def _transport_reason(error: BaseException) -> ClusterReason | None:
    """The reason of an aiohttp, ssl or socket error; None for any other exception.

    Order matters: aiohttp's certificate error is an `ssl.CertificateError` and a
    `ClientConnectorError` at once, and `ssl.SSLError`, `socket.gaierror` and `TimeoutError`
    (asyncio's, and aiohttp's `ServerTimeoutError`) are all `OSError`s.
    """
    if isinstance(error, ssl.SSLCertVerificationError | aiohttp.ServerFingerprintMismatch):
        return ClusterReason.TLS_VERIFY_FAILED
    if isinstance(error, aiohttp.ClientSSLError | ssl.SSLError):
        return ClusterReason.TLS_ERROR
    if isinstance(error, aiohttp.ClientConnectorError):
        # connecting failed: what the OS (or the resolver) said is in `os_error`
        return _os_error_reason(error.os_error) or ClusterReason.CONNECTION_FAILED
    if isinstance(error, OSError):
        return _os_error_reason(error) or ClusterReason.CONNECTION_FAILED
    if isinstance(error, aiohttp.ClientError):
        return ClusterReason.CONNECTION_FAILED
    return None


def _os_error_reason(error: OSError) -> ClusterReason | None:
    if isinstance(error, ssl.SSLCertVerificationError):
        return ClusterReason.TLS_VERIFY_FAILED
    if isinstance(error, ssl.SSLError):
        return ClusterReason.TLS_ERROR
    if isinstance(error, socket.gaierror):
        return ClusterReason.DNS_FAILURE
    if isinstance(error, TimeoutError):
        return ClusterReason.TIMEOUT
    if isinstance(error, ConnectionRefusedError):
        return ClusterReason.CONNECTION_REFUSED
    return None

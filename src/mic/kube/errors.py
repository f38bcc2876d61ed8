"""Errors raised while talking to one cluster, each carrying what a user needs to fix it."""

from __future__ import annotations

from typing import Any


class KubeError(Exception):
    """Base of every error raised by `mic.kube`."""


class ConfigError(KubeError):
    """The connection settings are unusable (bad kubeconfig, missing context, forbidden file...).

    The message says what is wrong and what to change; it never contains a credential.
    """


class ConnectionFailure(KubeError):
    """The API server could not be reached or the connection broke (DNS, TCP, TLS, timeout)."""


class ApiError(KubeError):
    """The API server answered with a non-success status.

    `reason` and `message` come from the server's `Status` body when it sent one, so they are
    the words a user would see from kubectl.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        reason: str = "",
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}" if reason else f"{status}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.body = body

    @property
    def is_gone(self) -> bool:
        """410 Gone: the requested resourceVersion is older than the server's history."""
        return self.status == 410

    @property
    def is_resource_version_too_large(self) -> bool:
        """504 "Too large resource version": the server's history is behind the requested
        resourceVersion (etcd restored from a backup, a cluster rebuilt behind the same address).
        Servers from 1.19 name it in `details.causes`; older ones only in the message, which is
        what client-go matches too."""
        if self.status != 504:
            return False
        details = (self.body or {}).get("details")
        causes = details.get("causes") if isinstance(details, dict) else None
        if isinstance(causes, list) and any(
            isinstance(cause, dict) and cause.get("reason") == "ResourceVersionTooLarge" for cause in causes
        ):
            return True
        return "Too large resource version" in self.message

    @property
    def is_unauthorized(self) -> bool:
        return self.status == 401

    @property
    def is_forbidden(self) -> bool:
        return self.status == 403

    @property
    def is_not_found(self) -> bool:
        return self.status == 404

    @property
    def is_retryable(self) -> bool:
        """Whether waiting and trying again may succeed (throttling, timeouts, server errors)."""
        return self.status in (408, 429) or self.status >= 500


class UnknownResourceError(KubeError):
    """A resource name that discovery cannot resolve; `suggestions` lists close matches."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"the server doesn't have a resource type {name!r}{hint}")
        self.name = name
        self.suggestions = suggestions


class AmbiguousResourceError(KubeError):
    """A short name that matches resources in several API groups; the user must qualify it."""

    def __init__(self, name: str, candidates: list[str]) -> None:
        super().__init__(f"resource name {name!r} is ambiguous; use one of: {', '.join(candidates)}")
        self.name = name
        self.candidates = candidates

"""Errors raised by `mic.store`.

Callers (the API layer, the supervisor) map these to what a user sees: `NotFoundError` → 404,
`AlreadyExistsError` → 409, `ConflictError` → 409, `StoreUnavailableError` → 503. Messages name the
thing concerned and never contain stored values, which may be credentials.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error raised by `mic.store`."""


class NotFoundError(StoreError):
    """The named record does not exist."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} not found")
        self.kind = kind
        self.name = name


class AlreadyExistsError(StoreError):
    """A record with the same identity already exists."""

    def __init__(self, kind: str, name: str, message: str | None = None) -> None:
        super().__init__(message or f"{kind} {name!r} already exists")
        self.kind = kind
        self.name = name


class ConflictError(StoreError):
    """The record changed since the caller read it (optimistic concurrency check failed).

    Raised when a caller passes the generation it read and the stored one differs, so a
    read-modify-write (an HTTP PATCH) never silently overwrites a concurrent change.
    """

    def __init__(self, kind: str, name: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{kind} {name!r} was changed concurrently (expected generation {expected}, found {actual});"
            " read it again and retry"
        )
        self.kind = kind
        self.name = name
        self.expected = expected
        self.actual = actual


class StoreUnavailableError(StoreError):
    """The database could not be reached or stayed locked too long; retrying later may succeed."""


class SchemaError(StoreError):
    """The database schema cannot be used by this version of MIC (e.g. it is newer)."""


class FencedOutError(StoreUnavailableError):
    """This process no longer holds the lease its store was fenced with (`Store.fence`): another
    MIC took it over, so this one's writes of delivery state are refused, nothing written.

    A 503 to API callers, a store failure to the delivery engine: it keeps what it meant to
    write and tries again, by which time the lease's keeper has told the process to stop.
    """

"""Plain values the store reads and writes.

They are frozen dataclasses rather than pydantic models: API models live in `mic.api`, and the
store must not depend on any layer above it. Records are what is stored, nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

TokenRole = Literal["admin", "viewer"]
"""`admin` may change things; `viewer` may only read."""

TOKEN_ROLES: tuple[str, ...] = get_args(TokenRole)


@dataclass(frozen=True, slots=True)
class ClusterRecord:
    """One registered cluster.

    `connection` is the credential-bearing connection spec (kubeconfig, token, CA ...) exactly as
    the API layer validated it. It is **secret**: it is excluded from `repr` so that logging a
    record never leaks it, and the API must never return it.

    `created_at`, `updated_at` and `generation` are set by the store; values passed in by a
    caller are ignored on create and replace. `generation` is strictly increasing for a name and
    unique across all clusters, never reused even after a delete and re-create, so the supervisor
    can compare one integer to know whether what it runs is still what is stored.
    """

    name: str
    connection: Mapping[str, Any] = field(repr=False)
    labels: Mapping[str, str] = field(default_factory=dict)
    resources: tuple[str, ...] = ()
    """Resources (kubectl-style names) to watch and cache by default."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    generation: int = 0


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One API bearer token. The token itself is never stored, only its SHA-256; so not here."""

    id: int
    name: str
    role: TokenRole
    created_at: datetime
    last_used_at: datetime | None = None

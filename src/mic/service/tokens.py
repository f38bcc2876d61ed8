"""Who may call the API: operator-configured tokens and tokens kept (hashed) in the store.

Operator tokens (`MIC_ADMIN_TOKEN`, `MIC_VIEWER_TOKEN`, the tokens file) are held in memory as
hashes and never written to the store, so removing one from the environment revokes it at
the next start. When no token exists anywhere, one admin token is generated at first start,
its hash stored, and the token itself shown once, as Jupyter does. It only bootstraps an
unconfigured service: once the operator configures tokens, the next start revokes it (it could
not be revoked otherwise, and a printed admin token may have been copied anywhere).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass

from mic.service.settings import TokenGrant
from mic.store import Store, TokenRole, hash_token

GENERATED_TOKEN_NAME = "generated-admin"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """The caller behind a valid token."""

    name: str
    role: TokenRole

    @property
    def can_write(self) -> bool:
        return self.role == "admin"


class TokenVerifier:
    """Maps a presented bearer token to its `Principal`, or None when it is not valid."""

    def __init__(self, store: Store, grants: list[TokenGrant]) -> None:
        self._store = store
        self._grants = [(hash_token(grant.token), Principal(grant.name, grant.role)) for grant in grants]

    async def verify(self, token: str) -> Principal | None:
        digest = hash_token(token)
        for known, principal in self._grants:
            if hmac.compare_digest(known, digest):
                return principal
        record = await self._store.find_token(token)
        return Principal(record.name, record.role) if record is not None else None


async def generate_admin_token_if_none(store: Store, grants: list[TokenGrant]) -> str | None:
    """Create and store an admin token when neither the operator nor the store has any; revoke
    the one generated earlier when the operator now configures tokens.

    Returns the new token, which the caller shows once; None when tokens already exist.
    """
    stored = await store.list_tokens()
    if grants:
        if any(record.name == GENERATED_TOKEN_NAME for record in stored):
            await store.delete_token(GENERATED_TOKEN_NAME)
            log.warning("tokens are configured now: the admin token generated at first start is revoked")
        return None
    if stored:
        return None
    token = secrets.token_urlsafe(32)
    await store.add_token(GENERATED_TOKEN_NAME, "admin", token)
    return token

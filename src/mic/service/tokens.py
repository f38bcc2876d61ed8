"""Who may call the API: operator-configured tokens and tokens kept (hashed) in the store.

Operator tokens (`MIC_ADMIN_TOKEN`, `MIC_VIEWER_TOKEN`, the tokens file) are held in memory as
hashes and never written to the store, so removing one from the environment revokes it at
the next start. The tokens file is also followed while MIC runs (`TokensFileWatcher`): a token
removed from it is revoked, and one added is accepted, within `RELOAD_INTERVAL_SECONDS`.

When no token exists anywhere, one admin token is generated at first start, its hash stored,
and the token itself shown once, as Jupyter does. It only bootstraps an unconfigured service:
once the operator configures tokens, the next start revokes it (it could not be revoked
otherwise, and a printed admin token may have been copied anywhere). That decision is made at
start only: tokens that appear in the tokens file later do not revoke it before the next start.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mic.kube.tasks import OwnedTasks
from mic.service.settings import (
    SettingsError,
    TokenGrant,
    checked_tokens_file,
    read_tokens_file_bytes,
    weak_token_messages,
)
from mic.store import TOKEN_ROLES, Store, TokenRole, hash_token

GENERATED_TOKEN_NAME = "generated-admin"

RELOAD_INTERVAL_SECONDS = 5.0
"""How often the tokens file is read again. Kubelet takes up to a minute or so to update a
mounted Secret, so a few seconds more barely matter, and reading a file this small costs nothing."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """The caller behind a valid token."""

    name: str
    role: TokenRole

    @property
    def can_write(self) -> bool:
        return self.role == "admin"


_Known = tuple[str, Principal]
"""The SHA-256 hex of a token and who presents it."""


def _known(grants: Iterable[TokenGrant]) -> tuple[_Known, ...]:
    return tuple((hash_token(grant.token), Principal(grant.name, grant.role)) for grant in grants)


class TokenVerifier:
    """Maps a presented bearer token to its `Principal`, or None when it is not valid.

    The environment's grants stay as given at start; the tokens file's are replaced as a whole
    by `replace_file_grants` when the file changes (see `TokensFileWatcher`).
    """

    def __init__(
        self, store: Store, grants: list[TokenGrant], file_grants: Iterable[TokenGrant] = ()
    ) -> None:
        self._store = store
        self._fixed = _known(grants)
        self._grants = self._fixed + _known(file_grants)

    def replace_file_grants(self, grants: Iterable[TokenGrant]) -> None:
        """Put `grants` in place of the tokens file's grants in one assignment: a `verify` that
        already began goes on with the tuple it started with, and none ever sees a mix."""
        self._grants = self._fixed + _known(grants)

    async def verify(self, token: str) -> Principal | None:
        digest = hash_token(token)
        for known, principal in self._grants:
            if hmac.compare_digest(known, digest):
                return principal
        record = await self._store.find_token(token)
        return Principal(record.name, record.role) if record is not None else None


_GrantKey = tuple[str, TokenRole, str]
"""A grant as compared between two versions of the tokens file: name, role, hash of the token."""


@dataclass(frozen=True)
class TokensFileContent:
    """One valid version of the tokens file: its grants, and the digest of the bytes they were
    parsed from (what tells the next version apart)."""

    grants: tuple[TokenGrant, ...]
    digest: str
    warnings: tuple[str, ...] = ()
    """One message per token shorter than recommended (see `weak_token_messages`)."""

    @classmethod
    def read(cls, path: Path) -> TokensFileContent:
        """Read and check the file as a start does; raises SettingsError saying what to fix."""
        return cls.parse(read_tokens_file_bytes(path), path)

    @classmethod
    def parse(cls, data: bytes, path: Path) -> TokensFileContent:
        sourced = checked_tokens_file(data, path)
        grants = tuple(grant for grant, _ in sourced)
        return cls(grants, content_digest(data), tuple(weak_token_messages(sourced)))

    def keys(self) -> frozenset[_GrantKey]:
        return frozenset((grant.name, grant.role, hash_token(grant.token)) for grant in self.grants)

    def describe(self) -> str:
        """`3 tokens (2 admin, 1 viewer)`: counts only, never a token."""
        roles: Counter[str] = Counter(grant.role for grant in self.grants)
        by_role = ", ".join(f"{roles[role]} {role}" for role in TOKEN_ROLES)
        return f"{len(self.grants)} token{'' if len(self.grants) == 1 else 's'} ({by_role})"


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class TokensFileWatcher:
    """Follows the tokens file while MIC runs, so revoking a leaked token needs no restart.

    The file is read and hashed every `RELOAD_INTERVAL_SECONDS`; a new digest means a new
    version. Content rather than (mtime, size, inode), because it sees every way the file
    changes: Kubernetes updates a mounted Secret by pointing the `..data` symlink at a new
    directory (the path is read through the symlinks, so the new file is what is hashed), and a
    rewrite in place may keep the size and, within the clock's resolution, the mtime. The file
    holds a few lines: reading it every few seconds costs next to nothing. (A rewrite in place
    caught halfway is one more version, usually invalid and so ignored; the next check sees the
    whole file. Replacing the file by a rename, as kubelet does, avoids even that.)

    A valid new version replaces the file's grants in the `TokenVerifier` at once (environment
    tokens stay) and is logged in one line of counts. A version that cannot be used (bad syntax,
    unknown role, a short token, unreadable) changes nothing: the last valid grants stay in
    effect, one error line says what to fix, `stale` and `reload_errors` show it on /metrics,
    and nothing more is logged until the file changes again.

    A file that disappears is handled the same way, on purpose: a Secret volume vanishing while
    MIC runs (a deleted Secret, a mount lost in a rollout) is far more likely a mistake than a
    request to lock everyone out, and locking out the operators would also take away the API
    they need to fix things. To revoke every token of the file, empty it (or restart without it).
    """

    def __init__(
        self, path: Path, verifier: TokenVerifier, loaded: TokensFileContent, *, interval: float | None = None
    ) -> None:
        """`loaded` is the version read at start (its grants already in `verifier`); `interval`
        None means `RELOAD_INTERVAL_SECONDS`, read at each wait so tests can lower it."""
        self.path = path
        self._verifier = verifier
        self._interval = interval
        self._in_effect = loaded
        self._seen = loaded.digest
        """The digest (or read error) last acted on: the same again is neither applied nor logged."""
        self._lock = asyncio.Lock()
        self._tasks = OwnedTasks("tokens file")
        self.reload_errors = 0
        """Versions of the file (or read errors) that could not be used, since start."""
        self.stale = False
        """True while the file as it is now is not what is in effect (it could not be used)."""
        self.last_success = time.time()
        """When a version of the file last took effect (the start's, at first), as a Unix time."""

    def start(self) -> None:
        """Check the file in the background until `close`."""
        self._tasks.start("reload", self._reload_loop())

    async def close(self) -> None:
        await self._tasks.close()

    async def reload_now(self) -> None:
        """Read the file once and apply it if it changed since the last look (what the
        background task does every interval). Never raises for a bad or missing file."""
        async with self._lock:
            try:
                data = await asyncio.to_thread(read_tokens_file_bytes, self.path)
            except SettingsError as error:
                self._refuse(f"unreadable: {error}", str(error))
                return
            digest = content_digest(data)
            if digest == self._seen:
                return
            try:
                content = TokensFileContent.parse(data, self.path)
            except SettingsError as error:
                self._refuse(digest, str(error))
                return
            self._apply(content)

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval if self._interval is not None else RELOAD_INTERVAL_SECONDS)
            try:
                await self.reload_now()
            except Exception:
                # Checking a file must never end the checks (nor anything else): a bug here
                # would otherwise freeze the grants silently.
                log.exception("tokens file %r: checking it for changes failed; trying again", str(self.path))

    def _apply(self, content: TokensFileContent) -> None:
        old, new = self._in_effect.keys(), content.keys()
        self._verifier.replace_file_grants(content.grants)
        self._in_effect, self._seen = content, content.digest
        self.stale, self.last_success = False, time.time()
        log.info(
            "tokens file %r reloaded: %s; %d removed, %d added",
            str(self.path),
            content.describe(),
            len(old - new),
            len(new - old),
        )
        for warning in content.warnings:
            log.warning("%s", warning)

    def _refuse(self, seen: str, problem: str) -> None:
        """Log `problem` once per distinct version (or read error) and keep what is in effect."""
        if seen == self._seen:
            return
        self._seen = seen
        self.stale = True
        self.reload_errors += 1
        log.error(
            "%s; keeping the %s of its last valid version until this is fixed",
            problem,
            self._in_effect.describe(),
        )


async def generate_admin_token_if_none(store: Store, grants: list[TokenGrant]) -> str | None:
    """Create and store an admin token when neither the operator nor the store has any; revoke
    the one generated earlier when the operator now configures tokens.

    Returns the new token, which the caller shows once; None when tokens already exist.
    Called at start only, with the grants of that moment: a tokens file that gains tokens later
    revokes the generated token at the next start, not when it is reloaded.
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

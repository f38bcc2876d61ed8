"""Authenticators: where the `Authorization` header for one cluster comes from.

Each class implements `mic.kube.connection.Authenticator`. They differ in how the credential
can change while MIC runs: never (static token, basic auth), when a file is rewritten (mounted
or rotated service-account tokens), or when it expires (exec credential plugins). None of them
ever shows its credential in `repr()` or in an error message.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from pathlib import Path

from mic.kube.errors import ConfigError

log = logging.getLogger(__name__)

# client-go's cached file token source re-reads the file once a minute; kubelet rotates
# projected service-account tokens well before they expire, so a minute is always in time.
TOKEN_FILE_REFRESH_SECONDS = 60.0


def check_token(token: str, what: str) -> str:
    """Return the token stripped of surrounding whitespace, rejecting values unusable in a header.

    A token with an inner newline would otherwise fail deep inside the HTTP client (or worse,
    inject a header); this says which setting is wrong without echoing it.
    """
    token = token.strip()
    if not token:
        raise ConfigError(f"{what} is empty")
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in token):
        raise ConfigError(f"{what} contains whitespace or control characters; it must be a single token")
    return token


class StaticToken:
    """A bearer token that never changes (kubeconfig `token`, `from_token(token=...)`)."""

    def __init__(self, token: str, *, what: str = "token") -> None:
        self._header = f"Bearer {check_token(token, what)}"

    async def authorization(self) -> str | None:
        return self._header

    def invalidate(self) -> bool:
        # Asking again yields the same token, so retrying a 401 cannot help.
        return False

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"


class BasicAuth:
    """HTTP basic authentication (kubeconfig `username`/`password`); static like a token."""

    def __init__(self, username: str, password: str) -> None:
        self._username = username
        pair = f"{username}:{password}".encode()
        self._header = f"Basic {base64.b64encode(pair).decode('ascii')}"

    async def authorization(self) -> str | None:
        return self._header

    def invalidate(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"BasicAuth(username={self._username!r}, password=<redacted>)"


class TokenFile:
    """A bearer token read from a file that may be rewritten while MIC runs.

    Service-account tokens are rotated by kubelet and `tokenFile`s by whatever wrote them, so
    the file is re-read at most every `refresh_seconds` (client-go's behaviour), and at once
    after a 401. A failed re-read keeps the last good token and logs why, so a file caught
    mid-rotation does not break requests that the old token still authorizes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        refresh_seconds: float = TOKEN_FILE_REFRESH_SECONDS,
        what: str = "token file",
    ) -> None:
        self._path = Path(path)
        self._refresh_seconds = refresh_seconds
        self._what = what
        self._token = self._read()  # fail now, with a clear message, if the file is unusable
        self._read_at = time.monotonic()

    @property
    def path(self) -> Path:
        return self._path

    async def authorization(self) -> str | None:
        if time.monotonic() - self._read_at >= self._refresh_seconds:
            self._refresh()
        return f"Bearer {self._token}"

    def invalidate(self) -> bool:
        """Re-read the file now; a retry helps only if it now holds a different token."""
        previous = self._token
        self._refresh()
        return self._token != previous

    def _refresh(self) -> None:
        try:
            self._token = self._read()
        except ConfigError as error:
            log.warning("keeping the previous token: %s", error)
        self._read_at = time.monotonic()

    def _read(self) -> str:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{self._what}: file {str(self._path)!r} does not exist") from None
        except ValueError as error:
            if not isinstance(error, UnicodeDecodeError):  # a NUL in the path
                raise ConfigError(f"{self._what}: {str(self._path)!r} is not a usable file path") from None
            raise ConfigError(f"{self._what}: cannot read {str(self._path)!r}: not UTF-8 text") from None
        except OSError as error:
            detail = error.strerror or type(error).__name__
            raise ConfigError(f"{self._what}: cannot read {str(self._path)!r}: {detail}") from None
        return check_token(text, f"{self._what} {str(self._path)!r}")

    def __repr__(self) -> str:
        return f"TokenFile(path={str(self._path)!r})"

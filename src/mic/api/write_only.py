"""Write-only credentials stay with the destination they were given for.

A stored credential (a cluster's bearer token, a sink's headers or TLS client key) never leaves
MIC through the API. An update that kept it while pointing it somewhere else would hand it to a
server of the caller's choosing: whoever holds an admin token (or a leaked one) could read any
cluster's token out that way. So an update that changes where a credential goes must send it
again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from fastapi import HTTPException


def require_resent(
    stored: Mapping[str, Any],
    updated: Mapping[str, Any],
    given: Collection[str],
    *,
    destination: tuple[str, ...],
    credentials: tuple[str, ...],
    where: str,
) -> None:
    """422 when `updated` changes a `destination` key of `stored` and keeps a stored credential
    the request did not send (`given`: the keys the request set, None-valued ones included).

    A key may be a dotted path into nested objects (`tls.clientKeyData`); `given` then holds
    that path when the request set it.
    """
    moved = [key for key in destination if (_get(stored, key) or None) != (_get(updated, key) or None)]
    kept = [key for key in credentials if _get(stored, key) and _get(updated, key) and key not in given]
    if moved and kept:
        changed = ", ".join(f"{where}.{key}" for key in moved)
        resend = ", ".join(f"{where}.{key}" for key in kept)
        raise HTTPException(
            422,
            f"{changed} changed: send {resend} again in the same request "
            "(a stored credential is never sent to a new destination)",
        )


def _get(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted `path` of nested mappings, or None."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value

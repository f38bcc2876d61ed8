"""Standard Webhooks signatures (https://www.standardwebhooks.com/): HMAC-SHA256 over
`{webhook-id}.{webhook-timestamp}.{body}`, sent as `webhook-signature: v1,<base64>`.

We follow the standard rather than inventing a header so that recipients can verify MIC's
requests with any Standard Webhooks library. `verify` is here for MIC's own tests and for
users' receivers written in Python; it checks the timestamp too, because a signature alone
does not stop an old request from being replayed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Final

SECRET_PREFIX: Final = "whsec_"
MIN_SECRET_BYTES: Final = 24
"""The Standard Webhooks lower bound for a key (192 bits); shorter keys are too easy to guess."""
MAX_SECRET_BYTES: Final = 64
DEFAULT_TOLERANCE: Final = 300
"""Seconds a timestamp may be away from the receiver's clock (the standard's 5 minutes)."""

_TIMESTAMP: Final = re.compile(r"[0-9]{1,15}")
"""A `webhook-timestamp`: Unix seconds, digits only; 15 digits is far beyond any clock."""

_SECRET_FORM: Final = (
    f'a signing secret must be "{SECRET_PREFIX}" followed by the standard base64 of '
    f"{MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes; make one with "
    "mic.delivery.signing.generate_secret()"
)


class SignatureVerificationError(ValueError):
    """A request's Standard Webhooks headers do not prove it came from the secret's holder.

    The message says why (missing header, timestamp out of tolerance, no matching signature)
    so a receiver can log it; answer such a request with 401.
    """


def decode_secret(secret: str) -> bytes:
    """Return the HMAC key held in a `whsec_<base64>` secret.

    Raises ValueError saying which form is expected; the message never contains the secret.
    Unpadded base64 is accepted, as other Standard Webhooks libraries accept it.
    """
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError(_SECRET_FORM)
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(_SECRET_FORM) from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"{_SECRET_FORM}; this one holds {len(key)} bytes")
    return key


def generate_secret() -> str:
    """A new random signing secret: `whsec_` + base64 of 24 bytes from the OS CSPRNG."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(MIN_SECRET_BYTES)).decode()


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for `body` sent as message `msg_id` at `timestamp`.

    `timestamp` is Unix seconds; `body` must be the exact bytes sent, since the receiver
    verifies the raw body before parsing it.
    """
    digest = _signature(decode_secret(secret), msg_id, int(timestamp), body)
    return "v1," + base64.b64encode(digest).decode()


SECRET_ROTATION_OVERLAP: Final = 24 * 3600
"""Seconds a replaced signing secret still signs (beside the new one) after a rotation, so
receivers can switch to the new secret at their own pace: the standard's zero-downtime
rotation, with the overlap common webhook senders give."""


def signature_headers(
    secret: str | Sequence[str], msg_id: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for one send of `body`.

    Several secrets (the current one first, then one being rotated out) give several
    space-separated signatures; a receiver holding either secret accepts the request.

    `msg_id` should stay the same when the same message is retried (so receivers can
    deduplicate), while the timestamp is the time of this attempt; `now` overrides the clock.
    """
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            sign(one, msg_id, timestamp, body) for one in ((secret,) if isinstance(secret, str) else secret)
        ),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> None:
    """Check that `body` with `headers` was signed with `secret` within `tolerance` seconds.

    Header names are matched case-insensitively. `webhook-signature` may hold several
    space-separated signatures (a sender rotating secrets); one valid `v1` entry suffices,
    compared in constant time. Returns None when valid; otherwise raises
    SignatureVerificationError (or ValueError for a malformed secret).
    """
    key = decode_secret(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp_header = lowered.get("webhook-timestamp")
    signature_header = lowered.get("webhook-signature")
    if not (msg_id and timestamp_header and signature_header):
        raise SignatureVerificationError(
            "missing header: webhook-id, webhook-timestamp and webhook-signature are all required"
        )
    if not all(isinstance(value, str) for value in (msg_id, timestamp_header, signature_header)):
        raise SignatureVerificationError("webhook-id, webhook-timestamp and webhook-signature must be text")
    # Only plain digits: int() would also take "+1_000", " ١٢ " or 4,000 digits, which then
    # overflow a float (OverflowError) or exceed int()'s digit limit.
    digits = timestamp_header.strip()
    if not _TIMESTAMP.fullmatch(digits):
        raise SignatureVerificationError("webhook-timestamp is not an integer of Unix seconds")
    timestamp = int(digits)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureVerificationError(
            f"webhook-timestamp is {current - timestamp:+.0f}s away from now (tolerance {tolerance:g}s)"
        )
    try:
        raw = body.encode() if isinstance(body, str) else body
        expected = _signature(key, msg_id, timestamp, raw)
    except UnicodeEncodeError:  # a lone surrogate: no sender could have signed these bytes
        raise SignatureVerificationError("webhook-id or the body is not valid text") from None
    for entry in signature_header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(candidate, expected):
            return
    raise SignatureVerificationError("no webhook-signature entry matches the body and secret")

"""Standard Webhooks signatures: what MIC sends verifies with the reference `standardwebhooks`
package, and our own `verify` rejects whatever a forger or a replay could produce."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mic.delivery.signing import (
    SignatureVerificationError,
    decode_secret,
    generate_secret,
    sign,
    signature_headers,
    verify,
)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()
BODY = b'{"specversion":"1.0","id":"d35096eeae16cf36ee927f4c8763da60","data":{"object":{}}}'
MSG_ID = "d35096eeae16cf36ee927f4c8763da60"


def test_headers_verify_with_the_standardwebhooks_package() -> None:
    headers = signature_headers(SECRET, MSG_ID, BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == MSG_ID
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert Webhook(SECRET).verify(BODY, headers) == {
        "specversion": "1.0",
        "id": MSG_ID,
        "data": {"object": {}},
    }


def test_generated_secrets_work_with_the_standardwebhooks_package() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(decode_secret(secret)) == 24
    assert generate_secret() != secret
    Webhook(secret).verify(BODY, signature_headers(secret, "msg_1", BODY))


def test_sign_equals_the_reference_signature_for_a_fixed_timestamp() -> None:
    timestamp = 1714564800
    ours = sign(SECRET, MSG_ID, timestamp, BODY)
    reference = Webhook(SECRET).sign(MSG_ID, datetime.fromtimestamp(timestamp, UTC), BODY.decode())
    assert ours == reference
    assert ours.startswith("v1,")
    assert len(base64.b64decode(ours[3:])) == 32  # HMAC-SHA256


def test_now_fixes_the_timestamp() -> None:
    headers = signature_headers(SECRET, MSG_ID, BODY, now=1714564800.9)
    assert headers["webhook-timestamp"] == "1714564800"
    assert headers["webhook-signature"] == sign(SECRET, MSG_ID, 1714564800, BODY)


def test_our_verify_accepts_our_and_the_reference_signatures() -> None:
    verify(SECRET, signature_headers(SECRET, MSG_ID, BODY), BODY)
    verify(SECRET, signature_headers(SECRET, MSG_ID, BODY), BODY.decode())
    now = int(time.time())
    reference = {
        "Webhook-Id": MSG_ID,  # header names are case-insensitive
        "Webhook-Timestamp": str(now),
        "Webhook-Signature": Webhook(SECRET).sign(MSG_ID, datetime.fromtimestamp(now, UTC), BODY.decode()),
    }
    verify(SECRET, reference, BODY)


def test_any_matching_entry_of_several_signatures_suffices() -> None:
    headers = signature_headers(SECRET, MSG_ID, BODY, now=1000)
    rotated = sign(OTHER_SECRET, MSG_ID, 1000, BODY)
    headers["webhook-signature"] = f"v2,abc v1,not-base64!! {rotated} {headers['webhook-signature']}"
    verify(SECRET, headers, BODY, now=1000)
    verify(OTHER_SECRET, headers, BODY, now=1000)


def test_tampered_body_is_rejected() -> None:
    headers = signature_headers(SECRET, MSG_ID, BODY)
    with pytest.raises(SignatureVerificationError, match="no webhook-signature entry matches"):
        verify(SECRET, headers, BODY.replace(b"1.0", b"1.1"))
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY + b" ", headers)


def test_changed_id_or_timestamp_is_rejected() -> None:
    headers = signature_headers(SECRET, MSG_ID, BODY, now=1000)
    with pytest.raises(SignatureVerificationError, match="no webhook-signature entry matches"):
        verify(SECRET, {**headers, "webhook-id": "other"}, BODY, now=1000)
    with pytest.raises(SignatureVerificationError, match="no webhook-signature entry matches"):
        verify(SECRET, {**headers, "webhook-timestamp": "1001"}, BODY, now=1000)


def test_wrong_secret_is_rejected() -> None:
    headers = signature_headers(SECRET, MSG_ID, BODY)
    with pytest.raises(SignatureVerificationError, match="no webhook-signature entry matches"):
        verify(OTHER_SECRET, headers, BODY)


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_timestamps_outside_the_tolerance_are_rejected(age: int) -> None:
    headers = signature_headers(SECRET, MSG_ID, BODY, now=1_000_000)
    with pytest.raises(SignatureVerificationError, match="tolerance 300s"):
        verify(SECRET, headers, BODY, now=1_000_000 + age)
    verify(SECRET, headers, BODY, tolerance=abs(age), now=1_000_000 + age)


def test_old_timestamp_against_the_real_clock_is_rejected() -> None:
    headers = signature_headers(SECRET, MSG_ID, BODY, now=time.time() - 600)
    with pytest.raises(SignatureVerificationError, match="away from now"):
        verify(SECRET, headers, BODY)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_rejected(missing: str) -> None:
    headers = signature_headers(SECRET, MSG_ID, BODY)
    del headers[missing]
    with pytest.raises(SignatureVerificationError, match="missing header"):
        verify(SECRET, headers, BODY)


def test_non_integer_timestamp_is_rejected() -> None:
    headers = {**signature_headers(SECRET, MSG_ID, BODY), "webhook-timestamp": "soon"}
    with pytest.raises(SignatureVerificationError, match="not an integer"):
        verify(SECRET, headers, BODY)


def test_verification_errors_are_value_errors() -> None:
    assert issubclass(SignatureVerificationError, ValueError)


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no prefix
        "whsec_",  # empty key
        "whsec_not base64!",
        "whsec_" + base64.b64encode(b"short").decode(),  # 5 bytes
        "whsec_" + base64.b64encode(bytes(65)).decode(),  # longer than the standard's 64
        "whsec_" + base64.urlsafe_b64encode(b"\xfb" * 24).decode(),  # URL-safe alphabet
    ],
)
def test_malformed_secrets_say_what_form_is_expected(secret: str) -> None:
    for call in (
        lambda: decode_secret(secret),
        lambda: sign(secret, MSG_ID, 1, BODY),
        lambda: signature_headers(secret, MSG_ID, BODY),
        lambda: verify(secret, signature_headers(SECRET, MSG_ID, BODY), BODY),
    ):
        with pytest.raises(ValueError, match='must be "whsec_" followed by the standard base64') as info:
            call()
        assert not isinstance(info.value, SignatureVerificationError)
        if len(secret) > len("whsec_") + 4:
            assert secret[6:] not in str(info.value)  # the secret itself is never echoed


def test_unpadded_base64_secrets_are_accepted() -> None:
    key = bytes(range(25))  # 25 bytes: base64 needs padding
    padded = "whsec_" + base64.b64encode(key).decode()
    assert padded.endswith("=")
    assert decode_secret(padded.rstrip("=")) == key == decode_secret(padded)

"""Two signatures during a secret rotation: each verifies with the reference `standardwebhooks`
package holding either secret; the sink signs with both only while the overlap lasts."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook

from mic.delivery.signing import generate_secret, signature_headers
from mic.routing.spec import InvalidSubscriptionError, WebhookSink

BODY = b'{"specversion":"1.0"}'


def test_each_secret_verifies_a_request_signed_with_both() -> None:
    new, old = generate_secret(), generate_secret()
    headers = signature_headers([new, old], "msg_1", BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        Webhook(secret).verify(BODY, headers)
    assert (
        signature_headers(new, "msg_1", BODY, now=1000)["webhook-signature"]
        == (signature_headers([new], "msg_1", BODY, now=1000)["webhook-signature"])
    )


def test_the_sink_signs_with_the_previous_secret_until_it_expires() -> None:
    new, old = generate_secret(), generate_secret()
    sink = WebhookSink(
        "https://lb.example/",
        signing_secret=new,
        previous_signing_secret=old,
        previous_signing_secret_expires_at=2000.0,
    )
    assert sink.signing_secrets(1999.0) == (new, old)
    assert sink.signing_secrets(2000.0) == (new,)
    assert WebhookSink("https://lb.example/").signing_secrets(0) == ()
    assert old not in repr(sink)
    stored = sink.to_json()
    assert WebhookSink.from_json(stored) == sink
    assert "previousSigningSecret" not in WebhookSink("https://lb.example/", signing_secret=new).to_json()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"previous_signing_secret": "whsec_" + "QUJD" * 8}, "previousSigningSecretExpiresAt"),
        ({"previous_signing_secret_expires_at": 5.0}, "only kept with a previousSigningSecret"),
        (
            {"previous_signing_secret": "nope", "previous_signing_secret_expires_at": 5.0},
            "previousSigningSecret",
        ),
    ],
)
def test_inconsistent_rotation_fields_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSubscriptionError, match=message):
        WebhookSink("https://lb.example/", signing_secret=generate_secret(), **fields)  # type: ignore[arg-type]


def test_a_previous_secret_without_a_current_one_is_refused() -> None:
    with pytest.raises(InvalidSubscriptionError, match="beside a current signingSecret"):
        WebhookSink(
            "https://lb.example/",
            previous_signing_secret=generate_secret(),
            previous_signing_secret_expires_at=5.0,
        )

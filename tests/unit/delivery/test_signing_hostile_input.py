"""Hostile Standard Webhooks headers are a verification failure, never another exception.

Both for `mic.delivery.signing.verify` and for the stdlib receiver in examples/ (which is
documentation people copy), plus that receiver's limits on body size and remembered ids.
"""

from __future__ import annotations

import http.client
import importlib.util
import socket
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mic.delivery.signing import SignatureVerificationError, generate_secret, signature_headers, verify

SECRET = generate_secret()
BODY = b'{"specversion": "1.0", "id": "evt-1", "type": "ping"}'
NOW = 1_714_564_800
RECEIVER = Path(__file__).parents[3] / "examples" / "webhook_receiver.py"


def signed(**changes: Any) -> dict[str, Any]:
    return {**signature_headers(SECRET, "msg_1", BODY, now=NOW), **changes}


@pytest.mark.parametrize(
    "timestamp",
    [
        "9" * 400,  # OverflowError in float arithmetic
        "1" * 5000,  # beyond int()'s digit limit
        "-" + "9" * 400,
        "1e3",
        "+1714564800",
        "1_714_564_800",
        "١٧١٤٥٦٤٨٠٠",  # Arabic-Indic digits, which int() accepts
        "1714564800.5",
        "nan",
        "inf",
        "\x00",
    ],
)
def test_malformed_timestamps_are_verification_errors(timestamp: str) -> None:
    with pytest.raises(SignatureVerificationError, match="webhook-timestamp is not an integer"):
        verify(SECRET, signed(**{"webhook-timestamp": timestamp}), BODY, now=NOW)


@pytest.mark.parametrize(
    "headers",
    [
        signed(**{"webhook-signature": "v1,é" + "A" * 43}),
        signed(**{"webhook-signature": "v1,\udcff"}),
        signed(**{"webhook-signature": "v1," + "=" * 10_000}),
        signed(**{"webhook-signature": ",,, v1 v1, v2,abc"}),
        signed(**{"webhook-id": "msg_\udcff"}),  # a lone surrogate: cannot be encoded
        signed(**{"webhook-id": b"msg_1"}),
        signed(**{"webhook-timestamp": NOW}),
        signed(**{"webhook-signature": [b"v1,x"]}),
    ],
)
def test_malformed_headers_are_verification_errors(headers: dict[str, Any]) -> None:
    with pytest.raises(SignatureVerificationError):
        verify(SECRET, headers, BODY, now=NOW)


def test_plain_digits_with_surrounding_spaces_still_verify() -> None:
    headers = signed()
    verify(SECRET, headers, BODY, now=NOW)
    verify(SECRET, {**headers, "webhook-timestamp": f" {NOW} "}, BODY, now=NOW)


# The example receiver --------------------------------------------------------------------


@pytest.fixture(scope="module")
def receiver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_receiver_example", RECEIVER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_receiver_verify_accepts_a_valid_signature(receiver: ModuleType) -> None:
    assert receiver.verify(SECRET, signature_headers(SECRET, "msg_1", BODY), BODY) is None


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"webhook-signature": "v1,é"}, "no matching v1 signature"),  # was TypeError
        ({"webhook-signature": "v1,\u2603 v1,Ã©"}, "no matching v1 signature"),
        ({"webhook-timestamp": "9" * 400}, "webhook-timestamp is not Unix seconds"),  # was OverflowError
        ({"webhook-timestamp": "²"}, "webhook-timestamp is not Unix seconds"),  # was ValueError
        ({"webhook-timestamp": "١٧١٤٥٦٤٨٠٠"}, "webhook-timestamp is not Unix seconds"),
    ],
)
def test_receiver_verify_reports_hostile_headers(
    receiver: ModuleType, changes: dict[str, str], problem: str
) -> None:
    headers = {**signature_headers(SECRET, "msg_1", BODY), **changes}
    assert receiver.verify(SECRET, headers, BODY) == problem


def test_receiver_dedupes_per_event_so_a_regrouped_batch_is_not_applied_twice(receiver: ModuleType) -> None:
    """A retried batch may be regrouped (new webhook-id); each event keeps its CloudEvents id."""
    first = b'[{"id": "a", "type": "t", "subject": "s/a"}, {"id": "b", "type": "t", "subject": "s/b"}]'
    again = b'[{"id": "b", "type": "t", "subject": "s/b"}, {"id": "c", "type": "t", "subject": "s/c"}]'
    assert [event_id for event_id, _ in receiver.describe({"webhook-id": "w1"}, first)] == ["a", "b"]
    assert [event_id for event_id, _ in receiver.describe({"webhook-id": "w2"}, again)] == ["b", "c"]
    binary = {"webhook-id": "w3", "ce-id": "d", "ce-type": "t"}
    assert [event_id for event_id, _ in receiver.describe(binary, b"{}")] == ["d"]


def test_receiver_remembers_a_bounded_number_of_ids(receiver: ModuleType) -> None:
    seen: OrderedDict[str, None] = OrderedDict()
    assert receiver.remember(seen, "id-0") is True
    assert receiver.remember(seen, "id-0") is False
    for number in range(1, receiver.REMEMBERED_IDS + 1):
        assert receiver.remember(seen, f"id-{number}") is True
    assert len(seen) == receiver.REMEMBERED_IDS == 10_000
    assert receiver.remember(seen, "id-0") is True  # the oldest was forgotten
    assert receiver.remember(seen, f"id-{receiver.REMEMBERED_IDS}") is False
    assert len(seen) == receiver.REMEMBERED_IDS


@pytest.fixture
def running_receiver(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text(SECRET)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-u", str(RECEIVER), "--port", str(port), "--secret-file", str(secret_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("listening on"), "the receiver did not start"
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def post(port: int, headers: dict[str, str | bytes], body: bytes | None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("POST", "/hook")
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        return connection.getresponse().status
    finally:
        connection.close()


def test_receiver_answers_hostile_requests(running_receiver: tuple[int, subprocess.Popen[str]]) -> None:
    port, process = running_receiver
    good = signature_headers(SECRET, "msg_1", BODY)
    length = {"content-length": str(len(BODY)), "content-type": "application/json"}
    # A non-ASCII signature crashed the handler (no answer at all) before.
    non_ascii: dict[str, str | bytes] = {**good, "webhook-signature": "v1,é".encode(), **length}
    assert post(port, non_ascii, BODY) == 401
    # Refused from its content-length, before a byte of the body is read.
    assert post(port, {**good, "content-length": str(10 * 1024 * 1024 + 1)}, None) == 413
    assert post(port, {**good, "content-length": "9" * 5000}, None) == 413
    assert post(port, {**good, "content-length": "-1"}, None) == 400
    assert post(port, {**good, **length}, BODY) == 204
    assert post(port, {**good, **length}, BODY) == 204
    process.terminate()
    output, _ = process.communicate(timeout=10)
    assert "Traceback" not in output
    assert "rejected: no matching v1 signature" in output
    assert "duplicate evt-1 (already handled)" in output

"""Low-severity review findings, the pieces: URL masking, token length checks, `mic serve` refusing
a weak token, and the dead-letters table showing the id the recipient saw."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import mic.cli.subscriptions as cli_subscriptions
from mic.api.masking import masked_text, masked_url
from mic.cli.main import app
from mic.service.settings import MIN_TOKEN_LENGTH, ServiceSettings, SettingsError

# -- masking ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://hooks.example/XXXXSECRETXXXX?api_key=SECRET123",
            "https://hooks.example/XXXXSECRETXXXX?api_key=***",
        ),
        ("https://h.example/p?a=1&b=&c", "https://h.example/p?a=***&b=&***"),
        ("https://h.example/p?SECRET", "https://h.example/p?***"),
        ("https://h.example/p", "https://h.example/p"),
        ("https://h.example/p?", "https://h.example/p?"),
        ("http://user:pw@h.example/p?k=v", "http://user:***@h.example/p?k=***"),
    ],
)
def test_masked_url_hides_query_values_and_keeps_the_rest(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def test_masked_text_masks_every_url_in_an_error_and_keeps_what_follows() -> None:
    text = (
        "cannot reach https://h.example/p?api_key=SECRET123: [Errno 111] Connect call failed; "
        "'http://o.example/?t=a:b' too"
    )
    assert masked_text(text) == (
        "cannot reach https://h.example/p?api_key=***: [Errno 111] Connect call failed; "
        "'http://o.example/?t=***' too"
    )
    assert masked_text("cannot reach https://h.example/p?k=v") == "cannot reach https://h.example/p?k=***"
    assert masked_text("recipient answered 503") == "recipient answered 503"
    assert masked_text(None) is None


# -- token length ----------------------------------------------------------------------------------


def test_a_token_shorter_than_the_minimum_is_refused_naming_the_setting_not_the_token() -> None:
    with pytest.raises(SettingsError) as raised:
        ServiceSettings(admin_token="change-me").token_grants()
    message = str(raised.value)
    assert message.startswith("MIC_ADMIN_TOKEN is 9 characters long: API tokens must have at least 16")
    assert "change-me" not in message
    with pytest.raises(SettingsError, match=r"^MIC_VIEWER_TOKEN is 15 characters"):
        ServiceSettings(viewer_token="v" * 15).token_grants()
    assert len(ServiceSettings(admin_token="a" * MIN_TOKEN_LENGTH).token_grants()) == 1


def test_a_short_token_in_the_tokens_file_is_refused_naming_file_and_name(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("admin:ci:" + "x" * 40 + "\nviewer:dash:tiny-token\n")
    with pytest.raises(SettingsError) as raised:
        ServiceSettings(tokens_file=tokens).token_grants()
    message = str(raised.value)
    assert f"the token of 'dash' in tokens file '{tokens}' (MIC_TOKENS_FILE) is 10 characters" in message
    assert "tiny-token" not in message


def test_tokens_shorter_than_32_are_warned_about(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('[{"role": "viewer", "name": "v", "token": "' + "y" * 31 + '"}]')
    settings = ServiceSettings(admin_token="z" * 32, viewer_token="w" * 20, tokens_file=tokens)
    warnings = settings.weak_token_warnings()
    assert [w.split(" is only ")[0] for w in warnings] == [
        "MIC_VIEWER_TOKEN",
        f"the token of 'v' in tokens file '{tokens}' (MIC_TOKENS_FILE)",
    ]
    assert all("w" * 20 not in w and "y" * 31 not in w for w in warnings)
    assert ServiceSettings(admin_token="z" * 32).weak_token_warnings() == []


def test_mic_serve_refuses_a_weak_token_before_binding() -> None:
    result = CliRunner().invoke(app, ["serve", "--port", "1"], env={"MIC_ADMIN_TOKEN": "a"})
    assert result.exit_code == 2
    assert result.stderr.startswith("mic serve: MIC_ADMIN_TOKEN is 1 characters long")
    assert result.stderr.count("\n") == 1


# -- the dead-letters table ------------------------------------------------------------------------


class _DeadLettersApi:
    def dead_letters(self, name: str, *, after_id: int = 0, limit: int = 100) -> dict[str, Any]:
        return {
            "items": [
                {
                    "id": 7, "eventId": "01JABCDEFGHJKMNPQRSTVWXYZ0",
                    "cloudEventId": "5d2c8e0a41f79b3e6c0d9a8b7e6f5a41",
                    "cluster": "eu-1", "resource": "ingresses", "namespace": "shop", "name": "web",
                    "type": "MODIFIED", "resourceVersion": "12", "attempts": 12, "lastError": "410 Gone",
                    "createdAt": "2024-05-01T10:00:00Z", "object": None,
                }
            ],
            "nextAfterId": None,
        }  # fmt: skip


def test_the_dead_letters_table_shows_the_id_the_recipient_saw(monkeypatch: pytest.MonkeyPatch) -> None:
    @contextmanager
    def connect(url: str, token: str | None) -> Iterator[_DeadLettersApi]:
        yield _DeadLettersApi()

    monkeypatch.setattr(cli_subscriptions, "connect", connect)
    result = CliRunner().invoke(app, ["subscriptions", "dead-letters", "lb"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert "EVENT ID" in header
    assert "5d2c8e0a41f79b3e6c0d9a8b7e6f5a41" in row.split()
    assert "01JABCDEFGHJKMNPQRSTVWXYZ0" not in row  # MIC's internal id is not what a recipient logs

"""Pieces of following the tokens file: the checks a reload shares with the start, and the
verifier's swap of the file's grants (the service-level behaviour is in
tests/integration/api/test_tokens_file_reload_api.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mic.service.settings import ServiceSettings, SettingsError, TokenGrant, checked_tokens_file
from mic.service.tokens import TokensFileContent, TokenVerifier

ENV_ADMIN = "env-admin-token-0123456789abcdef0"
FILE_VIEWER = "file-viewer-token-0123456789abcdef"


class _NoStoredTokens:
    async def find_token(self, token: str) -> None:
        return None


def verifier(*file_grants: TokenGrant) -> TokenVerifier:
    store: Any = _NoStoredTokens()
    return TokenVerifier(store, ServiceSettings(admin_token=ENV_ADMIN).environment_grants(), file_grants)


def test_a_reload_refuses_a_short_token_in_the_words_of_the_start(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"viewer:dash:{FILE_VIEWER}\nadmin:ci:0123456789\n")
    with pytest.raises(SettingsError) as at_start:
        ServiceSettings(tokens_file=path).token_grants()
    with pytest.raises(SettingsError) as at_reload:
        checked_tokens_file(path.read_bytes(), path)
    assert str(at_reload.value) == str(at_start.value)
    assert f"the token of 'ci' in tokens file '{path}' (MIC_TOKENS_FILE) is 10 characters" in str(
        at_start.value
    )


def test_a_file_that_is_not_utf8_is_refused_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_bytes(b"admin:ci:\xff" + b"x" * 32 + b"\n")
    with pytest.raises(SettingsError, match=f"tokens file '{path}' is not UTF-8 text"):
        ServiceSettings(tokens_file=path).token_grants()


def test_environment_grants_leave_the_file_out_and_check_lengths(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"viewer:dash:{FILE_VIEWER}\n")
    grants = ServiceSettings(admin_token=ENV_ADMIN, tokens_file=path).environment_grants()
    assert [grant.name for grant in grants] == ["MIC_ADMIN_TOKEN"]
    with pytest.raises(SettingsError, match="MIC_VIEWER_TOKEN is 5 characters long"):
        ServiceSettings(viewer_token="short").environment_grants()


def test_the_content_says_its_counts_and_never_a_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"viewer:dash:{FILE_VIEWER}\nadmin:ci:{ENV_ADMIN}\nviewer:x:{FILE_VIEWER}y\n")
    content = TokensFileContent.read(path)
    assert content.describe() == "3 tokens (1 admin, 2 viewer)"
    assert FILE_VIEWER not in repr(content)
    assert TokensFileContent.parse(path.read_bytes(), path).digest == content.digest
    path.write_text(f"viewer:dash:{FILE_VIEWER}\nadmin:ci:{ENV_ADMIN}\nviewer:x:{FILE_VIEWER}z\n")
    assert TokensFileContent.read(path).digest != content.digest


async def test_replacing_the_file_grants_keeps_the_environment_ones() -> None:
    tokens = verifier(TokenGrant("dash", "viewer", FILE_VIEWER))
    assert await tokens.verify(FILE_VIEWER) is not None
    tokens.replace_file_grants([TokenGrant("ci", "admin", "ci-admin-token-0123456789abcdef0123")])
    assert await tokens.verify(FILE_VIEWER) is None
    principal = await tokens.verify("ci-admin-token-0123456789abcdef0123")
    assert principal is not None
    assert (principal.name, principal.can_write) == ("ci", True)
    tokens.replace_file_grants([])
    admin = await tokens.verify(ENV_ADMIN)
    assert admin is not None
    assert admin.name == "MIC_ADMIN_TOKEN"

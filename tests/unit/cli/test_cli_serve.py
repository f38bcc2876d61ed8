"""`mic serve` refuses unusable settings before it binds its port, with one readable line."""

from __future__ import annotations

from typer.testing import CliRunner

from mic.cli.main import app


def test_unknown_cache_mode_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(app, ["serve", "--cache-mode", "tiny", "--port", "1"])
    assert result.exit_code == 2
    assert "cache mode 'tiny' is not one of full, lean, compact (MIC_CACHE_MODE)" in result.stderr
    assert "Traceback" not in result.output + result.stderr

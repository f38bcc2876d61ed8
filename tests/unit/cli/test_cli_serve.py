"""`mic serve` refuses unusable settings before it binds its port, with one readable line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mic.cli.main import app


def test_unknown_cache_mode_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(app, ["serve", "--cache-mode", "tiny", "--port", "1"])
    assert result.exit_code == 2
    assert "cache mode 'tiny' is not one of full, lean, compact (MIC_CACHE_MODE)" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_a_tls_certificate_without_its_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cert = tmp_path / "tls.crt"
    cert.write_text("x")
    result = CliRunner().invoke(app, ["serve", "--tls-cert-file", str(cert), "--port", "1"])
    assert result.exit_code == 2
    assert result.stderr == (
        "mic serve: give both --tls-cert-file and --tls-key-file (MIC_TLS_CERT_FILE, MIC_TLS_KEY_FILE)\n"
    )


def test_tls_files_that_are_not_a_certificate_and_key_are_one_line_and_exit_2(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("not a certificate")
    key.write_text("not a key")
    result = CliRunner().invoke(
        app, ["serve", "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--port", "1"]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"mic serve: --tls-cert-file '{cert}' and --tls-key-file '{key}' are not")
    assert result.stderr.count("\n") == 1

    result = CliRunner().invoke(
        app, ["serve", "--tls-cert-file", str(tmp_path / "nope"), "--tls-key-file", str(key), "--port", "1"]
    )
    assert (result.exit_code, result.stderr) == (
        2,
        f"mic serve: TLS file '{tmp_path / 'nope'}' does not exist\n",
    )

"""Build `ssl.SSLContext`s from the TLS settings a kubeconfig (or a caller) gives.

Settings arrive as PEM bytes (the `*-data` fields, already base64-decoded) or as file paths.
Every failure becomes a `ConfigError` naming the setting (`what`) so a user knows which field
to fix; messages never contain certificate or key material.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import ssl
import tempfile
from pathlib import Path

from mic.kube.errors import ConfigError


def new_context(*, insecure: bool = False) -> ssl.SSLContext:
    """A client context with kubectl's defaults: TLS >= 1.2, verify the server unless `insecure`.

    No CA is loaded here; `load_ca` loads a custom CA or the system's roots, so a cluster with
    its own CA trusts only that CA (as client-go does), not every public CA as well.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def decode_base64(value: object, what: str) -> bytes:
    """Decode a kubeconfig `*-data` field; `what` names the field in the error."""
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be a base64 string")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ConfigError(f"{what} is not valid base64 ({error}); paste the value unchanged") from None


def read_file(path: str | os.PathLike[str], what: str) -> bytes:
    """Read a file a setting refers to, turning OS errors into a message naming the setting."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what}: file {os.fspath(path)!r} does not exist") from None
    except OSError as error:
        raise ConfigError(f"{what}: cannot read {os.fspath(path)!r}: {error.strerror}") from None
    except ValueError:  # a NUL in the path
        raise ConfigError(f"{what}: {os.fspath(path)!r} is not a usable file path") from None


def load_ca(
    context: ssl.SSLContext,
    *,
    data: bytes | None = None,
    file: str | os.PathLike[str] | None = None,
    what: str = "certificate authority",
) -> None:
    """Trust the given CA (data wins over file, as in client-go), or the system roots if neither.

    The file is read here rather than passed to OpenSSL so that a missing file gets a clear
    message instead of OpenSSL's errno text.
    """
    if data is None and file is not None:
        data = read_file(file, what)
    if data is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return
    try:
        text = data.decode("ascii")
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ValueError("no PEM certificate found")
        context.load_verify_locations(cadata=text)
    except (UnicodeDecodeError, ValueError, ssl.SSLError) as error:
        detail = getattr(error, "reason", None) or "no PEM certificate found"
        raise ConfigError(f"{what} is not a PEM-encoded CA certificate ({detail})") from None


def load_client_certificate(
    context: ssl.SSLContext,
    *,
    cert_data: bytes | None = None,
    cert_file: str | os.PathLike[str] | None = None,
    key_data: bytes | None = None,
    key_file: str | os.PathLike[str] | None = None,
    what: str = "client certificate",
) -> None:
    """Present this certificate and key to the server (mutual TLS).

    `ssl.SSLContext.load_cert_chain` only reads files, so PEM data is written to a 0600 file in
    a fresh 0700 directory and removed as soon as OpenSSL has read it: the key is on disk for
    milliseconds, readable only by this user. Calling this again on the same context replaces
    the certificate for connections opened afterwards (used by exec plugins that rotate certs).
    """
    if cert_data is None and cert_file is not None:
        cert_data = read_file(cert_file, f"{what} certificate")
    if key_data is None and key_file is not None:
        key_data = read_file(key_file, f"{what} key")
    if cert_data is None or key_data is None:
        missing = "key" if cert_data is not None else "certificate"
        raise ConfigError(
            f"{what}: a client certificate needs a certificate and a key; the {missing} is missing"
        )
    directory = tempfile.mkdtemp(prefix="mic-tls-")
    try:
        cert_path = _write_private(directory, "tls.crt", cert_data)
        key_path = _write_private(directory, "tls.key", key_data)
        context.load_cert_chain(cert_path, key_path, password=_no_password)
    except ssl.SSLError as error:
        reason = error.reason or "unreadable PEM"
        raise ConfigError(
            f"{what}: the certificate and key could not be loaded ({reason}); "
            "check both are PEM-encoded, unencrypted and belong together"
        ) from None
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _no_password() -> str:
    # An encrypted key would otherwise make OpenSSL prompt on the terminal and block the loop.
    raise ConfigError("encrypted private keys are not supported; decrypt the key first")


def _write_private(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path

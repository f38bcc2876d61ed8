"""Static and file-backed credentials: tokens, basic auth, rotation, URL+token, in-cluster."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mic.kube.auth import BasicAuth, StaticToken, TokenFile
from mic.kube.direct import from_token
from mic.kube.errors import ConfigError
from mic.kube.incluster import in_cluster

Certs = Any  # conftest.Certs


async def test_static_token_and_basic_auth_never_show_credentials() -> None:
    token = StaticToken("  abc.def  \n")
    assert await token.authorization() == "Bearer abc.def"
    assert token.invalidate() is False
    assert "abc" not in repr(token)
    basic = BasicAuth("admin", "hunter2")
    assert await basic.authorization() == "Basic YWRtaW46aHVudGVyMg=="
    assert basic.invalidate() is False
    assert repr(basic) == "BasicAuth(username='admin', password=<redacted>)"


@pytest.mark.parametrize("value", ["", "  \n", "a b", "a\r\nX-Evil: 1"])
def test_unusable_tokens_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^token (is empty|contains whitespace)") as caught:
        StaticToken(value)
    if value.strip():
        assert value.strip() not in str(caught.value)


async def test_token_file_is_reread_after_the_refresh_interval(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    authenticator = TokenFile(path, refresh_seconds=0.0)
    assert await authenticator.authorization() == "Bearer first"
    path.write_text("second")
    assert await authenticator.authorization() == "Bearer second"
    assert repr(authenticator) == f"TokenFile(path={str(path)!r})"


async def test_token_file_is_cached_within_the_interval_and_reread_after_401(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first")
    authenticator = TokenFile(path)  # default: one minute
    path.write_text("second")
    assert await authenticator.authorization() == "Bearer first"
    assert authenticator.invalidate() is True  # the file changed: a retry may succeed
    assert await authenticator.authorization() == "Bearer second"
    assert authenticator.invalidate() is False  # same token again: retrying cannot help


async def test_token_file_keeps_last_good_token_when_file_vanishes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "token"
    path.write_text("first")
    authenticator = TokenFile(path, refresh_seconds=0.0)
    path.unlink()
    assert await authenticator.authorization() == "Bearer first"
    assert "keeping the previous token" in caplog.text
    assert "first" not in caplog.text


def test_token_file_must_exist_and_be_non_empty(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"token file: file '.*missing' does not exist"):
        TokenFile(tmp_path / "missing")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match=r"token file '.*empty' is empty"):
        TokenFile(tmp_path / "empty")


async def test_from_token(certs: Certs) -> None:
    connection = from_token(
        "https://api.example:6443/", token="tok-123", ca_file=certs.ca_crt, proxy="http://p:3128"
    )
    assert connection.server == "https://api.example:6443"
    assert connection.description == "token auth to https://api.example:6443"
    assert connection.proxy == "http://p:3128"
    assert connection.authenticator is not None
    assert await connection.authenticator.authorization() == "Bearer tok-123"
    assert "tok-123" not in repr(connection)


async def test_from_token_with_rotating_token_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("one")
    connection = from_token("http://127.0.0.1:8080", token_file=path)
    assert isinstance(connection.authenticator, TokenFile)
    assert connection.description == "token file auth to http://127.0.0.1:8080"
    path.write_text("two")
    assert connection.authenticator.invalidate() is True
    assert await connection.authenticator.authorization() == "Bearer two"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"server": "api.example:6443"}, "server must be a URL like https://host:6443"),
        ({"server": "https://h", "token": "a", "token_file": "/t"}, "either token or token_file, not both"),
        ({"server": "https://h", "insecure": True, "ca_data": "x"}, "cannot be combined with a CA"),
        ({"server": "https://h", "proxy": "socks5://p"}, "proxy must be an http:// or https:// URL"),
        ({"server": "https://[::1:6443"}, r"server is not a valid URL \(Invalid IPv6 URL\)"),
        ({"server": "https://h:99999"}, r"server is not a valid URL \(Port out of range"),
        ({"server": "https://h", "proxy": "http://[x"}, r"proxy is not a valid URL \(Invalid IPv6 URL\)"),
        (
            {"server": "https://admin:hunter2@h:6443", "token": "t"},
            "server must not contain a user name or password .*with a token or a client certificate",
        ),
        ({"server": "https://token-as-user@h:6443"}, "server must not contain a user name or password"),
        (
            {"server": "https://h", "ca_file": "/nonexistent/ca.crt"},
            "ca_file: file '/nonexistent/ca.crt' does not",
        ),
    ],
)
def test_from_token_errors(kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        from_token(**kwargs)
    assert "hunter2" not in str(caught.value)


def test_from_token_accepts_ipv6_servers() -> None:
    # The `[` check must not refuse what it is for: bracketed IPv6 literals.
    assert from_token("https://[fd00::1]:6443", insecure=True).server == "https://[fd00::1]:6443"


def test_from_token_without_token_is_anonymous_and_insecure_works() -> None:
    connection = from_token("https://h:6443", insecure=True)
    assert connection.authenticator is None
    assert connection.description == "anonymous auth to https://h:6443"


@pytest.fixture
def service_account(tmp_path: Path, certs: Certs) -> Callable[..., Any]:
    """A fake /var/run/secrets/kubernetes.io/serviceaccount, passed to in_cluster's paths."""
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    (directory / "token").write_text("sa-token-1")
    (directory / "ca.crt").write_bytes(certs.ca_crt.read_bytes())
    (directory / "namespace").write_text("mic-system")

    def connect(environ: dict[str, str] | None = None, **paths: Any) -> Any:
        env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
        return in_cluster(
            token_path=paths.get("token_path", directory / "token"),
            ca_path=paths.get("ca_path", directory / "ca.crt"),
            namespace_path=paths.get("namespace_path", directory / "namespace"),
            environ=env if environ is None else environ,
        )

    connect.directory = directory  # type: ignore[attr-defined]
    return connect


async def test_in_cluster(service_account: Callable[..., Any]) -> None:
    connection = service_account()
    assert connection.server == "https://10.96.0.1:443"
    assert connection.default_namespace == "mic-system"
    assert connection.description == "in-cluster service account to https://10.96.0.1:443"
    assert await connection.authenticator.authorization() == "Bearer sa-token-1"
    # kubelet rotates the projected token; after a 401 the new one is used at once
    (service_account.directory / "token").write_text("sa-token-2")  # type: ignore[attr-defined]
    assert connection.authenticator.invalidate() is True
    assert await connection.authenticator.authorization() == "Bearer sa-token-2"


def test_in_cluster_ipv6_and_missing_namespace(service_account: Callable[..., Any], tmp_path: Path) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    connection = service_account(environ=env, namespace_path=tmp_path / "none")
    assert connection.server == "https://[fd00::1]:6443"
    assert connection.default_namespace == "default"


def test_not_in_a_cluster(service_account: Callable[..., Any]) -> None:
    with pytest.raises(
        ConfigError, match=r"^not running inside a Kubernetes pod .*a kubeconfig or a URL and token instead$"
    ):
        service_account(environ={})


def test_in_cluster_without_token(service_account: Callable[..., Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no service account token at .*automountServiceAccountToken"):
        service_account(token_path=tmp_path / "absent")


def test_in_cluster_default_paths_are_the_kubelet_mount(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    if os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token"):
        pytest.skip("running inside a pod")
    with pytest.raises(ConfigError, match=r"/var/run/secrets/kubernetes\.io/serviceaccount/token"):
        in_cluster()

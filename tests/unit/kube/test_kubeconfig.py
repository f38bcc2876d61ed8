"""Kubeconfig → ClusterConnection: contexts, fields, paths, restrictions and error messages."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mic.kube.auth import BasicAuth, StaticToken, TokenFile
from mic.kube.errors import ConfigError
from mic.kube.exec_plugin import ExecPlugin
from mic.kube.kubeconfig import from_kubeconfig_file, from_kubeconfig_text, load_kubeconfig

WriteKubeconfig = Callable[..., Path]
Certs = Any  # conftest.Certs; test modules don't import conftest (pytest may load another one)
SECRET_TOKEN = "s3cr3t-t0ken-value-never-shown"  # = conftest.SECRET_TOKEN, checked below

Kubeconfig = Callable[..., dict[str, Any]]


def test_secret_token_matches_conftest(secret_token: str) -> None:
    assert secret_token == SECRET_TOKEN


def test_file_uses_current_context_and_its_namespace(
    write_kubeconfig: WriteKubeconfig, kubeconfig: Kubeconfig
) -> None:
    path = write_kubeconfig(kubeconfig(namespace="team-a"))
    connection = from_kubeconfig_file(path)
    assert connection.server == "https://kubernetes.test:6443"
    assert connection.default_namespace == "team-a"
    assert connection.description == f"kubeconfig {path} (context main)"
    assert isinstance(connection.authenticator, StaticToken)
    assert isinstance(connection.ssl_context, ssl.SSLContext)
    assert connection.ssl_context.verify_mode == ssl.CERT_REQUIRED


async def test_token_becomes_bearer_header(write_kubeconfig: WriteKubeconfig, kubeconfig: Kubeconfig) -> None:
    connection = load_kubeconfig(write_kubeconfig(kubeconfig()))
    assert connection.authenticator is not None
    assert await connection.authenticator.authorization() == f"Bearer {SECRET_TOKEN}"
    assert connection.authenticator.invalidate() is False


def test_explicit_context_wins_over_current(
    write_kubeconfig: WriteKubeconfig, kubeconfig: Kubeconfig
) -> None:
    document = kubeconfig(namespace="team-a", extra_contexts=("other",))
    connection = load_kubeconfig(write_kubeconfig(document), context="other")
    assert connection.default_namespace == "default"
    assert connection.description.endswith("(context other)")


def test_unknown_context_lists_available_ones(
    write_kubeconfig: WriteKubeconfig, kubeconfig: Kubeconfig
) -> None:
    path = write_kubeconfig(kubeconfig(extra_contexts=("staging", "prod")))
    with pytest.raises(
        ConfigError, match=r"context 'nope' is not in .*available contexts: main, prod, staging"
    ):
        load_kubeconfig(path, context="nope")


def test_missing_current_context_asks_to_choose(
    write_kubeconfig: WriteKubeconfig, kubeconfig: Kubeconfig
) -> None:
    path = write_kubeconfig(kubeconfig(current=None))
    with pytest.raises(
        ConfigError, match=r"has no current-context; choose a context \(available contexts: main\)"
    ):
        load_kubeconfig(path)


def test_mapping_source_and_base_dir(tmp_path: Path, certs: Certs, kubeconfig: Kubeconfig) -> None:
    (tmp_path / "ca.crt").write_bytes(certs.ca_crt.read_bytes())
    document = kubeconfig(cluster={"certificate-authority": "ca.crt"})
    connection = load_kubeconfig(document, base_dir=tmp_path)
    assert connection.description == "kubeconfig (context main)"
    assert connection.ssl_context is not None


def test_relative_paths_resolve_against_the_kubeconfig_directory(
    tmp_path: Path,
    certs: Certs,
    write_kubeconfig: WriteKubeconfig,
    monkeypatch: pytest.MonkeyPatch,
    kubeconfig: Kubeconfig,
) -> None:
    (tmp_path / "conf" / "pki").mkdir(parents=True)
    (tmp_path / "conf" / "pki" / "ca.crt").write_bytes(certs.ca_crt.read_bytes())
    (tmp_path / "conf" / "token").write_text(SECRET_TOKEN + "\n")
    document = kubeconfig(cluster={"certificate-authority": "pki/ca.crt"}, user={"tokenFile": "token"})
    path = write_kubeconfig(document, "conf/config")
    monkeypatch.chdir("/")  # the working directory must not matter
    connection = from_kubeconfig_file(path)
    assert isinstance(connection.authenticator, TokenFile)
    assert connection.authenticator.path == tmp_path / "conf" / "token"


def test_missing_referenced_file_names_field_and_path(
    write_kubeconfig: WriteKubeconfig, kubeconfig: Kubeconfig
) -> None:
    path = write_kubeconfig(kubeconfig(cluster={"certificate-authority": "missing-ca.crt"}))
    with pytest.raises(ConfigError) as caught:
        load_kubeconfig(path)
    message = str(caught.value)
    assert "clusters['c1'].cluster.certificate-authority" in message
    assert str(path.parent / "missing-ca.crt") in message
    assert "does not exist" in message


def test_missing_kubeconfig_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kubeconfig file '.*nothing-here' does not exist"):
        from_kubeconfig_file(tmp_path / "nothing-here")


def test_text_passed_as_a_path_is_not_echoed(kubeconfig: Kubeconfig) -> None:
    with pytest.raises(ConfigError, match="pass kubeconfig text to from_kubeconfig_text") as caught:
        load_kubeconfig(yaml.safe_dump(kubeconfig()))
    assert SECRET_TOKEN not in str(caught.value)


def test_yaml_error_gives_line_and_column_without_quoting_the_line() -> None:
    text = f"clusters:\n- name: c1\n  token: {SECRET_TOKEN}\n    bad: indentation\n"
    with pytest.raises(ConfigError) as caught:
        from_kubeconfig_text(text)
    message = str(caught.value)
    assert message.startswith("kubeconfig is not valid YAML: line 4, column 8: ")
    assert SECRET_TOKEN not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "kubeconfig is empty"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("clusters: {c1: {}}\n", "clusters must be a list"),
        ("clusters:\n- cluster: {server: https://x}\n", r"clusters\[0\].name is required"),
        ("current-context: 3\n", "current-context must be a string"),
    ],
)
def test_malformed_documents(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        from_kubeconfig_text(text)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["clusters"][0]["cluster"].pop("server"), r"clusters\['c1'\].cluster.server is required"),
        (
            lambda d: d["contexts"][0]["context"].pop("cluster"),
            r"contexts\['main'\].context.cluster is required",
        ),
        (
            lambda d: d["contexts"][0]["context"].update(cluster="gone"),
            "context 'main' refers to cluster 'gone', which is not in clusters",
        ),
        (
            lambda d: d["contexts"][0]["context"].update(user="ghost"),
            "context 'main' refers to user 'ghost', which is not in users",
        ),
        (
            lambda d: d["clusters"][0]["cluster"].update(server="ftp://x"),
            r"server must be a URL like https://host:6443",
        ),
        (
            lambda d: d["clusters"][0]["cluster"].update({"insecure-skip-tls-verify": "yes"}),
            r"insecure-skip-tls-verify must be true or false",
        ),
        (
            lambda d: d["clusters"][0]["cluster"].update({"proxy-url": "socks5://p:1080"}),
            "MIC does not support socks5 proxies",
        ),
        (
            lambda d: d["clusters"][0]["cluster"].update(server="https://[x"),
            r"clusters\['c1'\].cluster.server is not a valid URL \(Invalid IPv6 URL\)",
        ),
        (
            lambda d: d["clusters"][0]["cluster"].update(server="https://h:65536"),
            r"clusters\['c1'\].cluster.server is not a valid URL \(Port out of range",
        ),
        (
            lambda d: d["clusters"][0]["cluster"].update({"proxy-url": "http://[x"}),
            r"clusters\['c1'\].cluster.proxy-url is not a valid URL \(Invalid IPv6 URL\)",
        ),
        (
            lambda d: d["clusters"][0]["cluster"].update(server="https://admin:hunter2@h:6443"),
            r"cluster.server must not contain a user name or password .* or a client certificate instead",
        ),
        (
            lambda d: d["clusters"][0]["cluster"].update(server="admin:hunter2@h:6443"),
            r"cluster.server must not contain a user name or password",
        ),
    ],
)
def test_missing_or_wrong_fields_are_named(
    change: Callable[[dict[str, Any]], Any], expected: str, kubeconfig: Kubeconfig
) -> None:
    document = kubeconfig()
    change(document)
    with pytest.raises(ConfigError, match=expected) as caught:
        from_kubeconfig_text(yaml.safe_dump(document))
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "text",
    ["[" * 5000 + "]" * 5000, "a: " + "{a: " * 3000 + "1" + "}" * 3000],
    ids=["nested-lists", "nested-mappings"],
)
def test_deeply_nested_text_is_a_config_error(text: str) -> None:
    # PyYAML recurses once per level; without a catch, this is a RecursionError (a 500).
    with pytest.raises(ConfigError, match="kubeconfig is nested too deeply"):
        from_kubeconfig_text(text)


def test_server_without_scheme_means_https(kubeconfig: Kubeconfig) -> None:
    connection = load_kubeconfig(kubeconfig(cluster={"server": "10.0.0.1:6443"}))
    assert connection.server == "https://10.0.0.1:6443"


def test_plain_http_server_has_no_ssl_context(kubeconfig: Kubeconfig) -> None:
    connection = load_kubeconfig(kubeconfig(cluster={"server": "http://127.0.0.1:8080/"}))
    assert connection.server == "http://127.0.0.1:8080"
    assert connection.ssl_context is None


def test_proxy_url_and_tls_server_name_are_kept(kubeconfig: Kubeconfig) -> None:
    cluster = {"proxy-url": "http://user:pa55word@proxy.local:3128", "tls-server-name": "api.internal"}
    connection = load_kubeconfig(kubeconfig(cluster=cluster))
    assert connection.proxy == "http://user:pa55word@proxy.local:3128"
    assert connection.tls_server_name == "api.internal"
    assert "pa55word" not in repr(connection)
    assert "user:***@proxy.local:3128" in repr(connection)


async def test_basic_auth(kubeconfig: Kubeconfig) -> None:
    connection = load_kubeconfig(kubeconfig(user={"username": "admin", "password": "hunter2"}))
    assert isinstance(connection.authenticator, BasicAuth)
    assert await connection.authenticator.authorization() == "Basic YWRtaW46aHVudGVyMg=="
    assert "hunter2" not in repr(connection)


def test_user_without_credentials_is_anonymous(kubeconfig: Kubeconfig) -> None:
    assert load_kubeconfig(kubeconfig(user={})).authenticator is None


def test_context_without_user_is_anonymous(kubeconfig: Kubeconfig) -> None:
    document = kubeconfig()
    del document["contexts"][0]["context"]["user"]
    assert load_kubeconfig(document).authenticator is None


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ({"token": "a", "username": "b", "password": "c"}, "more than one authentication method"),
        ({"password": "x"}, r"users\['u1'\].user.username is required with a password"),
        (
            {"auth-provider": {"name": "oidc", "config": {}}},
            r"auth-provider \(oidc\) is not supported.*kubelogin",
        ),
        ({"token": "t", "as": "system:admin"}, r"impersonation \(as\), which MIC does not support"),
        ({"token": "two words"}, r"users\['u1'\].user.token contains whitespace"),
        ({"token": 5}, r"users\['u1'\].user.token must be a string"),
    ],
)
def test_user_errors(user: dict[str, Any], expected: str, kubeconfig: Kubeconfig) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        load_kubeconfig(kubeconfig(user=user))
    assert "hunter2" not in str(caught.value)
    assert "two words" not in str(caught.value)


def test_text_form_refuses_exec_plugins_and_says_how_to_allow(
    make_plugin: Callable[..., Any], kubeconfig: Kubeconfig
) -> None:
    plugin = make_plugin()
    exec_spec = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": str(plugin.path),
        "interactiveMode": "Never",
    }
    document = kubeconfig(user={"exec": exec_spec})
    document["users"][0]["name"] = "u"
    document["contexts"][0]["context"]["user"] = "u"
    with pytest.raises(ConfigError) as caught:
        from_kubeconfig_text(yaml.safe_dump(document))
    assert str(caught.value) == (
        "kubeconfig user 'u' uses an exec credential plugin, which is disabled for kubeconfigs "
        "submitted over the API; start MIC with --allow-kubeconfig-exec to allow it"
    )
    assert plugin.runs == 0
    allowed = from_kubeconfig_text(yaml.safe_dump(document), allow_exec=True)
    assert isinstance(allowed.authenticator, ExecPlugin)


@pytest.mark.parametrize(
    ("cluster", "user", "field"),
    [
        ({"certificate-authority": "/etc/ca.crt"}, {"token": "t"}, "certificate-authority"),
        ({}, {"tokenFile": "/etc/passwd"}, "tokenFile"),
        ({}, {"client-certificate": "/a.crt", "client-key": "/a.key"}, "client-certificate"),
    ],
)
def test_text_form_refuses_file_references(
    cluster: dict[str, Any], user: dict[str, Any], field: str, kubeconfig: Kubeconfig
) -> None:
    text = yaml.safe_dump(kubeconfig(cluster=cluster, user=user))
    with pytest.raises(ConfigError) as caught:
        from_kubeconfig_text(text)
    message = str(caught.value)
    assert f"refers to a file ({field}), which is disabled for kubeconfigs submitted over the API" in message
    assert "kubectl config view --flatten --minify" in message
    assert "--allow-kubeconfig-files" in message


def test_library_restrictions_name_the_parameter(
    make_plugin: Callable[..., Any], kubeconfig: Kubeconfig
) -> None:
    exec_spec = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws"}
    with pytest.raises(ConfigError, match="disabled for this kubeconfig; pass allow_exec=True to allow it"):
        load_kubeconfig(kubeconfig(user={"exec": exec_spec}), allow_exec=False)
    with pytest.raises(ConfigError, match="pass allow_files=True"):
        load_kubeconfig(kubeconfig(user={"tokenFile": "t"}), allow_files=False)


def test_kubeconfig_env_merges_files_first_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_kubeconfig: WriteKubeconfig, kubeconfig: Kubeconfig
) -> None:
    first = kubeconfig(namespace="from-first")
    first["clusters"][0]["cluster"]["server"] = "https://first:6443"
    second = kubeconfig(namespace="from-second", extra_contexts=("only-second",), current="only-second")
    second["clusters"][0]["cluster"]["server"] = "https://second:6443"
    second["clusters"].append({"name": "c2", "cluster": {"server": "https://c2:6443"}})
    second["contexts"][1]["context"]["cluster"] = "c2"
    a, b = write_kubeconfig(first, "a"), write_kubeconfig(second, "b")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(a), str(tmp_path / "missing"), str(b)]))
    connection = load_kubeconfig()
    assert connection.server == "https://first:6443"  # current-context and c1 from the first file
    assert connection.default_namespace == "from-first"
    assert connection.description == f"kubeconfig {a}{os.pathsep}{b} (context main)"
    assert load_kubeconfig(context="only-second").server == "https://c2:6443"


def test_no_default_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kubeconfig: Kubeconfig
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="no kubeconfig found"):
        load_kubeconfig()


def test_repr_and_description_never_show_secrets(
    write_kubeconfig: WriteKubeconfig, kubeconfig: Kubeconfig
) -> None:
    connection = load_kubeconfig(write_kubeconfig(kubeconfig()))
    assert SECRET_TOKEN not in repr(connection)
    assert SECRET_TOKEN not in connection.description
    assert "StaticToken(<redacted>)" in repr(connection)

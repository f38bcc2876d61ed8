"""Exec credential plugins run for real: small Python scripts that count their runs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mic.kube.errors import ConfigError
from mic.kube.exec_plugin import ExecConfig, ExecPlugin, ExecPluginError
from mic.kube.kubeconfig import from_kubeconfig_file, load_kubeconfig

Certs = Any  # conftest.Certs
Plugin = Any  # conftest.Plugin
MakePlugin = Callable[..., Plugin]
Kubeconfig = Callable[..., dict[str, Any]]
V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


def exec_user(plugin: Plugin, **extra: Any) -> dict[str, Any]:
    spec = {"apiVersion": V1, "command": str(plugin.path), "interactiveMode": "Never", **extra}
    return {"exec": spec}


def direct(plugin: Plugin, **options: Any) -> ExecPlugin:
    return ExecPlugin(ExecConfig(command=str(plugin.path), user="u1"), **options)


async def test_runs_plugin_non_interactively_and_caches_until_expiry(
    make_plugin: MakePlugin, kubeconfig: Kubeconfig
) -> None:
    plugin = make_plugin(expires_in=3600)
    user = exec_user(plugin, args=["--cluster", "prod"], env=[{"name": "MIC_TEST_REGION", "value": "eu-1"}])
    connection = load_kubeconfig(kubeconfig(user=user))
    assert plugin.runs == 0  # nothing runs until a request needs a credential
    assert await connection.authenticator.authorization() == "Bearer exec-token-1"
    assert await connection.authenticator.authorization() == "Bearer exec-token-1"
    assert plugin.runs == 1
    last = plugin.last
    assert last["argv"] == ["--cluster", "prod"]
    assert last["env"] == {"MIC_TEST_REGION": "eu-1"}
    assert last["stdin"] == ""  # stdin is not attached: a prompt reads EOF instead of hanging
    assert json.loads(last["exec_info"]) == {
        "apiVersion": V1,
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }


async def test_credential_inside_the_expiry_skew_is_refreshed(make_plugin: MakePlugin) -> None:
    plugin = make_plugin(expires_in=5)  # expires within the 10 s skew: every use runs the plugin
    authenticator = direct(plugin)
    assert await authenticator.authorization() == "Bearer exec-token-1"
    assert await authenticator.authorization() == "Bearer exec-token-2"
    assert plugin.runs == 2


async def test_credential_is_refreshed_once_it_expires(make_plugin: MakePlugin) -> None:
    plugin = make_plugin(expires_in=1)
    authenticator = direct(plugin, expiry_skew=0.0)
    assert await authenticator.authorization() == "Bearer exec-token-1"
    assert await authenticator.authorization() == "Bearer exec-token-1"
    await asyncio.sleep(max(0.0, (int(time.time()) + 1.05) - time.time()))  # timestamps have whole seconds
    assert await authenticator.authorization() == "Bearer exec-token-2"


async def test_without_expiry_the_credential_lives_until_a_401(make_plugin: MakePlugin) -> None:
    plugin = make_plugin()
    authenticator = direct(plugin, refresh_grace=0.0)
    assert await authenticator.authorization() == "Bearer exec-token-1"
    assert await authenticator.authorization() == "Bearer exec-token-1"
    assert authenticator.invalidate() is True
    assert await authenticator.authorization() == "Bearer exec-token-2"
    assert plugin.runs == 2


async def test_401s_right_after_a_refresh_do_not_run_the_plugin_again(make_plugin: MakePlugin) -> None:
    plugin = make_plugin()
    authenticator = direct(plugin)  # refresh_grace 1 s
    await authenticator.authorization()
    # Requests sent with the previous credential fail after the refresh; they retry with this one.
    assert authenticator.invalidate() is True
    assert await authenticator.authorization() == "Bearer exec-token-1"
    assert plugin.runs == 1


async def test_concurrent_requests_share_one_run(make_plugin: MakePlugin) -> None:
    plugin = make_plugin(delay=0.2)
    authenticator = direct(plugin)
    headers = await asyncio.gather(*(authenticator.authorization() for _ in range(20)))
    assert set(headers) == {"Bearer exec-token-1"}
    assert plugin.runs == 1


async def test_provide_cluster_info(make_plugin: MakePlugin, kubeconfig: Kubeconfig, certs: Certs) -> None:
    plugin = make_plugin()
    cluster = {
        "certificate-authority": str(certs.ca_crt),
        "tls-server-name": "kubernetes.test",
        "extensions": [{"name": "client.authentication.k8s.io/exec", "extension": {"audience": "mic"}}],
    }
    connection = load_kubeconfig(kubeconfig(cluster=cluster, user=exec_user(plugin, provideClusterInfo=True)))
    await connection.authenticator.authorization()
    info = json.loads(plugin.last["exec_info"])
    assert info["spec"]["interactive"] is False
    sent = info["spec"]["cluster"]
    assert sent["server"] == "https://kubernetes.test:6443"
    assert sent["tls-server-name"] == "kubernetes.test"
    assert sent["config"] == {"audience": "mic"}
    assert sent["certificate-authority-data"] == certs.b64(certs.ca_crt)  # file sent as data, like client-go


async def test_v1beta1_defaults_to_if_available(make_plugin: MakePlugin, kubeconfig: Kubeconfig) -> None:
    plugin = make_plugin(api_version=V1BETA1)
    user = {"exec": {"apiVersion": V1BETA1, "command": str(plugin.path)}}
    connection = load_kubeconfig(kubeconfig(user=user))
    assert await connection.authenticator.authorization() == "Bearer exec-token-1"
    assert json.loads(plugin.last["exec_info"])["apiVersion"] == V1BETA1


async def test_relative_command_resolves_against_the_kubeconfig_directory(
    make_plugin: MakePlugin, kubeconfig: Kubeconfig, write_kubeconfig: Callable[..., Path], tmp_path: Path
) -> None:
    plugin = make_plugin(name="conf/bin/plugin")
    user = exec_user(plugin)
    user["exec"]["command"] = "./bin/plugin"
    connection = from_kubeconfig_file(write_kubeconfig(kubeconfig(user=user), "conf/config"))
    assert await connection.authenticator.authorization() == "Bearer exec-token-1"


async def test_client_certificate_from_plugin(
    make_plugin: MakePlugin, kubeconfig: Kubeconfig, certs: Certs, handshake: Callable[..., Awaitable[str]]
) -> None:
    status = {
        "clientCertificateData": certs.client_crt.read_text(),
        "clientKeyData": certs.client_key.read_text(),
    }
    plugin = make_plugin(status=status, expires_in=3600)
    cluster = {"certificate-authority": str(certs.ca_crt), "tls-server-name": "kubernetes.test"}
    connection = load_kubeconfig(kubeconfig(cluster=cluster, user=exec_user(plugin)))
    assert (
        await connection.authenticator.authorization() is None
    )  # no header: the certificate is the credential
    assert await handshake(connection, certs) == "alice"


async def test_static_credentials_take_precedence_over_exec(
    make_plugin: MakePlugin, kubeconfig: Kubeconfig
) -> None:
    plugin = make_plugin()
    user = {**exec_user(plugin), "token": "static"}
    connection = load_kubeconfig(kubeconfig(user=user))
    assert await connection.authenticator.authorization() == "Bearer static"
    assert plugin.runs == 0


def test_missing_plugin_shows_install_hint(kubeconfig: Kubeconfig) -> None:
    user = {
        "exec": {
            "apiVersion": V1,
            "command": "mic-test-no-such-plugin",
            "interactiveMode": "Never",
            "installHint": "Install it with: brew install mic-test-plugin",
        }
    }
    with pytest.raises(ExecPluginError) as caught:
        load_kubeconfig(kubeconfig(user=user))
    assert str(caught.value) == (
        "exec plugin 'mic-test-no-such-plugin' of kubeconfig user 'u1' was not found in PATH; "
        "install it or fix users[].user.exec.command\nInstall it with: brew install mic-test-plugin"
    )


@pytest.mark.parametrize(
    ("exec_spec", "expected"),
    [
        ({"command": "x", "interactiveMode": "Never"}, r"users\['u1'\].user.exec.apiVersion is required"),
        ({"apiVersion": V1, "command": "x"}, r"exec.interactiveMode is required for .*v1 \(use Never\)"),
        ({"apiVersion": V1, "interactiveMode": "Never"}, r"users\['u1'\].user.exec.command is required"),
        (
            {"apiVersion": V1, "command": "x", "interactiveMode": "Always"},
            "without a terminal; set interactiveMode",
        ),
        ({"apiVersion": V1, "command": "x", "interactiveMode": "Sometimes"}, "use one of Never, IfAvailable"),
        ({"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}, "v1alpha1 was removed"),
        (
            {"apiVersion": V1, "command": "x", "interactiveMode": "Never", "args": "a b"},
            "exec.args must be a list",
        ),
        (
            {"apiVersion": V1, "command": "x", "interactiveMode": "Never", "env": [{"value": "v"}]},
            r"env\[0\].name",
        ),
    ],
)
def test_exec_config_errors(exec_spec: dict[str, Any], expected: str, kubeconfig: Kubeconfig) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_kubeconfig(kubeconfig(user={"exec": exec_spec}))


async def test_failing_plugin_reports_exit_code_and_stderr(make_plugin: MakePlugin) -> None:
    with pytest.raises(
        ExecPluginError, match=r"failed with exit code 3: login required: run `sso login` first"
    ):
        await direct(make_plugin(exit_code=3)).authorization()


async def test_plugin_timeout_kills_it(make_plugin: MakePlugin) -> None:
    plugin = make_plugin(delay=30)
    started = time.monotonic()
    with pytest.raises(
        ExecPluginError, match=r"did not finish within 0.3s; MIC runs plugins without a terminal"
    ):
        await direct(plugin, timeout=0.3).authorization()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"output": "not json"}, "did not print an ExecCredential JSON object"),
        ({"output": json.dumps({"kind": "Other"})}, "is not an ExecCredential"),
        ({"api_version": V1BETA1}, r"configured for apiVersion '.*/v1' but returned '.*/v1beta1'"),
        ({"output": json.dumps({"apiVersion": V1, "kind": "ExecCredential"})}, "without status"),
        ({"status": {}}, "neither status.token nor a client certificate"),
        ({"status": {"clientCertificateData": "x"}}, "only one of status.clientCertificateData"),
        ({"status": {"token": "t", "expirationTimestamp": "tomorrow"}}, "not an RFC 3339 time"),
    ],
)
async def test_unusable_plugin_output(
    make_plugin: MakePlugin, options: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ExecPluginError, match=expected) as caught:
        await direct(make_plugin(**options)).authorization()
    assert "exec-token" not in str(caught.value)


async def test_plugin_certificate_needs_https(
    make_plugin: MakePlugin, kubeconfig: Kubeconfig, certs: Certs
) -> None:
    status = {
        "clientCertificateData": certs.client_crt.read_text(),
        "clientKeyData": certs.client_key.read_text(),
    }
    plugin = make_plugin(status=status)
    connection = load_kubeconfig(
        kubeconfig(cluster={"server": "http://127.0.0.1:8080"}, user=exec_user(plugin))
    )
    with pytest.raises(ExecPluginError, match="returned a client certificate, but the server is not https"):
        await connection.authenticator.authorization()


def test_repr_hides_env(make_plugin: MakePlugin, kubeconfig: Kubeconfig) -> None:
    plugin = make_plugin()
    user = exec_user(plugin, env=[{"name": "MIC_TEST_SECRET", "value": "pa55"}])
    connection = load_kubeconfig(kubeconfig(user=user))
    assert "pa55" not in repr(connection)
    assert "pa55" not in repr(connection.authenticator.config)
    assert f"ExecPlugin(command={str(plugin.path)!r}" in repr(connection)

"""A file path that cannot name a file is a ConfigError (an API 4xx), never a ValueError."""

from __future__ import annotations

import pytest

from mic.kube.auth import TokenFile
from mic.kube.errors import ConfigError
from mic.kube.kubeconfig import from_kubeconfig_file, load_kubeconfig
from mic.kube.tls import read_file


def kubeconfig(user: dict[str, object], cluster: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "clusters": [{"name": "c", "cluster": cluster or {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }


def test_token_file_path_with_a_nul() -> None:
    with pytest.raises(ConfigError, match="not a usable file path"):
        load_kubeconfig(kubeconfig({"tokenFile": "/tmp/a\0b"}))
    with pytest.raises(ConfigError, match="not a usable file path"):
        TokenFile("/tmp/a\0b")


def test_certificate_authority_path_with_a_nul() -> None:
    with pytest.raises(ConfigError, match="not a usable file path"):
        load_kubeconfig(
            kubeconfig({"token": "t"}, {"server": "https://127.0.0.1:6443", "certificate-authority": "/a\0"})
        )
    with pytest.raises(ConfigError, match="not a usable file path"):
        read_file("/a\0", "ca")


def test_kubeconfig_file_path_with_a_nul() -> None:
    with pytest.raises(ConfigError, match="not a usable file path"):
        from_kubeconfig_file("/tmp/a\0b")

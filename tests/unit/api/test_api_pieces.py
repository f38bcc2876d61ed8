"""Pure pieces of the API and service: merge-patch, paging, settings, path gate, views."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi import HTTPException

from mic.api.errors import describe_validation_errors
from mic.api.routes.resources import decode_continue, encode_continue, paginate
from mic.kube.errors import ConfigError
from mic.kube.patch import merge_patch
from mic.service.connections import public_view, resolve_kubeconfig_path
from mic.service.settings import ServiceSettings, SettingsError, read_tokens_file


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    assert merge_patch(target, {"c": ["x"]}) == {"a": "b", "c": ["x"]}
    assert merge_patch({"a": ["b"]}, {"a": {"c": "d"}}) == {"a": {"c": "d"}}
    assert merge_patch(target, {}) == target
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}}, "the target is not mutated"


def obj(namespace: str, name: str) -> dict[str, object]:
    return {"metadata": {"namespace": namespace, "name": name}}


def test_paging_walks_sorted_keys_with_opaque_tokens() -> None:
    objects = [obj("a", "1"), obj("a", "2"), obj("b", "1")]
    page, token = paginate(objects, 2, None)
    assert page == objects[:2]
    assert token is not None
    assert decode_continue(token) == ("a", "2")
    page, token = paginate(objects, 2, decode_continue(token))
    assert page == objects[2:]
    assert token is None
    assert paginate(objects, None, None) == (objects, None)
    # an object deleted between pages does not disturb the walk
    assert paginate([obj("a", "1"), obj("b", "1")], 5, ("a", "2"))[0] == [obj("b", "1")]
    assert decode_continue(encode_continue(("", "cluster-scoped"))) == ("", "cluster-scoped")


@pytest.mark.parametrize("token", ["", "!!", "e30", "WzEsMl0", "bnVsbA"])
def test_bad_continue_tokens_are_422(token: str) -> None:
    with pytest.raises(HTTPException) as caught:
        decode_continue(token)
    assert caught.value.status_code == 422


def test_validation_errors_never_echo_inputs() -> None:
    errors = [
        {
            "type": "missing",
            "loc": ("body", "connection", "token", "server"),
            "msg": "Field required",
            "input": {"token": "s3cr3t"},
        },
        {
            "type": "json_invalid",
            "loc": ("body", 7),
            "msg": "JSON decode error",
            "ctx": {"error": "Expecting value"},
        },
    ]
    text = describe_validation_errors(errors)
    assert text == (
        "connection.token.server: Field required; "
        "request body is not valid JSON: Expecting value at character 7"
    )
    assert "s3cr3t" not in text


def test_tokens_file_lines_and_json(tmp_path: Path) -> None:
    lines = tmp_path / "tokens"
    lines.write_text("# comment\n\nadmin:ci:tok:with:colons\nviewer:dash:t2\n")
    grants = read_tokens_file(lines)
    assert [(g.role, g.name, g.token) for g in grants] == [
        ("admin", "ci", "tok:with:colons"),
        ("viewer", "dash", "t2"),
    ]
    assert "tok:with" not in repr(grants)
    as_json = tmp_path / "tokens.json"
    as_json.write_text('[{"role": "viewer", "name": "v", "token": "t"}]')
    assert [g.name for g in read_tokens_file(as_json)] == ["v"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("root:x:y\n", "role must be one of admin, viewer"),
        ("admin:onlytwo\n", "line 1: expected role:name:token"),
        ("[{]", "not valid JSON"),
    ],
)
def test_bad_tokens_files_say_where(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "tokens"
    path.write_text(content)
    with pytest.raises(SettingsError, match=fragment):
        read_tokens_file(path)


def test_settings_repr_hides_tokens_and_builds_urls(tmp_path: Path) -> None:
    settings = ServiceSettings(admin_token="very-secret", host="0.0.0.0", port=9000, data_dir=tmp_path)
    assert "very-secret" not in repr(settings)
    assert settings.swagger_url == "http://127.0.0.1:9000/swagger/"
    assert settings.effective_database_url.endswith(f"{tmp_path}/mic.db")
    with pytest.raises(SettingsError, match="cannot read tokens file"):
        ServiceSettings(tokens_file=tmp_path / "missing").token_grants()


def test_kubeconfig_path_gate(tmp_path: Path) -> None:
    base = tmp_path / "configs"
    (base / "team").mkdir(parents=True)
    (base / "team" / "a.yaml").write_text("x")
    (tmp_path / "secret.yaml").write_text("x")
    os.symlink(tmp_path / "secret.yaml", base / "escape.yaml")
    os.symlink(base / "team" / "a.yaml", base / "inside.yaml")
    assert resolve_kubeconfig_path("team/a.yaml", base) == base / "team" / "a.yaml"
    # the link itself, so that files the kubeconfig names relative to it go through it too
    assert resolve_kubeconfig_path("inside.yaml", base) == base / "inside.yaml"
    assert resolve_kubeconfig_path(str(base / "team" / "a.yaml"), base).name == "a.yaml"
    for path in [
        "../secret.yaml",
        "escape.yaml",
        "team/../../secret.yaml",
        str(tmp_path / "secret.yaml"),
        "",
        ".",
    ]:
        with pytest.raises(ConfigError, match="outside MIC_KUBECONFIG_DIR"):
            resolve_kubeconfig_path(path, base)
    with pytest.raises(ConfigError, match="set MIC_KUBECONFIG_DIR"):
        resolve_kubeconfig_path("a.yaml", None)


def test_public_view_shows_no_credential() -> None:
    stored = {
        "type": "token",
        "server": "https://h:6443",
        "token": "t",
        "caData": "c",
        "insecureSkipTlsVerify": False,
    }
    assert public_view(stored) == {
        "type": "token",
        "server": "https://h:6443",
        "context": None,
        "path": None,
        "insecureSkipTlsVerify": False,
    }
    assert public_view({**stored, "insecureSkipTlsVerify": True})["insecureSkipTlsVerify"] is True
    kubeconfig = {"type": "kubeconfig", "kubeconfig": "secret text", "context": "ctx"}
    assert public_view(kubeconfig, "https://from-runtime") == {
        "type": "kubeconfig",
        "server": "https://from-runtime",
        "context": "ctx",
        "path": None,
        "insecureSkipTlsVerify": None,
    }


def test_cache_modes_map_to_informer_options() -> None:
    assert ServiceSettings().informer_options() == ServiceSettings(cache_mode="compact").informer_options()
    lean = ServiceSettings(cache_mode="lean").informer_options()
    assert lean.strip_managed_fields
    assert not lean.compact_cache
    assert not ServiceSettings(cache_mode="full").informer_options().strip_managed_fields
    compact = ServiceSettings(cache_mode="compact").informer_options()
    assert compact.compact_cache
    assert compact.strip_managed_fields
    with pytest.raises(SettingsError, match="cache mode 'tiny' is not one of full, lean, compact"):
        ServiceSettings(cache_mode="tiny").informer_options()

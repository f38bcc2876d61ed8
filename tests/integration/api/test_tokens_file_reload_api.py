"""The tokens file is followed while MIC runs: tokens are added, revoked or change role without a
restart, a file that cannot be used changes nothing (and says so once), and the background check
lives and dies with the service."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mic_api_harness import ADMIN_TOKEN, VIEWER_TOKEN, Api, run_app, wait_until
from prometheus_client.parser import text_string_to_metric_families

import mic.service.tokens as tokens_module
from mic.service.settings import ServiceSettings, read_tokens_file_bytes
from mic.service.tokens import TokensFileWatcher

pytestmark = pytest.mark.integration

CI = "ci-admin-token-0123456789abcdef0123"
DASH = "dash-viewer-token-0123456789abcdef"
NEW = "new-admin-token-0123456789abcdef012"
RELOAD_TASK = "tokens file:reload"


def write_tokens(path: Path, *lines: str) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


@pytest.fixture
def tokens_path(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    write_tokens(path, f"admin:ci:{CI}", f"viewer:dash:{DASH}")
    return path


@pytest.fixture
async def api(replace_settings: Callable[..., ServiceSettings], tokens_path: Path) -> AsyncIterator[Api]:
    """MIC with the tokens file and the harness's environment tokens (which must stay)."""
    async with run_app(replace_settings(tokens_file=tokens_path)) as running:
        yield running


def watcher_of(api: Api) -> TokensFileWatcher:
    watcher = api.service.tokens_file
    assert watcher is not None
    return watcher


async def status(api: Api, token: str, method: str = "GET") -> int:
    """GET (read) or DELETE (write) of a cluster that does not exist: 404 means allowed."""
    async with api.as_token(token) as client:
        return (await client.request(method, "/v1/clusters/none")).status_code


def reload_logs(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mic.service.tokens" and r.levelno == level]


async def tokens_file_metrics(api: Api) -> dict[str, float]:
    text = (await api.get("/metrics")).text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("mic_tokens_file_")
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


async def test_a_token_added_to_the_file_gets_in_after_a_reload(
    api: Api, tokens_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mic.service.tokens")
    assert await status(api, NEW) == 401
    write_tokens(tokens_path, f"admin:ci:{CI}", f"viewer:dash:{DASH}", f"admin:new:{NEW}")
    await watcher_of(api).reload_now()
    assert await status(api, NEW) == 404
    assert await status(api, NEW, "DELETE") == 404, "an admin may write"
    assert await status(api, CI) == 404
    assert await status(api, ADMIN_TOKEN, "DELETE") == 404, "environment tokens stay"
    assert reload_logs(caplog, logging.INFO) == [
        f"tokens file '{tokens_path}' reloaded: 3 tokens (2 admin, 1 viewer); 0 removed, 1 added"
    ]
    assert NEW not in caplog.text
    assert CI not in caplog.text


async def test_a_token_removed_from_the_file_gets_401(
    api: Api, tokens_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mic.service.tokens")
    assert await status(api, DASH) == 404
    write_tokens(tokens_path, f"admin:ci:{CI}")
    await watcher_of(api).reload_now()
    assert await status(api, DASH) == 401
    assert await status(api, CI) == 404
    assert await status(api, VIEWER_TOKEN) == 404, "environment tokens stay"
    assert reload_logs(caplog, logging.INFO) == [
        f"tokens file '{tokens_path}' reloaded: 1 token (1 admin, 0 viewer); 1 removed, 0 added"
    ]


async def test_a_role_changed_from_admin_to_viewer_gets_403_on_a_write(api: Api, tokens_path: Path) -> None:
    assert await status(api, CI, "DELETE") == 404
    write_tokens(tokens_path, f"viewer:ci:{CI}", f"viewer:dash:{DASH}")
    await watcher_of(api).reload_now()
    assert await status(api, CI, "DELETE") == 403
    assert await status(api, CI) == 404, "still reads"


async def test_a_short_token_in_a_valid_reload_is_warned_about(
    api: Api, tokens_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_tokens(tokens_path, f"admin:ci:{CI}", "viewer:dash:twenty-characters-xx")
    await watcher_of(api).reload_now()
    (warning,) = reload_logs(caplog, logging.WARNING)
    assert f"the token of 'dash' in tokens file '{tokens_path}'" in warning
    assert "is only 20 characters long" in warning


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ([f"admin:ci:{CI}", "viewer-without-fields"], "line 2: expected role:name:token"),
        ([f"root:ci:{CI}"], "line 1: role must be one of admin, viewer, not 'root'"),
        ([f"admin:ci:{CI}", "admin:new:too-short"], "the token of 'new' in tokens file"),
    ],
)
async def test_an_invalid_file_keeps_the_grants_and_is_logged_once(
    api: Api, tokens_path: Path, caplog: pytest.LogCaptureFixture, lines: list[str], problem: str
) -> None:
    watcher = watcher_of(api)
    started = (await tokens_file_metrics(api))["mic_tokens_file_last_reload_success_timestamp_seconds"]
    write_tokens(tokens_path, *lines)
    for _ in range(3):
        await watcher.reload_now()
    (error,) = reload_logs(caplog, logging.ERROR)
    assert problem in error
    assert str(tokens_path) in error
    assert "keeping the 2 tokens (1 admin, 1 viewer) of its last valid version" in error
    assert CI not in caplog.text
    assert await status(api, CI, "DELETE") == 404
    assert await status(api, DASH) == 404
    assert await tokens_file_metrics(api) == {
        "mic_tokens_file_reload_errors_total": 1.0,
        "mic_tokens_file_stale": 1.0,
        "mic_tokens_file_last_reload_success_timestamp_seconds": started,
    }

    write_tokens(tokens_path, "still:not-valid")
    await watcher.reload_now()
    assert len(reload_logs(caplog, logging.ERROR)) == 2, "a new content is logged again"

    write_tokens(tokens_path, f"admin:new:{NEW}")
    await watcher.reload_now()
    assert await status(api, NEW) == 404
    assert await status(api, CI) == 401
    fixed = await tokens_file_metrics(api)
    assert fixed["mic_tokens_file_stale"] == 0.0
    assert fixed["mic_tokens_file_reload_errors_total"] == 2.0
    assert fixed["mic_tokens_file_last_reload_success_timestamp_seconds"] > started


async def test_a_removed_file_keeps_the_grants_and_is_logged_once(
    api: Api, tokens_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mic.service.tokens")
    content = tokens_path.read_bytes()
    tokens_path.unlink()
    for _ in range(3):
        await watcher_of(api).reload_now()
    (error,) = reload_logs(caplog, logging.ERROR)
    assert error.startswith(f"cannot read tokens file '{tokens_path}': No such file or directory; keeping")
    assert await status(api, CI, "DELETE") == 404
    assert await status(api, DASH) == 404
    assert (await tokens_file_metrics(api))["mic_tokens_file_stale"] == 1.0

    tokens_path.write_bytes(content)
    await watcher_of(api).reload_now()
    assert reload_logs(caplog, logging.INFO) == [
        f"tokens file '{tokens_path}' reloaded: 2 tokens (1 admin, 1 viewer); 0 removed, 0 added"
    ], "coming back is said, even unchanged"
    assert (await tokens_file_metrics(api))["mic_tokens_file_stale"] == 0.0


def kubelet_secret_volume(directory: Path, content: str) -> Path:
    """A Secret volume as kubelet lays it out: `tokens` -> `..data/tokens`, `..data` -> a
    timestamped directory; returns the path MIC is given."""
    directory.mkdir()
    version = directory / "..2024_01_01_00_00_00.000000001"
    version.mkdir()
    (version / "tokens").write_text(content)
    (directory / "..data").symlink_to(version.name)
    (directory / "tokens").symlink_to("..data/tokens")
    return directory / "tokens"


def kubelet_update(directory: Path, content: str) -> None:
    """What kubelet does on a Secret change: a new directory, `..data` swapped atomically by a
    rename of a new symlink, the old directory removed. The new file gets the old one's mtime,
    so only the content (or inode) tells them apart."""
    old = directory / os.readlink(directory / "..data")
    new = directory / "..2024_01_01_00_01_00.000000002"
    new.mkdir()
    (new / "tokens").write_text(content)
    before = (old / "tokens").stat()
    os.utime(new / "tokens", ns=(before.st_atime_ns, before.st_mtime_ns))
    (directory / "..data_tmp").symlink_to(new.name)
    os.replace(directory / "..data_tmp", directory / "..data")
    shutil.rmtree(old)


async def test_a_kubelet_symlink_swap_is_detected(
    replace_settings: Callable[..., ServiceSettings], tmp_path: Path
) -> None:
    path = kubelet_secret_volume(tmp_path / "secret", f"admin:ci:{CI}\n")
    async with run_app(replace_settings(tokens_file=path)) as api:
        assert await status(api, CI) == 404
        kubelet_update(tmp_path / "secret", f"admin:ci:{NEW}\n")
        await watcher_of(api).reload_now()
        assert await status(api, NEW) == 404
        assert await status(api, CI) == 401


async def test_an_in_place_rewrite_of_the_same_size_and_mtime_is_detected(
    api: Api, tokens_path: Path
) -> None:
    before = tokens_path.stat()
    rotated = tokens_path.read_text().replace(CI, NEW)
    assert len(rotated) == before.st_size
    with tokens_path.open("r+") as file:
        file.write(rotated)
    os.utime(tokens_path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = tokens_path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    await watcher_of(api).reload_now()
    assert await status(api, NEW) == 404
    assert await status(api, CI) == 401


async def test_the_background_task_reloads_the_file(
    replace_settings: Callable[..., ServiceSettings], tokens_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens_module, "RELOAD_INTERVAL_SECONDS", 0.02)
    async with run_app(replace_settings(tokens_file=tokens_path)) as api:
        write_tokens(tokens_path, f"admin:new:{NEW}")

        async def revoked_and_added() -> bool:
            return await status(api, CI) == 401 and await status(api, NEW) == 404

        await wait_until(revoked_and_added, 5.0, lambda: "the tokens file was never reloaded")


async def test_a_failing_check_is_logged_and_checked_again(
    replace_settings: Callable[..., ServiceSettings],
    tokens_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(tokens_module, "RELOAD_INTERVAL_SECONDS", 0.02)
    calls = 0

    def read_failing_first(path: Path) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug")
        return read_tokens_file_bytes(path)

    async with run_app(replace_settings(tokens_file=tokens_path)) as api:
        monkeypatch.setattr(tokens_module, "read_tokens_file_bytes", read_failing_first)
        write_tokens(tokens_path, f"admin:new:{NEW}")

        async def added() -> bool:
            return await status(api, NEW) == 404

        await wait_until(added, 5.0, lambda: "the check did not survive its failure")
        assert "checking it for changes failed; trying again" in caplog.text
        assert api.service.supervisor.ready


def reload_tasks() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == RELOAD_TASK]


async def test_the_reload_task_stops_with_the_service(
    replace_settings: Callable[..., ServiceSettings], tokens_path: Path
) -> None:
    async with run_app(replace_settings(tokens_file=tokens_path)):
        (task,) = reload_tasks()
        assert not task.done()
    assert task.cancelled()
    assert reload_tasks() == []


async def test_without_a_tokens_file_nothing_is_watched(settings: ServiceSettings) -> None:
    async with run_app(settings) as api:
        assert api.service.tokens_file is None
        assert reload_tasks() == []
        assert await tokens_file_metrics(api) == {}

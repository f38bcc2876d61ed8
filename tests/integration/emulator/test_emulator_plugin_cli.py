"""The pytest fixtures and the `mic testing cluster` command."""

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from mic.testing import KubeEmulator


async def test_factory_makes_independent_clusters(kube_emulators: Any) -> None:
    one, two = await kube_emulators(name="one"), await kube_emulators(name="two")
    assert one.url != two.url
    assert one.running
    assert two.running
    one.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "only-in-one"}})
    assert two.objects("configmaps") == []


async def test_single_fixture_is_started(kube_emulator: KubeEmulator) -> None:
    async with aiohttp.ClientSession(kube_emulator.url) as session, session.get("/healthz") as response:
        assert (response.status, await response.text()) == (200, "ok")


async def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "demo.kubeconfig"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mic.cli.main", "testing", "cluster", "--name", "demo", "--port", "0",
        "--token", "secret", "--kubeconfig-out", str(out), "--seed-demo",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        first = await asyncio.wait_for(process.stdout.readline(), 20)
        url = first.decode().rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        assert str(out) in (await asyncio.wait_for(process.stdout.readline(), 5)).decode()
        assert os.stat(out).st_mode & 0o777 == 0o600
        config = yaml.safe_load(out.read_text())
        assert config["clusters"][0]["cluster"]["server"] == url
        headers = {"Authorization": "Bearer secret"}
        async with (
            aiohttp.ClientSession(url, headers=headers) as session,
            session.get("/apis/networking.k8s.io/v1/ingresses") as response,
        ):
            names = sorted(i["metadata"]["name"] for i in (await response.json())["items"])
            assert names == ["blog", "shop"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

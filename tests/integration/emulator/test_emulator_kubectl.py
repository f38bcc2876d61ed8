"""The emulator as a compiled Kubernetes client sees it: kubectl (client-go) against it.

A cross-check of the wire protocol with a peer that is not ours: discovery, chunked lists,
create, label, strategic-merge patch, client-side apply, watch events, delete and the 404
`Status`. It runs where kubectl is installed and says so when it is not (kubectl is not a
dependency of MIC; no package index this project installs from provides it).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from mic.testing import TokenPolicy

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")


async def _kubectl(kubeconfig: Path, *args: str, stdin: bytes | None = None) -> tuple[int, str]:
    assert KUBECTL is not None
    process = await asyncio.create_subprocess_exec(
        KUBECTL,
        f"--kubeconfig={kubeconfig}",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(stdin), 30)
    return process.returncode or 0, output.decode()


async def test_kubectl_reads_writes_and_watches_the_emulator(kube_emulators: Any, tmp_path: Path) -> None:
    # client-go sends bearer tokens only over TLS, as against a real cluster.
    emulator = await kube_emulators(name="kc", tls=True, tokens={"t0k": TokenPolicy()})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(emulator.kubeconfig_yaml(token="t0k"))

    code, out = await _kubectl(kubeconfig, "api-resources", "--no-headers")
    assert code == 0, out
    assert any(line.split()[0] == "ingresses" for line in out.splitlines())

    watch = await asyncio.create_subprocess_exec(
        KUBECTL or "kubectl", f"--kubeconfig={kubeconfig}", "get", "configmaps", "-n", "default", "-w",
        "--output-watch-events", "-o", "custom-columns=EVENT:.type,NAME:.object.metadata.name",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await emulator.wait_for_watches(1, "configmaps")

        assert (await _kubectl(kubeconfig, "create", "configmap", "one", "--from-literal=a=1"))[0] == 0
        assert (await _kubectl(kubeconfig, "label", "configmap", "one", "tier=web"))[0] == 0
        code, out = await _kubectl(kubeconfig, "get", "configmaps", "-l", "tier=web", "-o", "name")
        assert (code, out.strip()) == (0, "configmap/one")
        code, out = await _kubectl(kubeconfig, "patch", "configmap", "one", "-p", '{"data":{"a":"2"}}')
        assert code == 0, out
        manifest = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\ndata:\n  k: v1\n"
        # The emulator serves no /openapi, which kubectl's client-side validation needs.
        assert (await _kubectl(kubeconfig, "apply", "--validate=false", "-f", "-", stdin=manifest))[0] == 0
        changed = manifest.replace(b"k: v1", b"k: v2")
        code, out = await _kubectl(kubeconfig, "apply", "--validate=false", "-f", "-", stdin=changed)
        assert code == 0, out
        code, out = await _kubectl(
            kubeconfig, "get", "configmaps", "--chunk-size=1", "-o", "jsonpath={.items[*].data}"
        )
        assert code == 0, out
        assert '"a":"2"' in out
        assert '"k":"v2"' in out
        assert (await _kubectl(kubeconfig, "delete", "configmap", "one"))[0] == 0
        code, out = await _kubectl(kubeconfig, "get", "configmap", "one")
        assert code != 0
        assert 'configmaps "one" not found' in out

        assert watch.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(15):
            while len(lines) < 7 and (line := await watch.stdout.readline()):  # a header, six events
                lines.append(line.decode())
    finally:
        watch.terminate()
        await watch.wait()
    events = [line.split() for line in lines[1:]]
    assert events == [
        ["ADDED", "one"],
        ["MODIFIED", "one"],
        ["MODIFIED", "one"],
        ["ADDED", "two"],
        ["MODIFIED", "two"],
        ["DELETED", "one"],
    ], lines

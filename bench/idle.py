"""Scenario 6, idle scale: 500 concurrent watches with no traffic: MIC's CPU % and RSS.

50 emulated clusters (one process) x the 10 resource types the emulator serves; MIC's process
runs a `Hub` watching all of them (500 informers, 500 open watches), no consumer. The
emulators send a bookmark per watch every 60 s (kube-apiserver's order of magnitude), so the
window is near-silent; MIC's CPU is read from /proc.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import CpuWindow, ScenarioResult, Table, log, rss_bytes
from bench.hosts import Remote

RESOURCES = [
    "namespaces", "pods", "services", "endpoints", "secrets", "configmaps",
    "endpointslices", "ingresses", "ingressclasses", "customresourcedefinitions",
]  # fmt: skip


def run(quick: bool, profile: Path | None = None) -> ScenarioResult:
    result = ScenarioResult("idle")
    clusters = 50
    window = 10.0 if quick else 30.0
    names = [f"c{i:02d}" for i in range(clusters)]
    with (
        Remote("bench.hosts:EmulatorHost", "emulators") as host,
        Remote("bench.fanin:HubHost", "mic hub") as mic,
    ):
        kubeconfigs = host.call("start", names=names, bookmark_interval=60.0)
        setup = mic.call("start", kubeconfigs=kubeconfigs, resources=RESOURCES, consume=False)
        watches = host.call("open_watches")
        time.sleep(1.0)
        cpu = CpuWindow(mic.pid).start()
        emu = CpuWindow(host.pid).start()
        time.sleep(window)
        cpu.stop()
        emu.stop()
        rss = rss_bytes(mic.pid)
    result.data = {
        "clusters": clusters,
        "resources": len(RESOURCES),
        "watches": watches,
        "setup_s": setup,
        "window_s": window,
        "mic_cpu_pct": cpu.percent,
        "mic_rss_mb": rss / 1e6,
        "emulator_cpu_pct": emu.percent,
    }
    log(f"idle: {result.data}")
    table = Table(
        f"Idle: {clusters} clusters x {len(RESOURCES)} resources, no traffic, {window:.0f} s",
        ["open watches", "start → all synced s", "MIC CPU %", "MIC RSS MB", "emulators CPU %"],
    )
    table.add(watches, setup, cpu.percent, rss / 1e6, emu.percent)
    result.tables.append(table)
    result.target(
        f"{watches} idle watches",
        f"{cpu.percent:.2f} % CPU",
        "< 2 % CPU",
        cpu.percent < 2,
        "" if cpu.percent < 2 else f"missed by {cpu.percent / 2:.1f}x",
    )
    result.notes.append(
        "CPU % is of one core; /proc tick resolution is 10 ms, so ±0.1 % over 10 s. Bookmarks every 60 s."
    )
    return result

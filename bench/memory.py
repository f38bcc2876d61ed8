"""Scenario 4, memory: RSS of cached objects beside their JSON size.

For each object type and each cache mode — the default (decoded dicts), lean
(`strip_managed_fields`) and compact (`strip_managed_fields` + `compact_cache`: objects kept as
JSON bytes) — a fresh child process runs only one `Informer` (no hub, no store) over an emulated
cluster holding N objects with realistic managedFields: RSS after discovery and client warm-up,
then after the first list is in the cache (and `gc.collect()`); the difference per object is
compared to the object's JSON size as the API server sends it.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

from bench.common import ScenarioResult, Table, log, rss_bytes
from bench.hosts import Remote
from bench.objects import KINDS


class InformerHost:
    """Hosted in a child process: one informer and nothing else."""

    def __init__(self) -> None:
        self.informer: Any = None
        self.client: Any = None

    async def measure(self, kubeconfig: str, resource: str, mode: str) -> dict[str, Any]:
        import os

        from mic.kube.client import KubeClient
        from mic.kube.discover import discover
        from mic.kube.informer import Informer, InformerOptions
        from mic.kube.kubeconfig import from_kubeconfig_text

        self.client = KubeClient(from_kubeconfig_text(kubeconfig))
        info = (await discover(self.client)).resolve(resource)
        await self.client.get_json("/version")

        async def sink(events: list[Any]) -> None:
            return None

        self.informer = Informer(
            self.client,
            "c0",
            info,
            sink,
            options=InformerOptions(strip_managed_fields=mode != "full", compact_cache=mode == "compact"),
        )
        gc.collect()
        before = rss_bytes(os.getpid())
        await self.informer.start()
        while not self.informer.synced:  # noqa: ASYNC110 (polls state owned by another task)
            await asyncio.sleep(0.01)
        gc.collect()
        after = rss_bytes(os.getpid())
        return {"objects": len(self.informer.cache), "rss_before": before, "rss_after": after}

    async def close(self) -> None:
        if self.informer is not None:
            await self.informer.stop()
        if self.client is not None:
            await self.client.close()


MODES = {
    "full": "full: dicts, managedFields kept (the library's default)",
    "lean": "lean: dicts, managedFields stripped",
    "compact": "compact: JSON bytes, managedFields stripped",
}


def run(quick: bool, profile: Path | None = None) -> ScenarioResult:
    result = ScenarioResult("memory")
    n = 10_000 if quick else 100_000
    table = Table(
        f"Memory: RSS growth of one informer caching {n:,} objects",
        [
            "object",
            "cache mode",
            "JSON bytes/object",
            "RSS bytes/object",
            "RSS / JSON",
            "RSS / full JSON",
            "RSS MB for N",
        ],
    )
    with Remote("bench.hosts:EmulatorHost", "emulator") as host:
        kubeconfig = host.call("start", names=["c0"])["c0"]
        for resource, (_api, _kind, label) in KINDS.items():
            sizes = host.call("populate", resource=resource, count=n)
            for mode in MODES:
                with Remote("bench.memory:InformerHost", "mic informer") as mic:
                    got = mic.call("measure", kubeconfig=kubeconfig, resource=resource, mode=mode)
                grown = got["rss_after"] - got["rss_before"]
                per_object = grown / got["objects"]
                json_size = sizes["json_bytes"] if mode == "full" else sizes["json_bytes_stripped"]
                row = {
                    "objects": got["objects"],
                    "json_bytes": json_size,
                    "json_bytes_with_managed_fields": sizes["json_bytes"],
                    "rss_bytes_per_object": per_object,
                    "ratio": per_object / json_size,
                    "ratio_to_full_json": per_object / sizes["json_bytes"],
                    "rss_grown_mb": grown / 1e6,
                }
                result.data[f"{resource}-{mode}"] = row
                log(f"memory {resource} mode={mode}: {row}")
                table.add(label, MODES[mode], round(json_size), round(per_object), f"{row['ratio']:.1f}x",
                          f"{row['ratio_to_full_json']:.1f}x", row["rss_grown_mb"])  # fmt: skip
    result.tables.append(table)
    for mode, what in MODES.items():
        worst = max(v["ratio_to_full_json"] for k, v in result.data.items() if k.endswith(f"-{mode}"))
        result.target(
            f"cached object RSS vs JSON ({what})",
            f"{worst:.1f}x of the full JSON (worst type)",
            "≤ 2x",
            worst <= 2,
            "" if worst <= 2 else f"missed by {worst / 2:.1f}x",
        )
    result.notes += [
        "JSON bytes: the object as the API server sends it (with managedFields, or without when "
        "stripped); RSS / JSON compares the cache with the JSON it holds, RSS / full JSON with what "
        "the API server sends (the target's measure). `mic serve` uses the compact mode by default "
        "(MIC_CACHE_MODE); `Hub()` in a program of one's own keeps full dicts unless given "
        "InformerOptions(strip_managed_fields=..., compact_cache=...).",
        "The emulator drops managedFields on writes; the bench puts realistic ones (Helm's fieldsV1, a "
        "status manager for Ingress) back into the stored objects.",
        "RSS is measured after gc.collect(); it includes what the allocator keeps of the list pages "
        "decoded on the way (pages of 500).",
    ]
    return result

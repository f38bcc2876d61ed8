"""Watch Ingresses in several clusters at once with the MIC library.

    python examples/watch_ingresses.py ~/.kube/eu.yaml ~/.kube/us.yaml   # real clusters
    python examples/watch_ingresses.py                                     # three emulated ones

Each kubeconfig file is one cluster (its current context). Without arguments the example
starts three emulated clusters, makes a few changes in them, and prints what the hub sees.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mic import Event, Hub, from_kubeconfig_file, from_kubeconfig_text
from mic.testing import KubeEmulator


def ingress(name: str, host: str) -> dict[str, object]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default", "labels": {"team": "web"}},
        "spec": {"rules": [{"host": host}]},
    }


def show(event: Event) -> None:
    rules = event.object.get("spec", {}).get("rules", [])
    hosts = ",".join(rule.get("host", "*") for rule in rules)
    print(f"{event.cluster:<8} {event.type.value:<9} {event.key:<20} hosts={hosts or '-'}")


async def watch_real_clusters(paths: list[str]) -> None:
    async with Hub() as hub:
        for path in paths:
            await hub.add_cluster(Path(path).stem, from_kubeconfig_file(path))
        async with await hub.events("ingresses") as stream:
            async for event in stream:
                show(event)


async def demo() -> None:
    emulators = [KubeEmulator(name) for name in ("eu-1", "us-1", "ap-1")]
    for emulator in emulators:
        await emulator.start()
        emulator.create(ingress("shop", f"shop.{emulator.name}.example.com"))
    try:
        async with Hub() as hub:
            for emulator in emulators:
                await hub.add_cluster(emulator.name, from_kubeconfig_text(emulator.kubeconfig_yaml()))
            async with await hub.events("ing", label_selector="team=web") as stream:
                await hub.wait_synced(timeout=10)
                emulators[0].patch("ingresses", "shop", {"spec": {"rules": [{"host": "new.example.com"}]}})
                emulators[1].delete("ingresses", "shop")
                for _ in range(len(emulators) + 2):
                    show(await anext(stream))
                cached = hub.list_all("ingresses", label_selector="team=web")
                print(
                    "still there:",
                    ", ".join(f"{cluster}/{obj['metadata']['name']}" for cluster, obj in cached),
                )
    finally:
        for emulator in emulators:
            await emulator.stop()


if __name__ == "__main__":
    asyncio.run(watch_real_clusters(sys.argv[1:]) if len(sys.argv) > 1 else demo())

"""A real cluster for the benchmarks: `MIC_BENCH_KUBECONFIG=path make bench`.

`RealClusterHost` stands in for `bench.hosts.EmulatorHost` where a scenario can run against a
real API server: it creates the pool of objects in the namespace `mic-bench` (made if missing,
every object labelled `bench.mic.io/object`) and makes changes through the API only, as fast
as the server takes them (`patch_burst`) or at a fixed rate (`patch_rate`). A real server has
no firehose of pre-serialised events: its write rate bounds events/s, so against it the
ingest comparison is of CPU time per event, and end-to-end throughput is of what the server
produced. The objects are deleted when the host closes. Scenarios that need many clusters or
100,000 objects (fan-in, memory, restart resync, idle) run against the emulator only.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.objects import KINDS, TS_ANNOTATION, make

KUBECONFIG_ENV = "MIC_BENCH_KUBECONFIG"
NAMESPACE = "mic-bench"
LABEL = "bench.mic.io/object"
CONCURRENCY = 16
"""Requests in flight while making changes as fast as the server takes them."""


def real_kubeconfig() -> str | None:
    """The kubeconfig text `MIC_BENCH_KUBECONFIG` names, or None when it is not set."""
    path = os.environ.get(KUBECONFIG_ENV)
    if not path:
        return None
    try:
        return Path(path).expanduser().read_text()
    except OSError as error:
        raise SystemExit(f"{KUBECONFIG_ENV}={path}: cannot read it: {error.strerror}") from None


def collection_path(resource: str, namespace: str = NAMESPACE) -> str:
    api_version = KINDS[resource][0]
    group_path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{group_path}/namespaces/{namespace}/{resource}"


def _for_real_server(resource: str, i: int, prefix: str) -> dict[str, Any]:
    obj = make(resource, i, namespace=NAMESPACE, prefix=prefix)
    metadata = obj["metadata"]
    metadata["labels"] = {**metadata.get("labels", {}), LABEL: "true"}
    if resource == "endpointslices":
        # Not the EndpointSlice controller's to manage (it would reconcile them away).
        metadata["labels"]["endpointslice.kubernetes.io/managed-by"] = "bench.mic.io"
    return obj


class RealClusterHost:
    """The cluster `MIC_BENCH_KUBECONFIG` names, driven through its API (see the module doc)."""

    def __init__(self) -> None:
        self._client: Any = None
        self._kubeconfig = ""
        self._names: dict[str, list[str]] = {}  # resource -> names of the pool
        self._cursor: dict[str, int] = {}
        self._seq = 0

    async def start(self, names: Sequence[str], **_ignored: Any) -> dict[str, str]:
        """Connect and make the namespace; every name stands for the one real cluster."""
        from mic.kube.client import KubeClient
        from mic.kube.errors import ApiError
        from mic.kube.kubeconfig import from_kubeconfig_text

        text = real_kubeconfig()
        if text is None:
            raise RuntimeError(f"{KUBECONFIG_ENV} is not set")
        self._kubeconfig = text
        self._client = KubeClient(from_kubeconfig_text(text))
        try:
            await self._client.request_json(
                "POST", "/api/v1/namespaces", body={"metadata": {"name": NAMESPACE}}
            )
        except ApiError as error:
            if error.status != 409:
                raise
        return dict.fromkeys(names, text)

    async def close(self) -> None:
        if self._client is None:
            return
        for resource in list(self._names):
            await self._delete_pool(resource)
        await self._client.close()
        self._client = None

    async def _delete_pool(self, resource: str) -> None:
        from mic.kube.errors import ApiError

        try:
            await self._client.request_json(
                "DELETE", collection_path(resource), params={"labelSelector": f"{LABEL}=true"}
            )
        except ApiError as error:
            if error.status != 404:
                raise
        self._names.pop(resource, None)

    async def populate(self, resource: str, count: int, **_ignored: Any) -> dict[str, float]:
        """Replace the pool of `resource` with `count` new objects; returns their mean JSON size
        as the server keeps them (with its managedFields) and without managedFields."""
        await self._delete_pool(resource)
        prefix = f"obj{int(time.time()) % 100000}"  # new names: deletions may still be under way
        path = collection_path(resource)
        created: list[dict[str, Any]] = []

        async def create(i: int) -> None:
            created.append(
                await self._client.request_json("POST", path, body=_for_real_server(resource, i, prefix))
            )

        await _bounded([lambda i=i: create(i) for i in range(count)])  # type: ignore[misc]
        self._names[resource] = sorted(obj["metadata"]["name"] for obj in created)
        self._cursor[resource] = 0
        full = sum(len(orjson.dumps(obj)) for obj in created) / max(1, len(created))
        for obj in created:
            obj["metadata"].pop("managedFields", None)
        stripped = sum(len(orjson.dumps(obj)) for obj in created) / max(1, len(created))
        return {"json_bytes": full, "json_bytes_stripped": stripped}

    async def _patch(self, resource: str, annotations: dict[str, str]) -> None:
        names = self._names[resource]
        position = self._cursor[resource]
        self._cursor[resource] = position + 1
        name = names[position % len(names)]
        await self._client.request_json(
            "PATCH",
            f"{collection_path(resource)}/{name}",
            body={"metadata": {"annotations": annotations}},
            content_type="application/merge-patch+json",
        )

    def _next_seq(self) -> str:
        # A value no object had before: a patch that changes nothing is no change to the server
        # (no new resourceVersion, no event), so bursts must never repeat an earlier value.
        self._seq += 1
        return str(self._seq)

    async def patch_burst(self, resource: str, count: int, **_ignored: Any) -> dict[str, float]:
        """Change `count` objects (round-robin over the pool) as fast as the server takes it."""
        started = time.perf_counter()
        await _bounded(
            [lambda: self._patch(resource, {"bench.mic.io/seq": self._next_seq()}) for _ in range(count)]
        )
        seconds = time.perf_counter() - started
        return {"events": count, "seconds": seconds, "rate": count / seconds if seconds else 0.0}

    async def patch_rate(
        self, targets: Sequence[tuple[str, str]], rate: float, duration: float
    ) -> dict[str, float]:
        """Change objects at `rate` per second for `duration` seconds; each change carries its
        time in TS_ANNOTATION (the targets' cluster names all mean this cluster)."""
        resources = [resource for _, resource in targets]
        loop = asyncio.get_running_loop()
        start = loop.time()
        done = 0
        worst_lag = 0.0
        pending: set[asyncio.Task[None]] = set()
        while (due := start + done / rate) < start + duration:
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
            worst_lag = max(worst_lag, loop.time() - due)
            resource = resources[done % len(resources)]
            task = asyncio.create_task(self._patch(resource, {TS_ANNOTATION: repr(time.time())}))
            pending.add(task)
            task.add_done_callback(pending.discard)
            done += 1
        await asyncio.gather(*pending)
        return {"changes": done, "worst_lag": worst_lag}


async def _bounded(calls: list[Any], concurrency: int = CONCURRENCY) -> None:
    """Run the coroutine factories `calls`, at most `concurrency` at a time, in order of start."""
    queue = iter(calls)

    async def worker() -> None:
        for call in queue:
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


__all__ = ["KUBECONFIG_ENV", "NAMESPACE", "RealClusterHost", "collection_path", "real_kubeconfig"]

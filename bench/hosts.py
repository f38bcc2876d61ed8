"""Processes the benchmarks talk to: emulated clusters, a webhook recipient, measured workloads.

Every piece runs in its own process (multiprocessing, `spawn`), so the CPU one spends is never
counted against another. `Remote` starts a child that hosts one object with async methods and
calls them over a pipe; calls can overlap (submit now, collect the result later).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import multiprocessing
import multiprocessing.connection
import time
import traceback
from collections.abc import Sequence
from typing import Any

import orjson

from bench.objects import KINDS, TS_ANNOTATION, make, managed_fields

log = logging.getLogger(__name__)


class RemoteError(RuntimeError):
    """A call in a child process raised; the message holds the child's traceback."""


class Remote:
    """A child process hosting `target` ("module:Class"); `call(method, **kwargs)` runs
    `await instance.method(**kwargs)` there and returns its (picklable) result."""

    def __init__(self, target: str, name: str | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, target), name=name or target, daemon=True)
        self.process.start()
        child.close()
        self._next = 0
        self._results: dict[int, tuple[bool, Any]] = {}

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def submit(self, method: str, **kwargs: Any) -> int:
        self._next += 1
        self._conn.send((self._next, method, kwargs))
        return self._next

    def result(self, call_id: int, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while call_id not in self._results:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._conn.poll(remaining):
                raise TimeoutError(f"{self.process.name}: no answer within {timeout}s")
            try:
                got_id, ok, value = self._conn.recv()
            except EOFError:
                raise RemoteError(f"{self.process.name} exited (code {self.process.exitcode})") from None
            self._results[got_id] = (ok, value)
        ok, value = self._results.pop(call_id)
        if not ok:
            raise RemoteError(f"{self.process.name}: {value}")
        return value

    def call(self, method: str, *, call_timeout: float | None = 900.0, **kwargs: Any) -> Any:
        return self.result(self.submit(method, **kwargs), call_timeout)

    def close(self, timeout: float = 10.0) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self._conn.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        self._conn.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _serve(conn: multiprocessing.connection.Connection, target: str) -> None:
    logging.basicConfig(level=logging.WARNING, format=f"[{target}] %(levelname)s %(name)s: %(message)s")
    module_name, _, class_name = target.partition(":")
    instance = getattr(importlib.import_module(module_name), class_name)()
    asyncio.run(_loop(conn, instance))


async def _loop(conn: multiprocessing.connection.Connection, instance: Any) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()

    async def run(call_id: int, method: str, kwargs: dict[str, Any]) -> None:
        try:
            value = await getattr(instance, method)(**kwargs)
        except asyncio.CancelledError:
            conn.send((call_id, False, "cancelled"))
            raise
        except BaseException:
            conn.send((call_id, False, traceback.format_exc()))
            return
        conn.send((call_id, True, value))

    def readable() -> None:
        while conn.poll():
            try:
                message = conn.recv()
            except EOFError:
                message = None
            if message is None:
                loop.remove_reader(conn.fileno())
                stop.set()
                return
            call_id, method, kwargs = message
            task = loop.create_task(run(call_id, method, kwargs))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    loop.add_reader(conn.fileno(), readable)
    await stop.wait()
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    close = getattr(instance, "close", None)
    if close is not None:
        await close()


def _line(event_type: str, obj: dict[str, Any]) -> bytes:
    return b'{"type":"' + event_type.encode() + b'","object":' + orjson.dumps(obj) + b"}\n"


class EmulatorHost:
    """Emulated clusters (each on its own port) in one process, and scripted traffic into them."""

    def __init__(self) -> None:
        from mic.testing import KubeEmulator

        self._emulator_class = KubeEmulator
        self.emulators: dict[str, Any] = {}
        self._cursor: dict[tuple[str, str], int] = {}
        self._keys: dict[tuple[str, str], list[str]] = {}

    async def start(
        self, names: Sequence[str], bookmark_interval: float = 1.0, history_size: int = 10_000
    ) -> dict[str, str]:
        """Start one emulator per name; returns name -> kubeconfig YAML."""
        for name in names:
            emulator = self._emulator_class(
                name,
                bookmark_interval=bookmark_interval,
                history_size=history_size,
                watch_buffer=1_000_000,
            )
            await emulator.start()
            self.emulators[name] = emulator
        return {name: self.emulators[name].kubeconfig_yaml() for name in names}

    async def close(self) -> None:
        for emulator in self.emulators.values():
            await emulator.stop()

    async def stop(self) -> None:
        await self.close()
        self.emulators.clear()

    def _objects(self, cluster: str, resource: str) -> list[dict[str, Any]]:
        state = self.emulators[cluster].state
        return state.objects(state.type_for(resource))

    async def populate(
        self,
        resource: str,
        count: int,
        clusters: Sequence[str] | None = None,
        managed: bool = True,
        prefix: str = "obj",
    ) -> dict[str, float]:
        """Create `count` objects of `resource` in each cluster (with managedFields put back into
        the stored objects); returns their mean JSON size with and without managedFields."""
        total = stripped = sampled = 0
        for cluster in clusters or list(self.emulators):
            state = self.emulators[cluster].state
            rt = state.type_for(resource)
            for i in range(count):
                obj = make(resource, i, prefix=prefix)
                stored = state.create(rt, obj, "default")
                measure = i % 10 == 0  # sizes from every 10th object: they differ little
                if measure:
                    stripped += len(orjson.dumps(stored))
                if managed:
                    stored["metadata"]["managedFields"] = managed_fields(obj)
                if measure:
                    total += len(orjson.dumps(stored))
                    sampled += 1
            await asyncio.sleep(0)
        n = sampled
        return {"json_bytes": total / n if n else 0.0, "json_bytes_stripped": stripped / n if n else 0.0}

    async def firehose(self, cluster: str, resource: str, count: int) -> dict[str, int]:
        """Queue `count` MODIFIED lines (cycling over the stored objects, resourceVersions counting
        up from the current one) for the next watch on `resource`; returns events and bytes."""
        emulator = self.emulators[cluster]
        objects = self._objects(cluster, resource)
        base = emulator.state.rv
        lines: list[bytes] = []
        for i in range(count):
            obj = objects[i % len(objects)]
            metadata = dict(obj["metadata"])
            metadata["resourceVersion"] = str(base + i + 1)
            # A real change (not only a new resourceVersion, which MIC suppresses as a no-op).
            metadata["annotations"] = {**(metadata.get("annotations") or {}), "bench.mic.io/seq": str(i)}
            lines.append(_line("MODIFIED", {**obj, "metadata": metadata}))
            if i % 5000 == 4999:
                await asyncio.sleep(0)
        emulator.firehose(resource, lines)
        return {"events": count, "bytes": sum(len(line) for line in lines)}

    async def end_watches(self) -> int:
        return sum(emulator.end_watches() for emulator in self.emulators.values())

    async def open_watches(self) -> int:
        return sum(emulator.open_watches for emulator in self.emulators.values())

    def _touch(self, cluster: str, resource: str, value: str) -> None:
        """Change one object (the next in turn): its TS annotation becomes `value`."""
        state = self.emulators[cluster].state
        rt = state.type_for(resource)
        bucket = state._bucket(rt)
        keys = self._keys.get((cluster, resource))
        if keys is None:
            keys = self._keys[(cluster, resource)] = sorted(bucket)
        position = self._cursor.get((cluster, resource), 0)
        self._cursor[(cluster, resource)] = position + 1
        current = bucket[keys[position % len(keys)]]
        metadata = dict(current["metadata"])
        metadata["annotations"] = {**(metadata.get("annotations") or {}), TS_ANNOTATION: value}
        metadata["resourceVersion"] = ""
        state.update(rt, {**current, "metadata": metadata}, metadata.get("namespace", ""), metadata["name"])

    async def patch_rate(
        self, targets: Sequence[tuple[str, str]], rate: float, duration: float
    ) -> dict[str, float]:
        """Change objects at `rate` per second in total, round-robin over (cluster, resource)
        targets, for `duration` seconds; each change carries its time in TS_ANNOTATION."""
        self._keys = {}
        loop = asyncio.get_running_loop()
        # The emulator stands in for a compiled API server. Its heap (stored objects, history)
        # makes each full collection of Python's cyclic GC stall it for 0.5-1 s, which reached
        # MIC as a burst and dominated the measured p99 (130 ms with it, 2 ms without); a Go
        # server has no such pauses. MIC's own process keeps its collector on.
        gc.collect()
        gc.disable()
        start = loop.time()
        done = 0
        worst_lag = 0.0
        total = int(rate * duration)
        while done < total:
            now = loop.time()
            due = min(total, int((now - start) * rate) + 1)
            if due > done:
                worst_lag = max(worst_lag, now - (start + done / rate))
            burst = 0
            while done < due and burst < 10:  # yield often so watches get written promptly
                cluster, resource = targets[done % len(targets)]
                self._touch(cluster, resource, f"{time.time():.6f}")
                done += 1
                burst += 1
            next_at = start + done / rate
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        gc.enable()
        return {"changes": done, "seconds": loop.time() - start, "worst_lag": worst_lag}

    async def patch_some(self, cluster: str, resource: str, count: int) -> int:
        """Change `count` distinct objects once each (as fast as possible)."""
        self._keys = {}
        self._cursor = {}
        for i in range(count):
            self._touch(cluster, resource, f"{time.time():.6f}")
            if i % 1000 == 999:
                await asyncio.sleep(0)
        return count


class RecipientHost:
    """A webhook recipient that counts CloudEvents (and, if asked, their latency)."""

    def __init__(self) -> None:
        self._runner: Any = None
        self.latency = False
        self._reset()
        self._changed = asyncio.Condition()

    def _reset(self) -> None:
        self.requests = 0
        self.events = 0
        self.modified = 0
        self.first_modified_at: float | None = None
        self.last_at: float | None = None
        self.latencies: list[float] = []

    async def start(self, latency: bool = False) -> str:
        from aiohttp import web

        self.latency = latency
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/hook"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.read()
        now = time.time()
        events = body.count(b'"specversion"')
        modified = body.count(b'"type":"io.mic.resource.modified"')
        self.requests += 1
        self.events += events
        if modified:
            if self.first_modified_at is None:
                self.first_modified_at = now
            self.modified += modified
            if self.latency:
                decoded = orjson.loads(body)
                for event in decoded if isinstance(decoded, list) else [decoded]:
                    annotations = event["data"]["object"]["metadata"].get("annotations") or {}
                    ts = annotations.get(TS_ANNOTATION)
                    if ts is not None and event["type"].endswith("modified"):
                        self.latencies.append(now - float(ts))
        self.last_at = now
        async with self._changed:
            self._changed.notify_all()
        return web.Response(status=200)

    async def reset(self) -> None:
        self._reset()

    async def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "events": self.events,
            "modified": self.modified,
            "first_modified_at": self.first_modified_at,
            "last_at": self.last_at,
            "latencies": list(self.latencies),
        }

    async def wait(self, field: str, target: int, timeout: float) -> dict[str, Any]:
        """Wait until counter `field` reaches `target` (or `timeout` passes); returns stats."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: getattr(self, field) >= target)
        return await self.stats()

    async def wait_quiet(self, quiet: float, timeout: float) -> dict[str, Any]:
        """Wait until nothing arrived for `quiet` seconds (or `timeout`); returns stats."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            last = self.last_at or 0.0
            if time.time() - last >= quiet:
                break
            await asyncio.sleep(0.05)
        return await self.stats()


__all__ = ["KINDS", "EmulatorHost", "RecipientHost", "Remote", "RemoteError"]

"""Scenario 2, end-to-end: a change in the emulator → delivered to a webhook recipient.

Three processes: the emulator (`EmulatorHost`), MIC's pipeline as the service builds it
(`PipelineHost`: SQLite store with its default durability, hub, delivery engine; CloudEvents
structured, one informer shared by every subscription), and a counting aiohttp recipient
(`RecipientHost`).

* Throughput: the emulator fires N pre-serialised MODIFIED events at MIC's watch; the rate is
  N (x subscriptions for deliveries) over the time from the first to the last MODIFIED event
  arriving at the recipient.
* Latency: the emulator changes objects at a fixed rate, writing the time of each change into
  an annotation; the recipient subtracts it from the arrival time (same clock).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import CpuWindow, ScenarioResult, Table, latency_summary, log, service_hub
from bench.hosts import Remote
from bench.ingest import _start_profile, _stop_profile
from bench.real import NAMESPACE, real_kubeconfig

POOL = 200
ROUNDS = 3
"""Rounds of each throughput case in a full run; the table shows the median."""


class PipelineHost:
    """Hosted in a child process: store + hub + delivery engine, as `mic serve` wires them."""

    def __init__(self) -> None:
        self.store: Any = None
        self.hub: Any = None
        self.engine: Any = None
        self.started_at = 0.0

    async def warm(self) -> None:
        """Import what `start` needs, so a timed start does not count Python's imports."""
        import mic.delivery.engine
        import mic.hub
        import mic.kube.kubeconfig
        import mic.store  # noqa: F401

    async def start(
        self, database: str, kubeconfigs: dict[str, str], subscriptions: list[dict[str, Any]]
    ) -> float:
        """Open the store, create the subscriptions that are not stored yet, start; returns the
        seconds it took until `start` returned (the clusters then connect in the background)."""
        from mic.delivery.engine import DeliveryEngine
        from mic.kube.kubeconfig import from_kubeconfig_text
        from mic.store import ClusterRecord, Store, SubscriptionRecord

        self.started_at = time.perf_counter()
        self.store = await Store.open(f"sqlite+aiosqlite:///{database}")
        self.hub = service_hub()
        self.engine = DeliveryEngine(self.store, self.hub)
        stored = {record.name for record in await self.store.list_subscriptions()}
        for document in subscriptions:
            if document["name"] not in stored:
                await self.store.create_subscription(SubscriptionRecord(name=document["name"], spec=document))
        await self.engine.start()
        known = {record.name for record in await self.store.list_clusters()}
        for name, kubeconfig in kubeconfigs.items():
            if name not in known:
                await self.store.create_cluster(
                    ClusterRecord(name=name, connection={"type": "bench"}, labels={})
                )
            await self.hub.add_cluster(name, from_kubeconfig_text(kubeconfig))
        return time.perf_counter() - self.started_at

    async def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Until every informer synced and every subscription's backlog is 0; seconds since start."""
        deadline = time.perf_counter() + timeout
        synced = await self.hub.wait_synced(timeout=timeout)
        synced_at = time.perf_counter() - self.started_at
        while time.perf_counter() < deadline:
            if all(self.engine.status(name).backlog == 0 for name in self.engine.names()):
                break
            await asyncio.sleep(0.01)
        return {
            "synced": synced,
            "synced_s": synced_at,
            "ready_s": time.perf_counter() - self.started_at,
            "backlog": sum(self.engine.status(name).backlog for name in self.engine.names()),
            "delivered": sum(self.engine.status(name).delivered_total for name in self.engine.names()),
        }

    async def status(self) -> dict[str, Any]:
        return {name: vars(self.engine.status(name)) for name in self.engine.names()}

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.close()
            await self.hub.close()
            await self.store.close()
            self.engine = None


def subscription(name: str, url: str, batched: bool, **extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"name": name, "sink": {"url": url}, "filter": {"resources": ["configmaps"]}}
    if batched:
        document["batching"] = {"maxEvents": 100, "maxWaitMs": 200}
    document.update(extra)
    return document


def _throughput(
    host: Remote,
    recipient: Remote,
    kubeconfigs: dict[str, str],
    tmp: Path,
    *,
    n: int,
    subs: int,
    batched: bool,
    timeout: float,
    profile: Path | None,
    real: bool,
) -> dict[str, Any]:
    url = recipient.call("start_url")
    recipient.call("reset")
    if not real:
        host.call("firehose", cluster="c0", resource="configmaps", count=n)
    documents = [subscription(f"s{i}", url, batched, **_scope(real)) for i in range(subs)]
    with Remote("bench.e2e:PipelineHost", "mic pipeline") as mic:
        cpu = CpuWindow(mic.pid).start()
        spy = _start_profile(profile, mic.pid, f"e2e-{'batched' if batched else 'unbatched'}-{subs}sub")
        mic.call("start", database=str(tmp / f"e2e-{subs}-{batched}.db"), kubeconfigs=kubeconfigs,
                 subscriptions=documents)  # fmt: skip
        if real:  # a real server has no firehose: change the objects once MIC watches
            mic.call("wait_ready", timeout=120)
            host.submit("patch_burst", resource="configmaps", count=n)
        stats = recipient.call("wait", field="modified", target=n * subs, timeout=timeout)
        cpu.stop()
        _stop_profile(spy)
        mic.call("close")
    span = (stats["last_at"] or 0) - (stats["first_modified_at"] or 0)
    delivered = stats["modified"]
    events = delivered / subs
    return {
        "n": n,
        "subscriptions": subs,
        "batched": batched,
        "delivered": delivered,
        "complete": delivered >= n * subs,
        "seconds": span,
        "events_s": events / span if span > 0 else 0.0,
        "deliveries_s": delivered / span if span > 0 else 0.0,
        "requests": stats["requests"],
        "mic_cpu_s": cpu.cpu,
        "mic_cpu_pct": cpu.percent,
    }


def _median_of_rounds(rounds: int, run_case: Any) -> dict[str, Any]:
    """Run a throughput case `rounds` times (each a fresh MIC process and database) and keep the
    round with the median events/s; every round's rate stays in the row (`rounds_events_s`).
    Single runs of the same case varied by ~15 % on the 2-core machine."""
    results = [run_case(round_) for round_ in range(rounds)]
    ordered = sorted(results, key=lambda row: row["events_s"])
    median = dict(ordered[len(ordered) // 2])
    median["rounds_events_s"] = [row["events_s"] for row in results]
    median["complete"] = all(row["complete"] for row in results)
    return median


def _scope(real: bool) -> dict[str, Any]:
    """Against a real cluster, only the bench's namespace."""
    return {"filter": {"resources": ["configmaps"], "namespaces": [NAMESPACE]}} if real else {}


def _latency(
    host: Remote,
    recipient: Remote,
    kubeconfigs: dict[str, str],
    tmp: Path,
    *,
    rate: float,
    duration: float,
    real: bool,
) -> dict[str, Any]:
    url = recipient.call("start_url")
    recipient.call("reset", latency=True)
    with Remote("bench.e2e:PipelineHost", "mic pipeline") as mic:
        mic.call("start", database=str(tmp / "latency.db"), kubeconfigs=kubeconfigs,
                 subscriptions=[subscription("lat", url, False, **_scope(real))])  # fmt: skip
        recipient.call("wait", field="events", target=POOL, timeout=60)
        cpu = CpuWindow(mic.pid).start()
        changed = host.call("patch_rate", targets=[("c0", "configmaps")], rate=rate, duration=duration)
        stats = recipient.call("wait", field="modified", target=changed["changes"], timeout=60)
        cpu.stop()
        mic.call("close")
    summary = latency_summary(stats["latencies"])
    return {
        "rate": rate,
        "duration": duration,
        "changes": changed["changes"],
        "emulator_worst_lag_ms": changed["worst_lag"] * 1000,
        "delivered": stats["modified"],
        **summary,
        "mic_cpu_pct": cpu.percent,
    }


def run(quick: bool, profile: Path | None = None) -> ScenarioResult:
    result = ScenarioResult("e2e")
    real = real_kubeconfig() is not None
    if real:  # changes made through a real server's API: fewer of them
        cases = (
            [(1_000, 1, False), (2_000, 1, True), (200, 10, False), (1_000, 10, True)]
            if quick
            else [(5_000, 1, False), (10_000, 1, True), (1_000, 10, False), (5_000, 10, True)]
        )
    else:
        cases = (
            [(2_000, 1, False), (10_000, 1, True), (300, 10, False), (2_000, 10, True)]
            if quick
            else [(20_000, 1, False), (100_000, 1, True), (3_000, 10, False), (20_000, 10, True)]
        )
    rate, duration = (500.0, 10.0) if quick else (500.0, 30.0)
    source = "changes made through a real cluster's API" if real else "firehose"
    table = Table(
        f"End-to-end throughput ({source}: N MODIFIED ConfigMaps → webhook recipient)",
        [
            "subscriptions",
            "batching",
            "N events",
            "events/s",
            "deliveries/s",
            "requests",
            "MIC CPU %",
            "complete",
        ],
    )
    with (
        tempfile.TemporaryDirectory(prefix="mic-bench-e2e-") as tmp_name,
        Remote("bench.real:RealClusterHost" if real else "bench.hosts:EmulatorHost", "cluster") as host,
        Remote("bench.e2e:RecipientProcess", "recipient") as recipient,
    ):
        tmp = Path(tmp_name)
        kubeconfigs = host.call("start", names=["c0"])
        host.call("populate", resource="configmaps", count=POOL)
        rows = []
        for n, subs, batched in cases:
            row = _median_of_rounds(
                1 if quick else ROUNDS,
                lambda round_, n=n, subs=subs, batched=batched: _throughput(
                    host, recipient, kubeconfigs, tmp / f"round-{round_}", n=n, subs=subs, batched=batched,
                    timeout=120 if quick else 600, profile=profile if round_ == 0 else None, real=real,
                ),
            )  # fmt: skip
            log(f"e2e throughput: {row}")
            rows.append(row)
            table.add(subs, "on (100)" if batched else "off", n, row["events_s"], row["deliveries_s"],
                      row["requests"], row["mic_cpu_pct"],
                      "yes" if row["complete"] else "**no**")  # fmt: skip
        latency = _latency(host, recipient, kubeconfigs, tmp, rate=rate, duration=duration, real=real)
        log(f"e2e latency: {latency}")
    result.data = {"throughput": rows, "latency": latency}
    result.tables.append(table)
    lat = Table(
        f"End-to-end latency at {rate:.0f} changes/s for {duration:.0f} s (1 subscription, unbatched)",
        ["changes", "delivered", "p50 ms", "p99 ms", "max ms", "MIC CPU %", "changer worst lag ms"],
    )
    lat.add(latency["changes"], latency["delivered"], latency["p50_ms"], latency["p99_ms"], latency["max_ms"],
            latency["mic_cpu_pct"], latency["emulator_worst_lag_ms"])  # fmt: skip
    result.tables.append(lat)
    unbatched = max(r["deliveries_s"] for r in rows if not r["batched"])
    batched_rate = max(r["events_s"] for r in rows if r["batched"])
    result.target(
        "end-to-end unbatched",
        f"{unbatched:,.0f} deliveries/s",
        "≥ 5,000/s",
        unbatched >= 5000,
        "" if unbatched >= 5000 else f"missed by {5000 / max(unbatched, 1e-9):.1f}x",
    )
    result.target(
        "end-to-end batched",
        f"{batched_rate:,.0f} events/s",
        "≥ 50,000/s",
        batched_rate >= 50000,
        "" if batched_rate >= 50000 else f"missed by {50000 / max(batched_rate, 1e-9):.1f}x",
    )
    result.notes += [
        "Rates are deliveries (events x subscriptions) per second from the first to the last MODIFIED "
        "arriving at the recipient; 'events/s' divides by the subscriptions. All subscriptions share "
        "one informer.",
        f"Each throughput case: the median of {1 if quick else ROUNDS} round(s), each with a fresh MIC "
        "process and database (single runs of one case varied by ~15 % on this machine); every "
        "round's rate is in latest.json (`rounds_events_s`).",
        "MIC runs as the service wires it: SQLite store with its default durability (synchronous=FULL, "
        "an fsync per commit), CloudEvents structured, batching maxEvents 100 / maxWaitMs 200 when on.",
        "MIC CPU % is of one core (100 % = one core), over the whole case including start.",
        *(
            [
                "Against a real cluster (MIC_BENCH_KUBECONFIG): subscriptions are limited to namespace "
                f"{NAMESPACE}; the N changes are patches made once MIC is ready, as fast as the server "
                "takes them, which bounds events/s; latency changes are patches at the rate given."
            ]
            if real
            else []
        ),
        "Latency: the cluster's host changes one object at a time at a fixed rate and stamps the time "
        "into an annotation; the recipient subtracts it on arrival."
        + ("" if real else " The emulator drops managedFields on update, so these objects are ~0.8 KB."),
    ]
    return result


class RecipientProcess:
    """`RecipientHost` started lazily (one URL for the whole scenario)."""

    def __init__(self) -> None:
        from bench.hosts import RecipientHost

        self.host = RecipientHost()
        self.url: str | None = None

    async def start_url(self) -> str:
        if self.url is None:
            self.url = await self.host.start()
        return self.url

    async def reset(self, latency: bool = False) -> None:
        await self.host.reset()
        self.host.latency = latency

    async def wait(self, field: str, target: int, timeout: float) -> Any:
        return await self.host.wait(field, target, timeout)

    async def wait_quiet(self, quiet: float, timeout: float) -> Any:
        return await self.host.wait_quiet(quiet, timeout)

    async def stats(self) -> Any:
        return await self.host.stats()

    async def close(self) -> None:
        await self.host.close()

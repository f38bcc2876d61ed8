"""Prometheus metrics of the service, computed when scraped from what the hub reports.

A custom collector rather than gauges updated on every change: the hub already knows the
current numbers, so reading them at scrape time costs nothing on the event path and can
never drift. The only counters kept along the way are the hub's own `events_observed` and the
tokens file watcher's `reload_errors`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from mic.hub import ClusterState, ClusterStatus, Hub
from mic.hub.status import default_reason

if TYPE_CHECKING:
    from mic.delivery.engine import DeliveryEngine
    from mic.service.supervisor import Supervisor
    from mic.service.tokens import TokensFileWatcher


LEASE_HELD_HELP = "Whether this MIC holds the store's delivery lease (1) or waits (0)"
"""The help of `mic_delivery_lease_held`, the same on a standby (`api/routes/health.py`)."""


class ServiceCollector(Collector):
    """Lease held, clusters by state and reason, informer object counts and sync state, events observed,
    the state of the tokens file.

    Label values are only names: of clusters and subscriptions (registered by an admin) and of
    resources (as the clusters serve them), never a query's namespaces or label selector.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        hub: Hub,
        engine: DeliveryEngine | None = None,
        lease_held: Callable[[], bool] | None = None,
        tokens_file: TokensFileWatcher | None = None,
    ) -> None:
        self._supervisor = supervisor
        self._hub = hub
        self._engine = engine
        self._lease_held = lease_held
        self._tokens_file = tokens_file

    def collect(self) -> Iterator[Metric]:
        # A running service exists only once it holds the lease (a standby has none and answers
        # /metrics with 0 on its own), and losing the lease ends the process: without a way to
        # ask the lease itself, being scraped here means holding it.
        held = self._lease_held() if self._lease_held is not None else True
        lease = GaugeMetricFamily("mic_delivery_lease_held", LEASE_HELD_HELP)
        lease.add_metric([], 1 if held else 0)
        yield lease
        statuses = self._supervisor.statuses()
        clusters = GaugeMetricFamily("mic_clusters", "Registered clusters by state", labels=["state"])
        by_state = Counter(status.state for status in statuses)
        for state in ClusterState:
            clusters.add_metric([state.value], by_state.get(state, 0))
        yield clusters
        # Which cluster is in which state: one series per cluster, valued 1 for its state.
        cluster_state = GaugeMetricFamily(
            "mic_cluster_state", "1 for the state each registered cluster is in", labels=["cluster", "state"]
        )
        for status in statuses:
            for state in ClusterState:
                cluster_state.add_metric([status.name, state.value], 1 if status.state is state else 0)
        yield cluster_state
        yield _cluster_reasons(statuses)
        # One series per cluster and resource, summed over the informers that watch it: an
        # informer's scope (namespaces, label selector) may come from a viewer's query, and a
        # label per distinct query would both show it to every scraper and grow without bound.
        objects = GaugeMetricFamily(
            "mic_informer_objects",
            "Objects in the informer caches of a cluster and resource (summed over their scopes)",
            labels=["cluster", "resource"],
        )
        synced = GaugeMetricFamily(
            "mic_informer_synced",
            "1 when every informer of a cluster and resource completed its first list",
            labels=["cluster", "resource"],
        )
        counts: dict[tuple[str, str], int] = {}
        all_synced: dict[tuple[str, str], bool] = {}
        for status in statuses:
            for resource in status.resources:
                key = (status.name, resource.resource)
                counts[key] = counts.get(key, 0) + resource.object_count
                all_synced[key] = all_synced.get(key, True) and resource.synced
        for key, count in sorted(counts.items()):
            objects.add_metric(list(key), count)
            synced.add_metric(list(key), 1 if all_synced[key] else 0)
        yield objects
        yield synced
        events = CounterMetricFamily(
            "mic_events_observed", "Changes observed by informers", labels=["cluster", "resource"]
        )
        for (cluster, resource_name), count in sorted(self._hub.events_observed.items()):
            events.add_metric([cluster, resource_name], count)
        yield events
        if self._engine is not None:
            yield from self._delivery_metrics(self._engine)
        if self._tokens_file is not None:
            yield from self._tokens_file_metrics(self._tokens_file)

    def _tokens_file_metrics(self, watcher: TokensFileWatcher) -> Iterator[Metric]:
        """Whether the tokens file as it is now is in effect: alert on `mic_tokens_file_stale`."""
        errors = CounterMetricFamily(
            "mic_tokens_file_reload_errors",
            "Versions of the tokens file that could not be used (invalid, unreadable or missing)",
        )
        errors.add_metric([], watcher.reload_errors)
        stale = GaugeMetricFamily(
            "mic_tokens_file_stale",
            "1 while the tokens file cannot be used and its last valid version stays in effect",
        )
        stale.add_metric([], 1 if watcher.stale else 0)
        success = GaugeMetricFamily(
            "mic_tokens_file_last_reload_success_timestamp_seconds",
            "When a version of the tokens file last took effect (at start, or reloaded), Unix time",
        )
        success.add_metric([], watcher.last_success)
        yield from (errors, stale, success)

    def _delivery_metrics(self, engine: DeliveryEngine) -> Iterator[Metric]:
        labels = ["subscription"]
        delivered = CounterMetricFamily("mic_deliveries", "Events delivered (2xx)", labels=labels)
        dead = CounterMetricFamily("mic_dead_letters", "Events that became dead letters", labels=labels)
        coalesced = CounterMetricFamily("mic_coalesced", "Events superseded by a newer state", labels=labels)
        failed = CounterMetricFamily(
            "mic_delivery_failed_attempts",
            "Requests to the recipient that failed (retried or not)",
            labels=labels,
        )
        backlog = GaugeMetricFamily(
            "mic_delivery_backlog", "Events stored and not yet delivered", labels=labels
        )
        retrying = GaugeMetricFamily(
            "mic_delivery_retrying", "Backlog events that failed at least once", labels=labels
        )
        dead_now = GaugeMetricFamily("mic_dead_letters_waiting", "Dead letters not replayed", labels=labels)
        oldest = GaugeMetricFamily(
            "mic_delivery_oldest_age_seconds", "Age of the oldest undelivered event", labels=labels
        )
        overflowing = GaugeMetricFamily(
            "mic_delivery_overflowing", "1 while at the backlog limit", labels=labels
        )
        for name in engine.names():
            status = engine.status(name)
            delivered.add_metric([name], status.delivered_total)
            dead.add_metric([name], status.dead_total)
            coalesced.add_metric([name], status.coalesced_total)
            failed.add_metric([name], status.failed_attempts_total)
            backlog.add_metric([name], status.backlog)
            retrying.add_metric([name], status.retrying)
            dead_now.add_metric([name], status.dead)
            oldest.add_metric([name], status.oldest_undelivered_age or 0.0)
            overflowing.add_metric([name], 1 if status.overflowing else 0)
        yield from (delivered, dead, coalesced, failed, backlog, retrying, dead_now, oldest, overflowing)


def _cluster_reasons(statuses: list[ClusterStatus]) -> GaugeMetricFamily:
    """`mic_cluster_reason{cluster,reason}`: one series per cluster, valued 1, for its reason.

    Alerts can tell a certificate that is not trusted from a host that is down
    (`mic_cluster_reason{reason="TLSVerifyFailed"}`). Reasons are a fixed list, so the label stays
    bounded; only the current one is reported (a series per possible reason, as
    `mic_cluster_state` has per state, would be 19 per cluster for a value nobody sums).
    """
    reasons = GaugeMetricFamily(
        "mic_cluster_reason",
        "1 for the reason (ClusterReason) of each registered cluster's state",
        labels=["cluster", "reason"],
    )
    for status in statuses:
        reason = status.reason or default_reason(status.state)
        reasons.add_metric([status.name, reason.value], 1)
    return reasons


def build_registry(
    supervisor: Supervisor,
    hub: Hub,
    engine: DeliveryEngine | None = None,
    *,
    lease_held: Callable[[], bool] | None = None,
    tokens_file: TokensFileWatcher | None = None,
) -> CollectorRegistry:
    """A registry of its own per app, so several apps (tests) never collide in the global one.

    `lease_held` (e.g. `lambda: lease.held`) says whether the delivery lease is still held;
    without it the service reports holding it, as it does while it runs. `tokens_file` adds
    the `mic_tokens_file_*` metrics (a service without a tokens file has none).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(supervisor, hub, engine, lease_held, tokens_file))
    return registry

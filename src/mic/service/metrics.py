"""Prometheus metrics of the service, computed when scraped from what the hub reports.

A custom collector rather than gauges updated on every change: the hub already knows the
current numbers, so reading them at scrape time costs nothing on the event path and can
never drift. The only counter kept along the way is the hub's own `events_observed`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from mic.hub import ClusterState, Hub

if TYPE_CHECKING:
    from mic.service.supervisor import Supervisor


class ServiceCollector(Collector):
    """Clusters by state, informer object counts and sync state, events observed."""

    def __init__(self, supervisor: Supervisor, hub: Hub) -> None:
        self._supervisor = supervisor
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        statuses = self._supervisor.statuses()
        clusters = GaugeMetricFamily("mic_clusters", "Registered clusters by state", labels=["state"])
        by_state = Counter(status.state for status in statuses)
        for state in ClusterState:
            clusters.add_metric([state.value], by_state.get(state, 0))
        yield clusters
        objects = GaugeMetricFamily(
            "mic_informer_objects", "Objects in an informer's cache", labels=["cluster", "resource", "scope"]
        )
        synced = GaugeMetricFamily(
            "mic_informer_synced",
            "1 when an informer completed its first list",
            labels=["cluster", "resource", "scope"],
        )
        for status in statuses:
            for resource in status.resources:
                scope = ",".join(resource.namespaces) if resource.namespaces is not None else "*"
                if resource.label_selector:
                    scope += f";{resource.label_selector}"
                labels = [status.name, resource.resource, scope]
                objects.add_metric(labels, resource.object_count)
                synced.add_metric(labels, 1 if resource.synced else 0)
        yield objects
        yield synced
        events = CounterMetricFamily(
            "mic_events_observed", "Changes observed by informers", labels=["cluster", "resource"]
        )
        for (cluster, resource_name), count in sorted(self._hub.events_observed.items()):
            events.add_metric([cluster, resource_name], count)
        yield events


def build_registry(supervisor: Supervisor, hub: Hub) -> CollectorRegistry:
    """A registry of its own per app, so several apps (tests) never collide in the global one."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(supervisor, hub))
    return registry

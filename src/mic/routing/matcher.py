"""Whether one event goes to one subscription: `SubscriptionMatcher`.

The engine asks every subscription's matcher about every event of every cluster, so `matches`
is the hottest code in delivery. Everything a filter says is turned into ready-made objects at
construction (frozensets, compiled label selectors, parsed field paths, a compiled CEL program)
and the checks run cheapest and most selective first: event type, resource, cluster, namespace,
labels, no-op/fields, and CEL last, because converting an object into CEL values costs
microseconds per field, orders of magnitude more than everything else together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mic.events.event import Event, EventType, KubeObject
from mic.kube.informer import is_tombstone
from mic.kube.selectors import LabelSelector
from mic.routing.changes import changed_fields, changed_paths, is_noop, json_is_noop, parse_field_path
from mic.routing.expression import (
    CompiledExpression,
    ExpressionEvaluationError,
    InvalidExpressionError,
    compile_cel,
)
from mic.routing.spec import SubscriptionSpec

__all__ = [
    "InvalidExpressionError",
    "SubscriptionMatcher",
    "changed_fields",
    "compile_cel",
    "is_noop",
]

_ADDED = EventType.ADDED
_MODIFIED = EventType.MODIFIED
_DELETED = EventType.DELETED


_EVENT_USE = re.compile(r"\bevent\b(?!\s*(?:\.\s*|\[\s*[\"'])(\w+))")
"""`event` not followed by a field name (`event.x`, `event["x"]`): used whole, in ways unknown."""
_EVENT_FIELD = re.compile(r"\bevent\s*(?:\.\s*|\[\s*[\"'])(\w+)")
_CHANGING_EVENT_FIELDS = frozenset({"type", "resourceVersion"})


def _describes_membership(cel: CompiledExpression) -> bool:
    """Whether an expression depends only on the object's current state (and on event fields
    that stay the same for an object's whole life), so it says which objects are followed.

    Variables are known only at the top level, so the text is read: every use of `event` must
    name a field (`event.namespace`, `event["cluster"]`) other than `type` and
    `resourceVersion`. `object.spec.type` is fine; `event` used whole is taken as a change filter.
    """
    if "object" not in cel.variables or "oldObject" in cel.variables:
        return False
    if "event" in cel.variables:
        if _EVENT_USE.search(cel.source):
            return False
        return not any(name in _CHANGING_EVENT_FIELDS for name in _EVENT_FIELD.findall(cel.source))
    return True


def _resources_by_group(qualified_names: frozenset[str]) -> dict[str, frozenset[str]]:
    """`{"ingresses.networking.k8s.io", "pods"}` -> `{"networking.k8s.io": {"ingresses"}, "": {"pods"}}`.

    Two lookups of cached-hash strings cost a third of hashing a (group, resource) tuple.
    """
    by_group: dict[str, set[str]] = {}
    for name in qualified_names:
        resource, _, group = name.partition(".")
        by_group.setdefault(group, set()).add(resource)
    return {group: frozenset(resources) for group, resources in by_group.items()}


def _without_managed_fields(obj: KubeObject) -> KubeObject:
    """A shallow copy of `obj` without `metadata.managedFields`, the object's largest part
    that filters almost never read; CEL conversion cost grows with every field passed."""
    metadata = obj.get("metadata")
    if not metadata or "managedFields" not in metadata:
        return obj
    slim = dict(obj)
    slim["metadata"] = {key: value for key, value in metadata.items() if key != "managedFields"}
    return slim


class SubscriptionMatcher:
    """A subscription's filter, compiled for matching events of the resources it resolved to.

    `resources` are the qualified names (`ingresses.networking.k8s.io`, `pods`) that
    `spec.filter.resources` resolved to; the engine resolves them per cluster through the hub
    and builds a new matcher when that changes, so a matcher never does discovery itself.

    The label selector is pushed down to the API server (the engine watches with it), so a
    DELETED whose object carries no `labels` at all is not re-checked: that is the tombstone
    an informer reports for an object deleted while MIC was down (it knows only the name, uid
    and resourceVersion from the ledger of this selector's scope), and dropping it would lose
    the delete for good.

    CEL failures (a missing field, a type mismatch, a non-bool result) are "no match", never
    an exception out of `matches`: one odd object must not stop delivery for everything else.
    They are counted in `cel_errors` and the latest is described in `last_cel_error`, which
    the subscription's status shows.

    CEL sees `event` (type, cluster, group, version, kind, resource, namespace, name, uid,
    resourceVersion), `object` and `oldObject` (null when unknown). Unless the expression
    mentions `managedFields`, the objects it sees lack `metadata.managedFields`.

    An expression over the object alone (no `oldObject`, no `event.type` or
    `event.resourceVersion`) says which objects the subscription follows, and `route` treats it
    as the API server treats a label selector: an object that starts to match is delivered as
    ADDED, one that stops matching as DELETED (its current state, the last matching one as
    `oldObject`), so a recipient's view never keeps an object that left it. Where MIC cannot
    tell — a MODIFIED whose previous state is unknown (the first list after a restart), or a
    tombstone for an object deleted while MIC was down — it delivers ADDED if the object
    matches now (create-or-update) and DELETED otherwise: a delete of something the recipient
    never had is harmless, a lost one is not.
    Event types are checked on the type delivered. Any other expression filters changes, and a
    change it refuses is not delivered.
    """

    __slots__ = (
        "_cel",
        "_cel_event",
        "_cel_object",
        "_cel_old_object",
        "_cluster_labels_match",
        "_cluster_names",
        "_excluded_namespaces",
        "_fields",
        "_labels_match",
        "_namespaces",
        "_resources_by_group",
        "_strip_managed_fields",
        "_suppress_noop",
        "_transitions",
        "_types",
        "cel_errors",
        "cluster_selector",
        "label_selector",
        "last_cel_error",
        "resources",
        "spec",
    )

    def __init__(self, spec: SubscriptionSpec, resources: frozenset[str]) -> None:
        spec_filter = spec.filter
        self.spec = spec
        self.resources = resources
        self._resources_by_group = _resources_by_group(resources)
        self._types = frozenset(spec_filter.event_types)
        self._cluster_names = frozenset(spec_filter.clusters) if spec_filter.clusters is not None else None
        self.cluster_selector = LabelSelector.parse(spec_filter.cluster_selector)
        self._cluster_labels_match = None if self.cluster_selector.is_empty else self.cluster_selector.matches
        self._namespaces = frozenset(spec_filter.namespaces) if spec_filter.namespaces is not None else None
        self._excluded_namespaces = frozenset(spec_filter.exclude_namespaces)
        self.label_selector = LabelSelector.parse(spec_filter.label_selector)
        """The object label selector, also what the engine pushes down to the API server."""
        self._labels_match = None if self.label_selector.is_empty else self.label_selector.matches
        self._suppress_noop = spec_filter.suppress_noop
        self._fields = tuple(parse_field_path(path) for path in spec_filter.fields)
        self._cel: CompiledExpression | None = compile_cel(spec_filter.cel) if spec_filter.cel else None
        variables = self._cel.variables if self._cel is not None else frozenset()
        self._cel_event = "event" in variables
        self._cel_object = "object" in variables
        self._cel_old_object = "oldObject" in variables
        # An expression that mentions managedFields gets them; every other one is spared
        # converting them (often half of an object's fields).
        self._strip_managed_fields = self._cel is not None and "managedFields" not in self._cel.source
        self._transitions = self._cel is not None and _describes_membership(self._cel)
        """Whether CEL says which objects are followed (see the class docstring)."""
        self.cel_errors = 0
        """How many events the CEL expression failed on (counted as not matching)."""
        self.last_cel_error: str | None = None
        """The latest CEL failure: which object, and what went wrong."""

    def wants_cluster(self, cluster: str, labels: Mapping[str, str]) -> bool:
        """Whether events of this cluster (with these cluster labels) can match at all."""
        names = self._cluster_names
        if names is not None and cluster not in names:
            return False
        labels_match = self._cluster_labels_match
        return labels_match is None or labels_match(labels)

    @property
    def follows_membership(self) -> bool:
        """Whether objects entering or leaving the CEL filter are delivered as ADDED/DELETED."""
        return self._transitions

    def matches(self, event: Event, cluster_labels: Mapping[str, str]) -> bool:
        """Whether `event` (from a cluster with `cluster_labels`) goes to this subscription."""
        return self.route(event, cluster_labels) is not None

    def route(self, event: Event, cluster_labels: Mapping[str, str]) -> EventType | None:
        """The type `event` (from a cluster with `cluster_labels`) is delivered to this
        subscription as — its own, or ADDED/DELETED when the object enters or leaves the CEL
        filter — or None when it is not delivered."""
        event_type: EventType | None = event.type
        transitions = self._transitions
        if not transitions and event_type not in self._types:
            return None
        resources = self._resources_by_group.get(event.group)
        if resources is None or event.resource not in resources:
            return None
        names = self._cluster_names
        if names is not None and event.cluster not in names:
            return None
        cluster_labels_match = self._cluster_labels_match
        if cluster_labels_match is not None and not cluster_labels_match(cluster_labels):
            return None
        namespace = event.namespace
        if namespace:  # cluster-scoped objects have none, and pass both namespace conditions
            if namespace in self._excluded_namespaces:
                return None
            included = self._namespaces
            if included is not None and namespace not in included:
                return None
        labels_match = self._labels_match
        if labels_match is not None:
            metadata = event.object.get("metadata")
            if not labels_match(metadata.get("labels") if metadata else None) and not (
                event_type == _DELETED and not (metadata and "labels" in metadata)
            ):
                return None
        if transitions:
            event_type = self._membership_change(event)
            if event_type is None or event_type not in self._types:
                return None
        if event_type == _MODIFIED and (self._suppress_noop or self._fields) and self._unchanged(event):
            return None
        if not transitions and self._cel is not None and not self._evaluate(event, event.object):
            return None
        return event_type

    def _membership_change(self, event: Event) -> EventType | None:
        """What `event` means to a subscription following the objects its CEL matches."""
        event_type = event.type
        if event_type == _MODIFIED:
            now = self._evaluate(event, event.object)
            if not event.has_old_object:  # unknown before (first list after a restart)
                # The recipient may or may not have it: ADDED reads as create-or-update, while
                # a MODIFIED of an object it never had may well be ignored.
                return _ADDED if now else _DELETED
            old = event.old_object
            assert old is not None
            before = self._evaluate(event, old)
            if now:
                return _MODIFIED if before else _ADDED
            return _DELETED if before else None
        if event_type == _DELETED and is_tombstone(event.object):
            return _DELETED  # deleted while MIC was down: nothing left to evaluate
        return event_type if self._evaluate(event, event.object) else None

    def _unchanged(self, event: Event) -> bool:
        """Whether a MODIFIED is a no-op (with `suppressNoop`) or leaves the watched fields alone."""
        if self._suppress_noop and not self._fields:
            old_json, new_json = event.old_json, event.object_json
            if old_json is not None and new_json is not None:
                verdict = json_is_noop(old_json, new_json)
                if verdict is not None:
                    return verdict  # decided on the bytes: the old state stays undecoded
        old = event.old_object  # decodes an old state kept as JSON: only when compared
        # Without the previous state (e.g. after a restart) MIC only knows that something
        # changed: deliver rather than risk losing a real change.
        if old is None:
            return False
        if self._suppress_noop and is_noop(old, event.object):
            return True
        return bool(self._fields) and not changed_paths(old, event.object, self._fields)

    def _evaluate(self, event: Event, obj: KubeObject) -> bool:
        """Run the CEL expression with `obj` as `object`, converting only the variables it
        references."""
        assert self._cel is not None
        activation: dict[str, Any] = {}
        if self._cel_event:
            activation["event"] = {
                "type": event.type.value if isinstance(event.type, EventType) else event.type,
                "cluster": event.cluster,
                "group": event.group,
                "version": event.version,
                "kind": event.kind,
                "resource": event.resource,
                "namespace": event.namespace,
                "name": event.name,
                "uid": event.uid,
                "resourceVersion": event.resource_version,
            }
        if self._cel_object:
            activation["object"] = _without_managed_fields(obj) if self._strip_managed_fields else obj
        if self._cel_old_object:
            old = event.old_object
            if old is not None and self._strip_managed_fields:
                old = _without_managed_fields(old)
            activation["oldObject"] = old
        try:
            return self._cel(activation)
        except ExpressionEvaluationError as error:
            self.cel_errors += 1
            self.last_cel_error = f"{event.cluster} {event.kind} {event.key}: {error}"
            return False

    def __repr__(self) -> str:
        return f"<SubscriptionMatcher {self.spec.name} resources={sorted(self.resources)}>"

"""The relist diff: what an informer reports when it lists again after a gap or a restart."""

from __future__ import annotations

from typing import Any

from mic.events import Event, EventType
from mic.kube.client import KubeClient
from mic.kube.connection import ClusterConnection
from mic.kube.fingerprint import content_hash
from mic.kube.informer import Informer, KnownObject, Reflector
from mic.kube.resources import ResourceInfo

CONFIGMAPS = ResourceInfo("", "v1", "configmaps", "ConfigMap", namespaced=True)


def cm(name: str, rv: str, uid: str | None = None, ns: str = "default", **data: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "uid": uid or f"uid-{name}", "resourceVersion": rv},
        "data": data,
    }


async def _discard(events: list[Event]) -> None:
    return None


def make_reflector(
    known: dict[str, KnownObject] | None = None, namespaces: list[str] | None = None
) -> Reflector:
    informer = Informer(
        KubeClient(ClusterConnection(server="http://127.0.0.1:1")),
        "c1",
        CONFIGMAPS,
        _discard,
        namespaces=namespaces,
        known=known,
    )
    return informer._reflectors[0]


def summary(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e.type.value, e.key, e.resource_version) for e in events]


def test_first_list_reports_every_object_as_added() -> None:
    reflector = make_reflector()
    events = reflector._sync([cm("a", "1"), cm("b", "2")])
    assert summary(events) == [("ADDED", "default/a", "1"), ("ADDED", "default/b", "2")]
    assert events[0].object["kind"] == "ConfigMap"
    assert events[0].object["apiVersion"] == "v1"


def test_relist_reports_exact_difference() -> None:
    reflector = make_reflector()
    reflector._sync([cm("same", "1"), cm("changed", "2"), cm("deleted", "3"), cm("recreated", "4")])
    reflector._first_list = False
    events = reflector._sync(
        [cm("same", "1"), cm("changed", "9"), cm("recreated", "10", uid="new-uid"), cm("new", "11")]
    )
    assert summary(events) == [
        ("DELETED", "default/recreated", "4"),
        ("DELETED", "default/deleted", "3"),
        ("MODIFIED", "default/changed", "9"),
        ("ADDED", "default/recreated", "10"),
        ("ADDED", "default/new", "11"),
    ]
    modified = events[2]
    assert modified.old_object is not None
    assert modified.old_object["metadata"]["resourceVersion"] == "2"
    cache = reflector.informer.cache
    assert sorted(cache.keys()) == [
        ("default", "changed"),
        ("default", "new"),
        ("default", "recreated"),
        ("default", "same"),
    ]


def test_known_state_reports_only_real_changes_after_restart() -> None:
    unchanged_by_hash = cm("hash-same", "50", k="v")
    known = {
        "uid-same": KnownObject("default", "same", "1"),
        "uid-hash-same": KnownObject(
            "default", "hash-same", "40", content_hash(cm("hash-same", "40", k="v"))
        ),
        "uid-changed": KnownObject("default", "changed", "2", content_hash(cm("changed", "2", k="old"))),
        "uid-gone": KnownObject("default", "gone", "3"),
    }
    reflector = make_reflector(known)
    events = reflector._sync(
        [cm("same", "1"), unchanged_by_hash, cm("changed", "7", k="new"), cm("fresh", "8")]
    )
    assert summary(events) == [
        ("DELETED", "default/gone", "3"),
        ("MODIFIED", "default/changed", "7"),
        ("ADDED", "default/fresh", "8"),
    ]
    tombstone = events[0].object
    assert tombstone["metadata"] == {
        "name": "gone",
        "namespace": "default",
        "uid": "uid-gone",
        "resourceVersion": "3",
    }
    assert events[0].uid == "uid-gone"


def test_known_state_is_split_by_namespace_reflector() -> None:
    known = {
        "uid-a": KnownObject("team-a", "a", "1"),
        "uid-b": KnownObject("team-b", "b", "1"),
    }
    reflector = make_reflector(known, namespaces=["team-a", "team-b"])
    assert reflector.namespace == "team-a"
    events = reflector._sync([])
    assert summary(events) == [("DELETED", "team-a/a", "1")]
    other = reflector.informer._reflectors[1]
    assert summary(other._sync([cm("b", "1", uid="uid-b", ns="team-b")])) == []


async def test_watch_batch_skips_duplicates_and_orders_recreation() -> None:
    seen: list[Event] = []

    async def collect(events: list[Event]) -> None:
        seen.extend(events)

    informer = Informer(KubeClient(ClusterConnection(server="http://127.0.0.1:1")), "c1", CONFIGMAPS, collect)
    reflector = informer._reflectors[0]
    reflector._sync([cm("a", "1")])
    await reflector._apply(
        [
            {"type": "ADDED", "object": cm("a", "1")},  # already known at this version: not news
            {"type": "MODIFIED", "object": cm("a", "2")},
            {"type": "BOOKMARK", "object": {"kind": "ConfigMap", "metadata": {"resourceVersion": "5"}}},
            {"type": "DELETED", "object": cm("a", "6")},
            {"type": "DELETED", "object": cm("never-seen", "7")},
            {"type": "ADDED", "object": cm("a", "8", uid="uid-a2")},
        ]
    )
    assert summary(seen) == [
        ("MODIFIED", "default/a", "2"),
        ("DELETED", "default/a", "6"),
        ("ADDED", "default/a", "8"),
    ]
    assert seen[0].type is EventType.MODIFIED
    assert reflector.resource_version == "8"

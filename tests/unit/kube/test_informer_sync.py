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


def sync(reflector: Reflector, items: list[dict[str, Any]], page_size: int = 2) -> list[Event]:
    """Apply a complete list the way `_list_and_sync` does, in pages; return every change."""
    if reflector._first_list:
        reflector._hold_known_state()
    seen: set[tuple[str, str]] = set()
    events: list[Event] = []
    for start in range(0, len(items), page_size):
        events += reflector._sync_page(items[start : start + page_size], seen)
    events += reflector._deletions(seen)
    reflector._first_list = False
    reflector._pending_known, reflector._known_uid_by_key = {}, {}
    return events


def summary(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e.type.value, e.key, e.resource_version) for e in events]


def test_first_list_reports_every_object_as_added() -> None:
    reflector = make_reflector()
    events = sync(reflector, [cm("a", "1"), cm("b", "2")])
    assert summary(events) == [("ADDED", "default/a", "1"), ("ADDED", "default/b", "2")]
    assert events[0].object["kind"] == "ConfigMap"
    assert events[0].object["apiVersion"] == "v1"


def test_relist_reports_exact_difference() -> None:
    reflector = make_reflector()
    sync(reflector, [cm("same", "1"), cm("changed", "2"), cm("deleted", "3"), cm("recreated", "4")])
    events = sync(
        reflector,
        [cm("same", "1"), cm("changed", "9"), cm("recreated", "10", uid="new-uid"), cm("new", "11")],
    )
    # Changes come page by page, in order per object; deletions once the list is complete.
    assert summary(events) == [
        ("MODIFIED", "default/changed", "9"),
        ("DELETED", "default/recreated", "4"),
        ("ADDED", "default/recreated", "10"),
        ("ADDED", "default/new", "11"),
        ("DELETED", "default/deleted", "3"),
    ]
    modified = events[0]
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
    events = sync(
        reflector, [cm("same", "1"), unchanged_by_hash, cm("changed", "7", k="new"), cm("fresh", "8")]
    )
    assert summary(events) == [
        ("MODIFIED", "default/changed", "7"),
        ("ADDED", "default/fresh", "8"),
        ("DELETED", "default/gone", "3"),
    ]
    tombstone = events[-1].object
    assert tombstone["metadata"] == {
        "name": "gone",
        "namespace": "default",
        "uid": "uid-gone",
        "resourceVersion": "3",
    }
    assert events[-1].uid == "uid-gone"


def test_known_name_taken_by_a_new_object_is_deleted_before_the_new_one_is_added() -> None:
    known = {"uid-old": KnownObject("default", "web", "3"), "uid-other": KnownObject("default", "z", "1")}
    reflector = make_reflector(known)
    events = sync(reflector, [cm("a", "9"), cm("web", "10", uid="uid-new")], page_size=1)
    assert [(e.type.value, e.key, e.uid) for e in events] == [
        ("ADDED", "default/a", "uid-a"),
        ("DELETED", "default/web", "uid-old"),
        ("ADDED", "default/web", "uid-new"),
        ("DELETED", "default/z", "uid-other"),
    ]


def test_a_list_restarted_midway_reports_each_change_once() -> None:
    """Pages applied by a list whose continue token expired stay applied: the next attempt
    reports only what differs from them, and drops what the completed list lacks."""
    known = {"uid-a": KnownObject("default", "a", "1"), "uid-b": KnownObject("default", "b", "1")}
    reflector = make_reflector(known)
    reflector._hold_known_state()
    first_attempt = reflector._sync_page([cm("a", "2"), cm("b", "1")], set())
    assert summary(first_attempt) == [("MODIFIED", "default/a", "2")]
    events = sync(reflector, [cm("a", "2"), cm("c", "5")])
    assert summary(events) == [("ADDED", "default/c", "5"), ("DELETED", "default/b", "1")]


def test_known_state_is_split_by_namespace_reflector() -> None:
    known = {
        "uid-a": KnownObject("team-a", "a", "1"),
        "uid-b": KnownObject("team-b", "b", "1"),
    }
    reflector = make_reflector(known, namespaces=["team-a", "team-b"])
    assert reflector.namespace == "team-a"
    events = sync(reflector, [])
    assert summary(events) == [("DELETED", "team-a/a", "1")]
    other = reflector.informer._reflectors[1]
    assert summary(sync(other, [cm("b", "1", uid="uid-b", ns="team-b")])) == []


async def test_watch_batch_skips_duplicates_and_orders_recreation() -> None:
    seen: list[Event] = []

    async def collect(events: list[Event]) -> None:
        seen.extend(events)

    informer = Informer(KubeClient(ClusterConnection(server="http://127.0.0.1:1")), "c1", CONFIGMAPS, collect)
    reflector = informer._reflectors[0]
    sync(reflector, [cm("a", "1")])
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

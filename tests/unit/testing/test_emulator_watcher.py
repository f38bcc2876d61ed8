"""Watcher.line_for: what one watch sends for each change, selectors included."""

from typing import Any

import orjson

from mic.testing.emulator.selectors import FieldSelector, parse_label_selector
from mic.testing.emulator.state import ClusterState
from mic.testing.emulator.watch import Watcher


def make_watcher(state: ClusterState, selector: str = "", namespace: str | None = None) -> Watcher:
    return Watcher(
        state.type_for("configmaps"),
        "v1",
        namespace,
        parse_label_selector(selector),
        FieldSelector(),
        bookmarks=False,
        bookmark_interval=1.0,
        timeout=None,
        max_buffer=3,
        current_rv=lambda: state.rv,
    )


def events(watcher: Watcher) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for line in watcher.buffer:
        event = orjson.loads(line)
        obj = event["object"]
        out.append((event["type"], obj["metadata"]["resourceVersion"], obj["metadata"].get("labels", {})))
    return out


def test_selector_enter_and_leave_become_added_and_deleted() -> None:
    state = ClusterState()
    watcher = make_watcher(state, "app=web")
    rt = watcher.rt
    state.subscribe(rt.key, watcher)
    obj = state.create(rt, {"metadata": {"name": "a", "namespace": "default", "labels": {"app": "db"}}})
    entered = state.update(
        rt, {**obj, "metadata": {**obj["metadata"], "labels": {"app": "web"}, "resourceVersion": ""}}
    )
    modified = state.update(rt, {**entered, "data": {"k": "v"}})
    left = state.update(rt, {**modified, "metadata": {**modified["metadata"], "labels": {"app": "db"}}})
    assert events(watcher) == [
        ("ADDED", entered["metadata"]["resourceVersion"], {"app": "web"}),
        ("MODIFIED", modified["metadata"]["resourceVersion"], {"app": "web"}),
        # the previous (matching) state, at the resourceVersion of the change that removed it
        ("DELETED", left["metadata"]["resourceVersion"], {"app": "web"}),
    ]


def test_namespace_filter_and_overflow_closes_the_watch() -> None:
    state = ClusterState()
    state.create(state.type_for("namespaces"), {"metadata": {"name": "other"}})
    watcher = make_watcher(state, namespace="default")
    state.subscribe(watcher.rt.key, watcher)
    state.create(watcher.rt, {"metadata": {"name": "x", "namespace": "other"}})
    assert watcher.buffer == []
    for i in range(4):
        state.create(watcher.rt, {"metadata": {"name": f"c{i}", "namespace": "default"}})
    assert watcher.overflowed
    assert watcher.state == "ended"
    assert watcher.buffer == []


def test_unfiltered_watchers_share_one_encoding() -> None:
    state = ClusterState()
    w1, w2 = make_watcher(state), make_watcher(state)
    for w in (w1, w2):
        state.subscribe(w.rt.key, w)
    state.create(w1.rt, {"metadata": {"name": "a", "namespace": "default"}})
    assert w1.buffer[0] is w2.buffer[0]

"""ClusterState: resourceVersions, history, paging and watch fan-out without HTTP."""

from typing import Any

import pytest

from mic.testing.emulator.errors import StatusError
from mic.testing.emulator.selectors import parse_label_selector
from mic.testing.emulator.state import Change, ClusterState, decode_continue


def cm(name: str, ns: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
    }


class Recorder:
    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.closed: str | None = None

    def offer(self, change: Change) -> None:
        self.changes.append(change)

    def close(self, how: str) -> None:
        self.closed = how


@pytest.fixture
def state() -> ClusterState:
    return ClusterState(history_size=50)


def test_one_global_counter_for_all_resources(state: ClusterState) -> None:
    start = state.rv
    a = state.create(state.type_for("configmaps"), cm("a"))
    s = state.create(state.type_for("secrets"), {"metadata": {"name": "s", "namespace": "default"}})
    assert int(a["metadata"]["resourceVersion"]) == start + 1
    assert int(s["metadata"]["resourceVersion"]) == start + 2
    assert a["metadata"]["generation"] == 1
    assert a["metadata"]["uid"]
    assert a["metadata"]["creationTimestamp"]
    assert list(a)[:2] == ["kind", "apiVersion"]


def test_create_conflicts_and_missing_namespace(state: ClusterState) -> None:
    rt = state.type_for("configmaps")
    state.create(rt, cm("a"))
    with pytest.raises(StatusError) as info:
        state.create(rt, cm("a"))
    assert (info.value.code, info.value.reason) == (409, "AlreadyExists")
    with pytest.raises(StatusError) as info:
        state.create(rt, cm("a", ns="nope"))
    assert (info.value.code, info.value.message) == (404, 'namespaces "nope" not found')


def test_generate_name(state: ClusterState) -> None:
    obj = state.create(
        state.type_for("configmaps"), {"metadata": {"generateName": "x-", "namespace": "default"}}
    )
    assert obj["metadata"]["name"].startswith("x-")
    assert len(obj["metadata"]["name"]) == 7


def test_update_conflict_generation_and_noop(state: ClusterState) -> None:
    rt = state.type_for("configmaps")
    first = state.create(rt, cm("a"))
    changed = state.update(rt, {**first, "data": {"k": "v"}})
    assert changed["metadata"]["generation"] == 2
    with pytest.raises(StatusError) as info:
        state.update(rt, {**first, "data": {"k": "w"}})
    assert (info.value.code, info.value.reason) == (409, "Conflict")
    rv = state.rv
    same = state.update(rt, changed)
    assert same["metadata"]["resourceVersion"] == changed["metadata"]["resourceVersion"]
    assert state.rv == rv, "a no-op update must not consume a resourceVersion"
    relabelled = state.update(rt, {**changed, "metadata": {**changed["metadata"], "labels": {"x": "y"}}})
    assert relabelled["metadata"]["generation"] == 2, "metadata changes do not bump generation"


def test_status_subresource_separates_spec_and_status(state: ClusterState) -> None:
    rt = state.type_for("ingresses.networking.k8s.io")
    ing = state.create(rt, {"metadata": {"name": "i", "namespace": "default"}, "spec": {"rules": []}})
    with_status = state.update(rt, {**ing, "status": {"loadBalancer": {}}}, subresource="status")
    assert with_status["status"] == {"loadBalancer": {}}
    assert with_status["metadata"]["generation"] == 1
    ignored = state.update(rt, {**with_status, "status": {"x": 1}, "spec": {"rules": [{}]}})
    assert ignored["status"] == {"loadBalancer": {}}
    assert ignored["metadata"]["generation"] == 2


def test_finalizers_hold_deletion_until_removed(state: ClusterState) -> None:
    rt = state.type_for("configmaps")
    rec = Recorder()
    state.subscribe(rt.key, rec)
    obj = state.create(
        rt, {**cm("a"), "metadata": {"name": "a", "namespace": "default", "finalizers": ["x/y"]}}
    )
    marked, deleted = state.delete(rt, "default", "a")
    assert not deleted
    assert marked["metadata"]["deletionTimestamp"]
    released = state.update(rt, {**marked, "metadata": {**marked["metadata"], "finalizers": []}})
    assert state.find(rt, "default", "a") is None
    assert [c.type for c in rec.changes] == ["ADDED", "MODIFIED", "DELETED"]
    assert rec.changes[-1].obj["metadata"]["resourceVersion"] == released["metadata"]["resourceVersion"]
    assert obj["metadata"]["uid"] == released["metadata"]["uid"]


def test_namespace_deletion_deletes_contents(state: ClusterState) -> None:
    ns_rt, rt = state.type_for("namespaces"), state.type_for("configmaps")
    state.create(ns_rt, {"metadata": {"name": "team"}})
    state.create(rt, cm("a", ns="team"))
    state.create(rt, cm("b"))
    state.delete(ns_rt, "", "team")
    assert [o["metadata"]["name"] for o in state.objects(rt)] == ["b"]


def test_paging_is_consistent_at_first_page_version(state: ClusterState) -> None:
    rt = state.type_for("configmaps")
    for i in range(5):
        state.create(rt, cm(f"c{i}"))
    page1 = state.list(rt, "default", limit=2)
    assert [o["metadata"]["name"] for o in page1.items] == ["c0", "c1"]
    assert page1.remaining == 3
    assert page1.continue_token
    state.delete(rt, "default", "c2")
    state.create(rt, cm("c9"))
    state.update(rt, {**state.get(rt, "default", "c3"), "data": {"new": "1"}})
    page2 = state.list(rt, "default", limit=2, continue_token=page1.continue_token)
    page3 = state.list(rt, "default", limit=2, continue_token=page2.continue_token)
    assert [o["metadata"]["name"] for o in page2.items + page3.items] == ["c2", "c3", "c4"]
    assert "data" not in page2.items[1], "c3 must be seen as it was at the first page's version"
    assert page2.resource_version == page3.resource_version == page1.resource_version
    assert page3.continue_token is None
    assert decode_continue(page1.continue_token)[0] == page1.resource_version


def test_paging_with_selector_has_no_remaining_count(state: ClusterState) -> None:
    rt = state.type_for("configmaps")
    for i in range(4):
        state.create(rt, cm(f"c{i}", app="a" if i % 2 else "b"))
    page = state.list(rt, None, parse_label_selector("app=a"), limit=1)
    assert [o["metadata"]["name"] for o in page.items] == ["c1"]
    assert page.remaining is None
    assert page.continue_token


def test_continue_expires_after_compaction(state: ClusterState) -> None:
    rt = state.type_for("configmaps")
    for i in range(3):
        state.create(rt, cm(f"c{i}"))
    page = state.list(rt, "default", limit=1)
    state.create(rt, cm("late"))
    state.compact()
    with pytest.raises(StatusError) as info:
        state.list(rt, "default", limit=1, continue_token=page.continue_token)
    assert (info.value.code, info.value.reason) == (410, "Expired")


def test_bad_continue_token_is_400(state: ClusterState) -> None:
    with pytest.raises(StatusError) as info:
        state.list(state.type_for("configmaps"), continue_token="!!notatoken")
    assert info.value.code == 400


def test_history_is_bounded_and_global(state: ClusterState) -> None:
    rt, secrets = state.type_for("configmaps"), state.type_for("secrets")
    state.create(rt, cm("a"))
    rv_after_a = state.rv
    for i in range(60):
        state.create(secrets, {"metadata": {"name": f"s{i}", "namespace": "default"}})
    with pytest.raises(StatusError) as info:
        state.changes_since(rt.key, rv_after_a)
    assert info.value.message == f"too old resource version: {rv_after_a} ({state.floor})"
    assert state.changes_since(rt.key, state.rv - 10) == []
    assert len(state.changes_since(secrets.key, state.rv - 10)) == 10


def test_exact_list_rebuilds_the_past(state: ClusterState) -> None:
    rt = state.type_for("configmaps")
    state.create(rt, cm("a"))
    then = state.rv
    state.delete(rt, "default", "a")
    state.create(rt, cm("b"))
    past = state.list(rt, resource_version=then)
    assert [o["metadata"]["name"] for o in past.items] == ["a"]
    with pytest.raises(StatusError) as info:
        state.list(rt, resource_version=state.rv + 5)
    assert info.value.code == 504


def test_crd_registers_and_unregisters_type(state: ClusterState) -> None:
    crds = state.type_for("customresourcedefinitions.apiextensions.k8s.io")
    crd = {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
    }
    created = state.create(crds, crd)
    assert {c["type"]: c["status"] for c in created["status"]["conditions"]}["Established"] == "True"
    rt = state.type_for("wd")
    assert rt.key == "widgets.example.com"
    assert not rt.builtin
    rec = Recorder()
    state.subscribe(rt.key, rec)
    state.create(
        rt,
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}},
    )
    state.delete(crds, "", "widgets.example.com")
    assert [c.type for c in rec.changes] == ["ADDED", "DELETED"]
    assert rec.closed == "ended"
    assert state.registry.resolve("widgets.example.com") is None


def test_invalid_crd_is_422(state: ClusterState) -> None:
    crds = state.type_for("customresourcedefinitions.apiextensions.k8s.io")
    with pytest.raises(StatusError) as info:
        state.create(crds, {"metadata": {"name": "bad"}, "spec": {"group": "g.io", "names": {}}})
    assert (info.value.code, info.value.reason) == (422, "Invalid")


def test_namespace_range_with_lookalike_names(state: ClusterState) -> None:
    rt, ns_rt = state.type_for("configmaps"), state.type_for("namespaces")
    for ns in ("a", "a-b", "a.b", "a0", "b"):
        state.create(ns_rt, {"metadata": {"name": ns}})
        state.create(rt, cm("x", ns=ns))
        state.create(rt, cm("y", ns=ns))
    page = state.list(rt, "a", limit=1)
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in page.items] == [("a", "x")]
    assert page.remaining == 1
    rest = state.list(rt, "a", limit=5, continue_token=page.continue_token)
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in rest.items] == [("a", "y")]
    everything = state.list(rt)
    assert len(everything.items) == 10


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("ingresses", "ingresses.networking.k8s.io"),
        ("ing", "ingresses.networking.k8s.io"),
        ("Ingress", "ingresses.networking.k8s.io"),
        ("ingresses.networking.k8s.io", "ingresses.networking.k8s.io"),
        ("endpointslices", "endpointslices.discovery.k8s.io"),
        ("pods", "pods"),
        ("po", "pods"),
    ],
)
def test_resource_names_resolve_as_kubectl_resolves_them(name: str, key: str) -> None:
    assert ClusterState(10).type_for(name).key == key

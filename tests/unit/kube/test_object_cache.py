"""The informer cache in both of its forms: shared dicts, and compact JSON bytes."""

from __future__ import annotations

import tracemalloc
from typing import Any

import orjson
import pytest

from mic.kube.cache import CompactObjectCache, ObjectCache
from mic.kube.selectors import LabelSelector


def cm(name: str, ns: str = "default", rv: str = "1", **labels: str) -> dict[str, Any]:
    return {
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": rv, "labels": labels},
        "data": {"k": "v" * 100},
    }


@pytest.fixture(params=[ObjectCache, CompactObjectCache])
def cache(request: pytest.FixtureRequest) -> ObjectCache:
    made: ObjectCache = request.param()
    return made


def test_put_get_replace_remove(cache: ObjectCache) -> None:
    assert cache.put(("default", "a"), cm("a", rv="1")) is None
    replaced = cache.put(("default", "a"), cm("a", rv="2"))
    assert replaced == cm("a", rv="1")
    assert cache.get("default", "a") == cm("a", rv="2")
    assert cache.get_by_key(("default", "missing")) is None
    assert ("default", "a") in cache
    assert len(cache) == 1
    assert cache.remove(("default", "a")) == cm("a", rv="2")
    assert cache.remove(("default", "a")) is None
    assert len(cache) == 0
    assert cache.list() == []


def test_list_by_namespace_and_selector_sorted(cache: ObjectCache) -> None:
    cache.put(("b", "x"), cm("x", ns="b", team="red"))
    cache.put(("a", "z"), cm("z", ns="a", team="blue"))
    cache.put(("a", "y"), cm("y", ns="a", team="red"))
    assert [o["metadata"]["name"] for o in cache.list()] == ["y", "z", "x"]
    assert [o["metadata"]["name"] for o in cache.list("a")] == ["y", "z"]
    assert [o["metadata"]["name"] for o in cache.list(None, LabelSelector.parse("team=red"))] == ["y", "x"]
    assert cache.list("nowhere") == []
    assert [key for key, _ in cache.items()] == [("b", "x"), ("a", "z"), ("a", "y")]
    cache.clear()
    assert cache.keys() == []


def test_compact_cache_returns_fresh_copies() -> None:
    cache = CompactObjectCache()
    original = cm("a")
    cache.put(("default", "a"), original)
    original["data"]["k"] = "changed by the caller after put"
    got = cache.get("default", "a")
    assert got is not None
    assert got["data"]["k"] == "v" * 100
    got["data"]["k"] = "changed by a reader"
    assert cache.get("default", "a") == cm("a")


def test_compact_cache_holds_about_the_json_size() -> None:
    """orjson hands back a buffer of 4 KB or more; the cache must keep only the JSON itself."""
    objects = [cm(f"n{i}") for i in range(2_000)]
    json_size = sum(len(orjson.dumps(o)) for o in objects)
    cache = CompactObjectCache()
    tracemalloc.start()
    try:
        for obj in objects:
            cache.put(("default", obj["metadata"]["name"]), obj)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # JSON bytes plus dict entries and keys: well under twice the JSON (a 4 KB buffer each
    # would be over 10x).
    assert held < 2 * json_size, (held, json_size)

import pytest

from mic.kube.patch import merge_patch
from mic.testing.emulator.errors import StatusError, injected
from mic.testing.emulator.patch import json_patch


def test_merge_patch_follows_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "l": [3], "n": {"x": None, "y": 1}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "l": [3], "n": {"y": 1}}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}, "target must not change"


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": 1}
    ops = [
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "replace", "path": "/c", "value": 2},
        {"op": "copy", "from": "/c", "path": "/d"},
        {"op": "move", "from": "/d", "path": "/e"},
        {"op": "remove", "path": "/a/b/0"},
        {"op": "test", "path": "/e", "value": 2},
        {"op": "add", "path": "/x~1y", "value": True},
    ]
    assert json_patch(doc, ops) == {"a": {"b": [2, 3]}, "c": 2, "e": 2, "x/y": True}
    assert doc == {"a": {"b": [1, 2]}, "c": 1}


def test_json_patch_failures_are_422() -> None:
    with pytest.raises(StatusError) as info:
        json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    assert info.value.code == 422
    with pytest.raises(StatusError) as info:
        json_patch({"a": 1}, [{"op": "remove", "path": "/b"}])
    assert info.value.code == 422


def test_injected_failures_use_kube_reasons() -> None:
    assert injected(429, 2.4).reason == "TooManyRequests"
    assert injected(429, 2.4).headers == {"Retry-After": "2"}
    assert injected(503, None).reason == "ServiceUnavailable"
    assert injected(401, None).body["reason"] == "Unauthorized"
    assert injected(418, None).reason == "BadRequest"
    assert injected(599, None).reason == "InternalError"

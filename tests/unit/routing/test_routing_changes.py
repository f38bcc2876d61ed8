"""The pieces under the matcher: no-op detection, field paths, compiling CEL."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from mic.routing import (
    ExpressionEvaluationError,
    InvalidExpressionError,
    InvalidFieldPathError,
    changed_fields,
    compile_cel,
    is_noop,
    parse_field_path,
)
from mic.routing.changes import json_is_noop


def obj(**metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "shop", "resourceVersion": "1", **metadata},
        "data": {"a": "1"},
    }


NOOP_CASES = pytest.mark.parametrize(
    ("old", "new", "noop"),
    [
        (obj(), obj(), True),
        (obj(), obj(resourceVersion="2"), True),
        (obj(), obj(resourceVersion="2", managedFields=[{"manager": "x"}]), True),
        (obj(managedFields=[{"manager": "x"}]), obj(), True),
        (obj(), obj(generation=2), False),
        (obj(), obj(labels={"a": "b"}), False),
        (obj(), {**obj(), "data": {"a": "2"}}, False),
        (obj(), {**obj(), "binaryData": {}}, False),
        ({**obj(), "metadata": None}, {**obj(), "metadata": None}, True),
        (obj(labels={"a": "b"}), obj(resourceVersion="2"), False),
        (obj(finalizers=["x"]), obj(annotations={}), False),
        ({**obj(), "data": None}, {**obj(), "binaryData": None}, False),
    ],
    ids=[
        "identical",
        "resourceVersion",
        "managedFields-added",
        "managedFields-removed",
        "generation",
        "labels",
        "data",
        "new-top-level-key",
        "no-metadata",
        "labels-removed",
        "metadata-key-swapped",
        "top-level-key-swapped",
    ],
)


@NOOP_CASES
def test_is_noop(old: dict[str, Any], new: dict[str, Any], noop: bool) -> None:
    assert is_noop(old, new) is noop


@NOOP_CASES
def test_json_is_noop_agrees_with_is_noop_or_abstains(
    old: dict[str, Any], new: dict[str, Any], noop: bool
) -> None:
    verdict = json_is_noop(orjson.dumps(old), orjson.dumps(new))
    assert verdict is None or verdict is noop


def test_json_is_noop_decides_the_common_cases_on_the_bytes() -> None:
    def verdict(old: dict[str, Any], new: dict[str, Any]) -> bool | None:
        return json_is_noop(orjson.dumps(old), orjson.dumps(new))

    assert verdict(obj(), obj(resourceVersion="12345")) is True
    assert verdict(obj(), obj(resourceVersion="2", labels={"a": "b"})) is False
    assert verdict(obj(), {**obj(resourceVersion="2"), "data": {"a": "2"}}) is False
    assert verdict({"data": {"a": "1"}}, {"data": {"a": "1"}}) is True  # no resourceVersion at all
    assert verdict(obj(), obj(managedFields=[{"manager": "x"}])) is None  # bytes cannot ignore them
    assert verdict(obj(), {"data": {"a": "1"}}) is None  # one side has no resourceVersion


def test_json_is_noop_abstains_when_an_object_holds_a_second_resource_version() -> None:
    # An Endpoints' targetRef carries the target's resourceVersion: cutting that one instead
    # of metadata's would hide a change of the reference.
    def endpoints(ref_rv: str, rv: str) -> dict[str, Any]:
        return {"subsets": [{"targetRef": {"resourceVersion": ref_rv}}], "metadata": {"resourceVersion": rv}}

    assert is_noop(endpoints("5", "1"), endpoints("6", "1")) is False
    assert json_is_noop(orjson.dumps(endpoints("5", "1")), orjson.dumps(endpoints("6", "1"))) is None
    assert json_is_noop(orjson.dumps(endpoints("5", "1")), orjson.dumps(endpoints("5", "2"))) is None


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("spec", ("spec",)),
        ("spec.rules", ("spec", "rules")),
        (
            r"metadata.annotations.kubernetes\.io/ingress\.class",
            ("metadata", "annotations", "kubernetes.io/ingress.class"),
        ),
        (r"a.b\\c", ("a", "b\\c")),
        ("spec.rules.0.host", ("spec", "rules", "0", "host")),
    ],
)
def test_parse_field_path(path: str, segments: tuple[str, ...]) -> None:
    assert parse_field_path(path) == segments


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("", "single dots"),
        (".spec", "single dots"),
        ("spec.", "single dots"),
        ("spec..rules", "single dots"),
        (r"spec\x", "not an escape"),
        ("spec\\", "unfinished escape"),
    ],
)
def test_invalid_field_paths(path: str, words: str) -> None:
    with pytest.raises(InvalidFieldPathError, match=words):
        parse_field_path(path)


def test_changed_fields() -> None:
    old = {"spec": {"rules": [{"host": "a"}]}, "metadata": {"labels": {"x": "1"}}}
    new = {"spec": {"rules": [{"host": "b"}]}, "metadata": {"labels": {"x": "1"}}}
    assert changed_fields(old, new, ["spec.rules"])
    assert changed_fields(old, new, ["spec.rules.0.host"])
    assert not changed_fields(old, new, ["metadata.labels"])
    assert not changed_fields(old, new, ["spec.rules.1.host"])  # missing in both
    assert not changed_fields(old, new, ["spec.rules.host"])  # not an index: missing in both
    assert not changed_fields(old, new, [])
    assert changed_fields(old, {**new, "status": {}}, ["status"])


def test_compile_cel_evaluates_to_bool() -> None:
    expression = compile_cel("object.metadata.name == 'cfg' && oldObject == null")
    assert expression.variables == {"object", "oldObject"}
    assert expression({"object": obj(), "oldObject": None}) is True
    assert expression({"object": obj(name="other"), "oldObject": None}) is False


def test_compile_cel_reports_variables_only_it_uses() -> None:
    assert compile_cel("event.type == 'ADDED'").variables == {"event"}
    assert compile_cel("[1, 2].exists(x, x > 1)").variables == frozenset()


@pytest.mark.parametrize(
    ("expression", "activation", "words"),
    [
        ("object.spec.missing == 1", {"object": {"spec": {}}}, "missing"),
        ("object.metadata.name", {"object": obj()}, "returned str 'cfg', not a bool"),
        ("object.metadata.name + 1 == 'x'", {"object": obj()}, "TypeError"),
        ("null", {}, "returned NoneType"),
    ],
)
def test_evaluation_failures_raise_one_error_type(
    expression: str, activation: dict[str, Any], words: str
) -> None:
    with pytest.raises(ExpressionEvaluationError, match=words):
        compile_cel(expression)(activation)


@pytest.mark.parametrize(
    ("expression", "words", "line", "column"),
    [
        ("object.metadata.name ==", "syntax error", 1, 24),
        ("object.spec.rules.exists(r,\n  r.host == ", "syntax error", 2, 13),
        ("'unterminated", "syntax error", 1, 1),
        ("   ", "empty", None, None),
        ("obj.metadata.name == 'x'", "unknown variable 'obj'", None, None),
        ("event.type == 'ADDED' && evnt.kind == 'Pod'", "unknown variable 'evnt'", None, None),
    ],
)
def test_invalid_expressions_say_where(
    expression: str, words: str, line: int | None, column: int | None
) -> None:
    with pytest.raises(InvalidExpressionError, match=words) as caught:
        compile_cel(expression)
    assert (caught.value.line, caught.value.column) == (line, column)
    if line is not None:
        assert f"at line {line}, column {column}" in str(caught.value)


@pytest.mark.parametrize(
    "expression",
    [
        "object.spec.rules.all(rule, has(rule.host))",
        "object.metadata.labels.exists(k, k.startsWith('app'))",
        "object.data.map(k, k != '', k).size() >= 0",
        "object.spec.rules.map(r, true, r.host).size() >= 0",
        "type(object) == map",
        "object.spec.rules.filter(r, r.host != '').size() > 0",
    ],
)
def test_comprehension_variables_and_type_names_are_not_unknown(expression: str) -> None:
    compile_cel(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "object.metadata.labels.all(k, v, v != '')",
        "object.metadata.labels.exists(k, v, k == 'app')",
        "object.spec.rules.transformList(i, r, r.host).size() > 0",
    ],
)
def test_two_variable_comprehensions_are_refused_when_written(expression: str) -> None:
    """The binding evaluates only the one-variable forms: these would fail on every event."""
    with pytest.raises(InvalidExpressionError, match="two-variable comprehensions"):
        compile_cel(expression)


@pytest.mark.parametrize(
    ("expression", "name", "expected"),
    [
        ("object.metadata.name.lowerAscii() == 'web-1'", "WEB-1", True),
        ("object.metadata.name.split('-')[0] == 'web'", "web-1", True),
        ("object.metadata.name.substring(0, 3) == 'api'", "web-1", False),
        ("object.metadata.name.contains('eb')", "web-1", True),
        ("math.greatest([1, size(object.metadata.name)]) == 5", "web-1", True),
    ],
)
def test_the_extension_functions_kubernetes_users_know_evaluate(
    expression: str, name: str, expected: bool
) -> None:
    compiled = compile_cel(expression)
    for _ in range(2):  # the reused context gives the same answer each time
        assert compiled({"object": {"metadata": {"name": name}}}) is expected


def test_an_overlong_expression_is_refused_before_the_binding_sees_it() -> None:
    expression = "1 == 1" + " && 1 == 1" * 500
    with pytest.raises(InvalidExpressionError, match="longer than 4096 characters"):
        compile_cel(expression)

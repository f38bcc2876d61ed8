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


@pytest.mark.parametrize(
    ("expression", "returns"),
    [("1 + 1", "an int"), ("null", "null"), ("'yes'", "a string"), ("has(object.spec) ? 1 : 2", "an int")],
)
def test_an_expression_that_is_not_true_or_false_is_refused_when_written(
    expression: str, returns: str
) -> None:
    """It would match nothing, silently; what shows only on some objects is caught per event."""
    with pytest.raises(
        InvalidExpressionError, match=f"must return true or false, but this one returns {returns};"
    ):
        compile_cel(expression)


def test_compile_cel_reports_variables_only_it_uses() -> None:
    assert compile_cel("event.type == 'ADDED'").variables == {"event"}
    assert compile_cel("[1, 2].exists(x, x > 1)").variables == frozenset()


@pytest.mark.parametrize(
    ("expression", "activation", "words"),
    [
        ("object.spec.missing == 1", {"object": {"spec": {}}}, "missing"),
        ("object.data.a", {"object": obj()}, "returned str '1', not a bool"),  # no data.a when written
        ("object.metadata.name + 1 == 'x'", {"object": obj()}, "TypeError"),
        ("object.metadata.name == 'cfg' ? null : true", {"object": obj()}, "returned NoneType"),
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


TEN = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"
LABELS = "object.metadata.labels"


def nested(depth: int, over: str = TEN) -> str:
    """`depth` comprehensions, each inside the previous one's body."""
    body = "true"
    for name in reversed("abcdefgh"[:depth]):
        body = f"{over}.all({name}, {body})"
    return body


@pytest.mark.parametrize(
    ("expression", "deep", "third"),
    [
        (nested(3), "3 deep (all → all → all)", "all(c,"),
        (nested(6), "3 deep (all → all → all)", "all(c,"),
        (
            f"{LABELS}.all(a, {LABELS}.exists(b, {LABELS}.filter(c, c != a).size() > 0))",
            "3 deep",
            "filter(c,",
        ),
        (
            f"{TEN}.exists(a, {TEN}.map(b, {TEN}.all(c, c > b)).size() > a)",
            "3 deep (exists → map → all)",
            "all(c,",
        ),
    ],
)
def test_comprehensions_nested_too_deep_are_refused_when_written(
    expression: str, deep: str, third: str
) -> None:
    """Each level multiplies the work per event: six over ten items took 0.7 s, holding the GIL."""
    with pytest.raises(InvalidExpressionError, match="at most 2 levels are allowed") as caught:
        compile_cel(expression)
    assert f"comprehensions nested {deep}" in caught.value.problem
    assert "in a comprehension of its own, joined with && or ||" in caught.value.problem
    assert (caught.value.line, caught.value.column) == (1, expression.index(third) + 1)


def test_the_position_of_a_too_deep_comprehension_counts_lines() -> None:
    with pytest.raises(InvalidExpressionError, match="nested 3 deep") as caught:
        compile_cel(f"{LABELS}.all(a,\n  {LABELS}.all(b,\n    {LABELS}.exists(c, c == a)))")
    assert (caught.value.line, caught.value.column) == (3, 28)


INGRESS: dict[str, Any] = {
    "metadata": {"name": "web", "labels": {"app": "web", "tier": "web", "team": "shop"}},
    "spec": {"rules": [{"http": {"paths": [{"path": "/"}, {"path": "/shop"}]}}, {"http": {"paths": []}}]},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (nested(2), True),
        (f"{TEN}.all(a, {TEN}.exists(b, b == a))", True),
        (f"{TEN}.all(a, {TEN}.exists(b, b == a + 10))", False),
        (f"{LABELS}.exists(a, {LABELS}.exists(b, a != b && {LABELS}[a] == {LABELS}[b]))", True),
        (f"{LABELS}.exists(a, {LABELS}.exists(b, a != b && {LABELS}[a] + {LABELS}[b] == 'shopshop'))", False),
        ("object.spec.rules.all(r, r.http.paths.all(p, p.path.startsWith('/')))", True),
        ("object.spec.rules.exists(r, r.http.paths.exists(p, p.path == '/shop'))", True),
        ("object.spec.rules.exists(r, r.http.paths.exists(p, p.path == '/none'))", False),
    ],
)
def test_two_nested_comprehensions_compile_and_evaluate(expression: str, expected: bool) -> None:
    compiled = compile_cel(expression)
    assert compiled({"object": INGRESS}) is expected


@pytest.mark.parametrize(
    "expression",
    [
        # Side by side, several times, and inside one outer comprehension: none is in another's body.
        f"{nested(2)} && {nested(2)} && {nested(2)}",
        f"{TEN}.exists(a, {TEN}.all(b, b > 0) && {TEN}.exists(c, c == a) || {TEN}.all(d, d < 11))",
        # Chained: a comprehension's receiver is evaluated once, not per element.
        f"{TEN}.filter(a, {TEN}.exists(b, b == a)).map(c, {TEN}.all(d, d > 0)).all(e, {nested(1)})",
        f"{TEN}.map(a, a * 2).filter(b, b > 4).all(c, {TEN}.exists(d, d * 2 == c))",
    ],
)
def test_siblings_and_chains_do_not_count_as_nesting(expression: str) -> None:
    assert compile_cel(expression)({}) is True


@pytest.mark.parametrize(
    "expression",
    [
        f"object.metadata.name != '.all(x, .all(y, .all(z, ' && {nested(2)}",
        f'object.metadata.name != "\\".all(x, [1].all(y, [1].all(z, true)))" && {nested(2)}',
        f"object.metadata.name != '''\n.all(x, [1].all(y, [1].all(z, true)))''' && {nested(2)}",
        f"object.metadata.name != r'\\' && {nested(2)}",  # a raw string's backslash escapes nothing
        f"object.metadata.name != b'.all(x, [1].all(y, ' && {nested(2)}",
        f"{nested(2)} // .all(x, [1].all(y, [1].all(z, true)))\n && true",
        # Nor is the refusal of two-variable comprehensions fooled by a string.
        "object.metadata.name != '.all(k, v, v) .transformList(i, r, r)'",
    ],
)
def test_string_literals_and_comments_are_not_comprehensions(expression: str) -> None:
    compiled = compile_cel(expression)
    assert compiled({"object": obj(name="web")}) is True


@pytest.mark.parametrize(
    "expression",
    [
        "[[1]]" + ".map(a, a + a)" * 30 + "[0].size() > 0",  # 2**30 items, in 441 characters
        "[[1]].map(a, a + a).filter(b, true).map(c, c + c).size() == 1",
        "flatten([[1]].map(a, a + a)).map(c, c + 1).size() == 2",
        "[[1].map(a, a)].map(b, b).size() == 1",
    ],
)
def test_a_map_over_another_maps_result_is_refused(expression: str) -> None:
    with pytest.raises(InvalidExpressionError, match="over what another map"):
        compile_cel(expression)


def test_a_map_beside_or_before_other_comprehensions_is_fine() -> None:
    assert compile_cel("[1, 2].map(a, a + a).exists(b, b == 4) && [3].map(c, c) == [3]")({}) is True
    assert compile_cel("1 in [1].map(a, a) && [[1]].map(b, b + b)[0].size() == 2")({}) is True


def test_strings_the_extensions_would_make_too_long_fail_that_event_before_they_are_made() -> None:
    """A chain of growing calls multiplies the length (8 links of x8 on 24 characters: 400 MB):
    each call is sized first, so the event fails at once with what to fix, and MIC goes on."""
    chain = compile_cel("object.metadata.name" + '.replace("s", "ssssssss")' * 8 + ' == "x"')
    with pytest.raises(ExpressionEvaluationError, match=r"replace\(\) would make a string of 6,291,456"):
        chain({"object": obj(name="s" * 24)})
    assert chain({"object": obj(name="a" * 24)}) is False  # nothing to replace: nothing grows
    joined = compile_cel('lists.range(1000).map(i, object.metadata.name).join(object.metadata.name) != ""')
    assert joined({"object": obj(name="a" * 1000)}) is True  # ~2 MB
    with pytest.raises(ExpressionEvaluationError, match=r"join\(\) would make a string"):
        joined({"object": obj(name="a" * 1100)})
    encoded = compile_cel('base64.encode(object.metadata.name.replace("a", object.metadata.name)) != ""')
    with pytest.raises(ExpressionEvaluationError, match=r"base64.encode\(\) would make a string"):
        encoded({"object": obj(name="a" * 1400)})  # 1.96 M characters, 2.6 M once encoded
    assert compile_cel('object.metadata.name.replace("-", "_", 1) == "a_b-c"')({"object": obj(name="a-b-c")})


def test_lists_range_is_bounded() -> None:
    assert compile_cel("lists.range(1000).size() == 1000")({}) is True
    with pytest.raises(
        InvalidExpressionError, match=r"lists.range\(1001\) makes more than 1000 items"
    ) as caught:
        compile_cel("lists.range(1001).all(i, i >= 0)")
    assert (caught.value.line, caught.value.column) == (1, 13)
    with pytest.raises(InvalidExpressionError, match="more than 1000 items"):
        compile_cel("lists.range(0x100000).size() > 0")
    computed = compile_cel("lists.range(size(object.metadata.name) * 1000).size() > 0")
    assert computed({"object": obj(name="a")}) is True
    with pytest.raises(ExpressionEvaluationError, match="at most 1000 items are allowed"):
        computed({"object": obj(name="ab")})

"""Label and field selectors: the API server's grammar, its error cases and its matching rules."""

from __future__ import annotations

import copy
import pickle
import random
from collections.abc import Mapping

import pytest

from mic.kube.selectors import (
    FieldSelector,
    FieldTerm,
    InvalidSelectorError,
    LabelSelector,
    Operator,
    Requirement,
)

# --- parsing -------------------------------------------------------------------------------------

VALID = [
    # (text, canonical form)
    ("", ""),
    ("   \t\n", ""),
    ("app=web", "app=web"),
    ("app==web", "app=web"),
    ("app!=web", "app!=web"),
    ("app", "app"),
    ("!app", "!app"),
    ("! app", "!app"),
    ("app in (web,api)", "app in (api,web)"),
    ("app in(web)", "app in (web)"),
    ("app notin ( web , api )", "app notin (api,web)"),
    ("app in (web,web)", "app in (web)"),
    ("tier=frontend,app=web", "app=web,tier=frontend"),
    ("  app = web ,  tier  in  ( a ) , ! canary ", "app=web,!canary,tier in (a)"),
    ("app=web,app=web", "app=web"),
    ("app=web,app==web", "app=web"),
    ("app=", "app="),
    ("app==", "app="),
    ("app!=", "app!="),
    ("app=,tier", "app=,tier"),
    # kube's parser reads empty slots in a value list as the empty value
    ("app in ()", "app in ()"),
    ("app in (,web)", "app in (,web)"),
    ("app in (web,)", "app in (,web)"),
    ("app notin (a,,b)", "app notin (,a,b)"),
    ("replicas>3", "replicas>3"),
    ("replicas < 10", "replicas<10"),
    ("app.kubernetes.io/name=web", "app.kubernetes.io/name=web"),
    ("example.com/Team_A.x-1=V.2_b-c", "example.com/Team_A.x-1=V.2_b-c"),
    ("k" * 63 + "=" + "v" * 63, "k" * 63 + "=" + "v" * 63),
    ("a" * 253 + "/n", "a" * 253 + "/n"),
    # `in` and `notin` are keywords only where an operator is expected
    ("in in (in,notin)", "in in (in,notin)"),
    ("notin=in", "notin=in"),
    ("9=0", "9=0"),
]


@pytest.mark.parametrize(("text", "canonical"), VALID)
def test_parse_gives_canonical_form(text: str, canonical: str) -> None:
    selector = LabelSelector.parse(text)
    assert str(selector) == canonical
    assert LabelSelector.parse(canonical) == selector  # the canonical form parses back to itself


def r(text: str) -> str:
    """The prefix of every label selector error about `text`."""
    return f"invalid label selector {text!r}: "


INVALID = [
    # (text, exact message)
    ("app in (a", r("app in (a") + "expected ',' or ')' at position 9, found end of input"),
    ("app in (a b)", r("app in (a b)") + "expected ',' or ')' at position 10, found 'b'"),
    ("app in a", r("app in a") + "expected '(' at position 7, found 'a'"),
    ("app in", r("app in") + "expected '(' at position 6, found end of input"),
    ("app in (=)", r("app in (=)") + "expected a value, ',' or ')' at position 8, found '='"),
    ("app in (a,=)", r("app in (a,=)") + "expected a value, ',' or ')' at position 10, found '='"),
    (
        "app web",
        r("app web") + "expected an operator (=, ==, !=, in, notin, >, <) at position 4, found 'web'",
    ),
    (
        "app ! web",
        r("app ! web") + "expected an operator (=, ==, !=, in, notin, >, <) at position 4, found '!'",
    ),
    ("app (", r("app (") + "expected an operator (=, ==, !=, in, notin, >, <) at position 4, found '('"),
    ("app=(", r("app=(") + "expected a value at position 4, found '('"),
    ("app=web tier", r("app=web tier") + "expected ',' or end of input at position 8, found 'tier'"),
    ("app=a=b", r("app=a=b") + "expected ',' or end of input at position 5, found '='"),
    ("!app=web", r("!app=web") + "expected ',' or end of input at position 4, found '='"),
    ("app,", r("app,") + "expected a label key or '!' at position 4, found end of input"),
    (",app", r(",app") + "expected a label key or '!' at position 0, found ','"),
    ("app,,b", r("app,,b") + "expected a label key or '!' at position 4, found ','"),
    ("!", r("!") + "expected a label key at position 1, found end of input"),
    ("!!a", r("!!a") + "expected a label key at position 1, found '!'"),
    ("=web", r("=web") + "expected a label key or '!' at position 0, found '='"),
    ("(a)", r("(a)") + "expected a label key or '!' at position 0, found '('"),
    (
        "a>b",
        r("a>b") + "invalid value 'b' for label key 'a' at position 2: '>' needs an integer",
    ),
    (
        "a < 99999999999999999999",
        r("a < 99999999999999999999")
        + "invalid value '99999999999999999999' for label key 'a' at position 4: '<' needs an integer",
    ),
    ("a>", r("a>") + "invalid value '' for label key 'a' at position 2: '>' needs an integer"),
    (
        "-app=web",
        r("-app=web") + "invalid label key '-app' at position 0: name part must consist of alphanumeric "
        "characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    ),
    (
        "x,a/b/c=d",
        r("x,a/b/c=d") + "invalid label key 'a/b/c' at position 2: a label key has at most one '/' "
        "(an optional DNS subdomain prefix, '/', a name)",
    ),
    (
        "Example.com/app=web",
        r("Example.com/app=web") + "invalid label key 'Example.com/app' at position 0: prefix part must "
        "be a lowercase RFC 1123 subdomain (e.g. 'example.com')",
    ),
    ("/app", r("/app") + "invalid label key '/app' at position 0: prefix part must be non-empty"),
    (
        "example.com/",
        r("example.com/") + "invalid label key 'example.com/' at position 0: name part must be non-empty",
    ),
    (
        "k" * 64,
        r("k" * 64)
        + f"invalid label key {'k' * 64!r} at position 0: name part must be no more than 63 characters",
    ),
    (
        "a" * 254 + "/n",
        r("a" * 254 + "/n")
        + f"invalid label key {'a' * 254 + '/n'!r} at position 0: "
        + "prefix part must be no more than 253 characters",
    ),
    (
        "app=" + "v" * 64,
        r("app=" + "v" * 64)
        + f"invalid value {'v' * 64!r} for label key 'app' at position 4: must be no more than 63 characters",
    ),
    (
        "app in (ok,bad_)",
        r("app in (ok,bad_)") + "invalid value 'bad_' for label key 'app' at position 11: must be empty or "
        "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
        "character",
    ),
    (
        "app=wéb",
        r("app=wéb") + "invalid value 'wéb' for label key 'app' at position 4: must be empty or consist of "
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    ),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_parse_rejects_what_the_api_server_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidSelectorError) as caught:
        LabelSelector.parse(text)
    assert str(caught.value) == message


def test_invalid_selector_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="position 9"):
        LabelSelector.parse("app in (a")


def test_equal_selectors_compare_and_hash_equal() -> None:
    a = LabelSelector.parse("tier in (b,a),app==web,!canary")
    b = LabelSelector.parse("!canary, app=web, tier in (a,b,a)")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != LabelSelector.parse("app=web")
    assert a != "app=web,!canary,tier in (a,b)"
    assert repr(a) == "LabelSelector('app=web,!canary,tier in (a,b)')"


def test_selectors_survive_pickle_and_copy() -> None:
    selector = LabelSelector.parse("app in (web,api),!canary")
    for clone in (pickle.loads(pickle.dumps(selector)), copy.deepcopy(selector), copy.copy(selector)):
        assert clone == selector
        assert clone.matches({"app": "api"})
        assert not clone.matches({"app": "api", "canary": "1"})


def test_requirements_are_exposed_in_canonical_order() -> None:
    selector = LabelSelector.parse("z notin (b,a),a,!m,n>1")
    assert selector.requirements == (
        Requirement("a", Operator.EXISTS),
        Requirement("m", Operator.DOES_NOT_EXIST),
        Requirement("n", Operator.GREATER_THAN, ("1",)),
        Requirement("z", Operator.NOT_IN, ("a", "b")),
    )


def test_everything() -> None:
    everything = LabelSelector.everything()
    assert everything.is_empty
    assert str(everything) == ""
    assert everything == LabelSelector.parse("") == LabelSelector()
    assert everything.matches(None)
    assert everything.matches({"any": "thing"})
    assert not LabelSelector.parse("a").is_empty


# --- matching ------------------------------------------------------------------------------------

WEB = {"app": "web", "tier": "frontend", "app.kubernetes.io/name": "web", "replicas": "5", "empty": ""}

MATCHES = [
    # (selector, labels, expected)
    ("", None, True),
    ("app=web", WEB, True),
    ("app=web", None, False),
    ("app=api", WEB, False),
    ("app==web,tier=frontend", WEB, True),
    ("app=web,tier=backend", WEB, False),
    ("app.kubernetes.io/name=web", WEB, True),
    ("app!=api", WEB, True),
    ("app!=web", WEB, False),
    ("missing!=x", WEB, True),  # != matches objects without the key, as in Kubernetes
    ("missing!=x", None, True),
    ("app in (api,web)", WEB, True),
    ("app in (api,db)", WEB, False),
    ("missing in (x)", WEB, False),
    ("app notin (api,db)", WEB, True),
    ("app notin (web)", WEB, False),
    ("missing notin (x)", WEB, True),  # notin too
    ("missing notin (x)", None, True),
    ("app", WEB, True),
    ("missing", WEB, False),
    ("empty", WEB, True),
    ("!missing", WEB, True),
    ("!app", WEB, False),
    ("!app", None, True),
    ("empty=", WEB, True),
    ("missing=", WEB, False),  # = with the empty value still needs the key
    ("empty in ()", WEB, True),
    ("app in (,web)", WEB, True),
    ("replicas>4", WEB, True),
    ("replicas>5", WEB, False),
    ("replicas<6", WEB, True),
    ("replicas<5", WEB, False),
    ("app>1", WEB, False),  # not an integer
    ("missing<1", WEB, False),
    ("replicas>4", {"replicas": "+7"}, True),  # Go's ParseInt accepts a sign
    ("replicas>4", {"replicas": "\u0667"}, False),  # and only ASCII digits
    ("replicas>4", {"replicas": "99999999999999999999"}, False),  # overflows int64
    ("app=web,tier in (frontend),!canary,replicas>1,zone notin (a)", WEB, True),
    ("app=web,tier in (frontend),canary", WEB, False),
    ("app=web,app=api", WEB, False),
]


@pytest.mark.parametrize(("text", "labels", "expected"), MATCHES)
def test_matches(text: str, labels: dict[str, str] | None, expected: bool) -> None:
    selector = LabelSelector.parse(text)
    assert selector.matches(labels) is expected
    assert selector.matches_object({"metadata": {"name": "x", "labels": labels}}) is expected


def test_matches_object_without_metadata_or_labels() -> None:
    assert LabelSelector.parse("!app").matches_object({})
    assert LabelSelector.parse("!app").matches_object({"metadata": {"name": "x"}})
    assert not LabelSelector.parse("app").matches_object({"metadata": {}})


def _reference_matches(requirements: tuple[Requirement, ...], labels: Mapping[str, str]) -> bool:
    """kube's `Requirement.Matches`, transcribed literally, to check the compiled matcher."""
    for req in requirements:
        has, value = req.key in labels, labels.get(req.key)
        op = req.operator
        if op in (Operator.IN, Operator.EQUALS):
            ok = has and value in req.values
        elif op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            ok = not has or value not in req.values
        elif op is Operator.EXISTS:
            ok = has
        elif op is Operator.DOES_NOT_EXIST:
            ok = not has
        else:
            ok = has and value is not None and value.isdigit()
            if ok:
                bound = int(req.values[0])
                ok = int(str(value)) > bound if op is Operator.GREATER_THAN else int(str(value)) < bound
        if not ok:
            return False
    return True


def test_compiled_matcher_agrees_with_kube_semantics_on_random_selectors() -> None:
    rng = random.Random(20240601)
    keys, values = ["a", "b", "c", "x.io/d"], ["", "1", "2", "v"]
    for _ in range(3000):
        parts = []
        for _ in range(rng.randint(0, 4)):
            key, op = rng.choice(keys), rng.choice(["=", "==", "!=", "in", "notin", "", "!", ">", "<"])
            if op in ("in", "notin"):
                parts.append(f"{key} {op} ({','.join(rng.sample(values, rng.randint(1, 3)))})")
            elif op == "":
                parts.append(key)
            elif op == "!":
                parts.append(f"!{key}")
            elif op in (">", "<"):
                parts.append(f"{key}{op}{rng.randint(0, 3)}")
            else:
                parts.append(f"{key}{op}{rng.choice(values)}")
        selector = LabelSelector.parse(",".join(parts))
        labels = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, len(keys)))}
        assert selector.matches(labels) == _reference_matches(selector.requirements, labels), (
            selector,
            labels,
        )


# --- from objects --------------------------------------------------------------------------------


def test_from_match_labels() -> None:
    selector = LabelSelector.from_match_labels({"tier": "frontend", "app": "web"})
    assert str(selector) == "app=web,tier=frontend"
    assert selector.matches(WEB)
    assert not selector.matches({"app": "web"})
    assert LabelSelector.from_match_labels({}) == LabelSelector.everything()


def test_from_label_selector_object() -> None:
    selector = LabelSelector.from_label_selector_object(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["frontend", "edge"]},
                {"key": "zone", "operator": "NotIn", "values": ["z1"]},
                {"key": "app.kubernetes.io/name", "operator": "Exists"},
                {"key": "canary", "operator": "DoesNotExist", "values": []},
            ],
        }
    )
    assert str(selector) == "app=web,app.kubernetes.io/name,!canary,tier in (edge,frontend),zone notin (z1)"
    assert selector == LabelSelector.parse(str(selector))
    assert selector.matches(WEB)
    assert not selector.matches({**WEB, "canary": "true"})


@pytest.mark.parametrize("obj", [{}, {"matchLabels": {}, "matchExpressions": []}, {"matchLabels": None}])
def test_empty_label_selector_object_selects_everything(obj: dict[str, object]) -> None:
    assert LabelSelector.from_label_selector_object(obj).is_empty


INVALID_OBJECTS = [
    ({"matchLabels": ["app"]}, "matchLabels: must be an object mapping label keys to values"),
    ({"matchLabels": {"app": 1}}, "matchLabels['app']: keys and values must be strings"),
    (
        {"matchLabels": {"-app": "web"}},
        "matchLabels['-app']: invalid label key '-app': name part must consist of alphanumeric",
    ),
    (
        {"matchLabels": {"app": "web!"}},
        "matchLabels['app']: invalid label value 'web!' for key 'app': must be empty or consist of",
    ),
    ({"matchExpressions": {"key": "a"}}, "matchExpressions: must be a list"),
    ({"matchExpressions": ["a"]}, "matchExpressions[0]: must be an object with key, operator and values"),
    (
        {"matchExpressions": [{"key": "a", "operator": "Exists"}, {"operator": "Exists"}]},
        "matchExpressions[1].key: must be a string",
    ),
    (
        {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
        "matchExpressions[0].operator: 'Gt' is not one of In, NotIn, Exists, DoesNotExist",
    ),
    (
        {"matchExpressions": [{"key": "a", "operator": "in", "values": ["1"]}]},
        "matchExpressions[0].operator: 'in' is not one of In, NotIn, Exists, DoesNotExist",
    ),
    (
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        "matchExpressions[0]: invalid requirement on label key 'a': the 'in' and 'notin' operators need "
        "at least one value",
    ),
    (
        {"matchExpressions": [{"key": "a", "operator": "NotIn"}]},
        "matchExpressions[0]: invalid requirement on label key 'a': the 'in' and 'notin' operators need "
        "at least one value",
    ),
    (
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        "matchExpressions[0]: invalid requirement on label key 'a': the exists and does-not-exist operators "
        "take no values",
    ),
    (
        {"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]},
        "matchExpressions[0].values: must be a list of strings",
    ),
]


@pytest.mark.parametrize(("obj", "message"), INVALID_OBJECTS)
def test_from_label_selector_object_rejects(obj: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSelectorError) as caught:
        LabelSelector.from_label_selector_object(obj)
    assert str(caught.value).startswith(f"invalid label selector: {message}")


def test_from_label_selector_object_needs_an_object() -> None:
    with pytest.raises(InvalidSelectorError, match="selector: must be an object"):
        LabelSelector.from_label_selector_object(["app"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "operator", "values", "message"),
    [
        (
            "a",
            Operator.EQUALS,
            (),
            "invalid requirement on label key 'a': the '=' operator needs exactly one value",
        ),
        ("a", Operator.NOT_EQUALS, ("x", "y"), "the '!=' operator needs exactly one value"),
        ("a", Operator.GREATER_THAN, ("x",), "the 'gt' operator needs an integer value"),
        ("a", Operator.DOES_NOT_EXIST, ("x",), "the exists and does-not-exist operators take no values"),
        ("a b", Operator.EXISTS, (), "invalid label key 'a b': name part must consist of"),
        ("a", Operator.IN, ("x'",), "invalid label value \"x'\" for key 'a'"),
    ],
)
def test_requirement_validates(key: str, operator: Operator, values: tuple[str, ...], message: str) -> None:
    with pytest.raises(InvalidSelectorError) as caught:
        Requirement(key, operator, values)
    assert message in str(caught.value)


def test_requirement_normalises_values() -> None:
    assert Requirement("a", Operator.IN, ("b", "a", "b")).values == ("a", "b")
    assert str(Requirement("a", Operator.LESS_THAN, ("3",))) == "a<3"


# --- field selectors -----------------------------------------------------------------------------

FIELD_VALID = [
    ("", ""),
    ("metadata.name=web", "metadata.name=web"),
    ("metadata.name==web", "metadata.name=web"),
    (
        "metadata.namespace!=kube-system,metadata.name=web",
        "metadata.name=web,metadata.namespace!=kube-system",
    ),
    (" metadata.name = web , ", "metadata.name=web"),
    ("metadata.name=a\\,b\\=c\\\\d", "metadata.name=a\\,b\\=c\\\\d"),
    ("metadata.name=", "metadata.name="),
    ("metadata.name=web,metadata.name=web", "metadata.name=web"),
]


@pytest.mark.parametrize(("text", "canonical"), FIELD_VALID)
def test_field_selector_parse(text: str, canonical: str) -> None:
    selector = FieldSelector.parse(text)
    assert str(selector) == canonical
    assert FieldSelector.parse(canonical) == selector
    assert hash(FieldSelector.parse(canonical)) == hash(selector)


def test_field_selector_terms_are_unescaped() -> None:
    assert FieldSelector.parse("metadata.name=a\\,b,metadata.namespace!=x").terms == (
        FieldTerm("metadata.name", "a,b"),
        FieldTerm("metadata.namespace", "x", negated=True),
    )


def f(text: str) -> str:
    return f"invalid field selector {text!r}: "


FIELD_INVALID = [
    (
        "spec.nodeName=n1",
        f("spec.nodeName=n1") + "term 'spec.nodeName=n1' at position 0: field 'spec.nodeName' is not "
        "supported (supported: metadata.name, metadata.namespace)",
    ),
    (
        "metadata.name=a,metadata.labels=b",
        f("metadata.name=a,metadata.labels=b") + "term 'metadata.labels=b' at position 16: field "
        "'metadata.labels' is not supported (supported: metadata.name, metadata.namespace)",
    ),
    (
        "metadata.name",
        f("metadata.name")
        + "term 'metadata.name' at position 0: expected field=value, field==value or field!=value",
    ),
    (
        "metadata.name=a=b",
        f("metadata.name=a=b")
        + "term 'metadata.name=a=b' at position 15: unescaped '=' in value (write '\\=')",
    ),
    (
        "metadata.name=a\\x",
        f("metadata.name=a\\x") + "term 'metadata.name=a\\\\x' at position 15: invalid escape sequence '\\x'",
    ),
    (
        "metadata.name=a\\",
        f("metadata.name=a\\")
        + "term 'metadata.name=a\\\\' at position 15: value ends with an unfinished escape '\\'",
    ),
]


@pytest.mark.parametrize(("text", "message"), FIELD_INVALID)
def test_field_selector_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidSelectorError) as caught:
        FieldSelector.parse(text)
    assert str(caught.value) == message


def test_field_selector_rejects_unsupported_terms_built_directly() -> None:
    with pytest.raises(InvalidSelectorError, match=r"field 'status\.phase' is not supported"):
        FieldSelector([FieldTerm("status.phase", "Running")])


POD = {"metadata": {"name": "web-1", "namespace": "shop"}}
NAMESPACE = {"metadata": {"name": "shop"}}

FIELD_MATCHES = [
    ("", POD, True),
    ("metadata.name=web-1", POD, True),
    ("metadata.name=web-2", POD, False),
    ("metadata.name!=web-2", POD, True),
    ("metadata.namespace=shop,metadata.name=web-1", POD, True),
    ("metadata.namespace!=shop", POD, False),
    ("metadata.namespace=", NAMESPACE, True),  # a cluster-scoped object's namespace reads as ""
    ("metadata.namespace!=shop", NAMESPACE, True),
    ("metadata.name=shop", {}, False),
    ("metadata.name!=shop", {"metadata": None}, True),
]


@pytest.mark.parametrize(("text", "obj", "expected"), FIELD_MATCHES)
def test_field_selector_matches(text: str, obj: dict[str, object], expected: bool) -> None:
    assert FieldSelector.parse(text).matches(obj) is expected


def test_field_selector_everything() -> None:
    assert FieldSelector.everything().is_empty
    assert FieldSelector.everything() == FieldSelector.parse(" , ")
    assert not FieldSelector.parse("metadata.name=a").is_empty
    assert repr(FieldSelector.parse("metadata.name=a")) == "FieldSelector('metadata.name=a')"

"""Kubernetes label and field selectors: parsed once, then matched on every event.

`LabelSelector.parse` accepts exactly the language of apimachinery's `labels.Parse` (the
`labelSelector` query parameter and `kubectl -l`), so a selector MIC accepts is one the API
server accepts and vice versa. Construction compiles the requirements into one generated
function per selector, so `matches` costs a few dict lookups per event.

`str()` of a selector is its canonical form: requirements sorted by key (as kube's `String()`),
duplicates dropped and `==` written as `=`. Two selectors that mean the same thing in the same
words compare and hash equal, so the string serves as a cache key and as the query parameter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, NoReturn

__all__ = [
    "FieldSelector",
    "FieldTerm",
    "InvalidSelectorError",
    "LabelSelector",
    "Operator",
    "Requirement",
]


class InvalidSelectorError(ValueError):
    """A selector the API server would reject; the message says what is wrong and where."""


class Operator(StrEnum):
    """A requirement's operator, spelled as apimachinery's `selection.Operator`."""

    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


# metav1.LabelSelector's matchExpressions operators (Gt/Lt exist only in the text form).
_OBJECT_OPERATORS: Final = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}

_NAME_MAX = 63
_PREFIX_MAX = 253
_NAME_RE: Final = re.compile(r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN_RE: Final = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_INT64_RE: Final = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NAME_SYNTAX = (
    "consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


def _key_problem(key: str) -> str | None:
    """Why `key` is not a valid label key (a Kubernetes qualified name), or None if it is."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        if "/" in prefix:
            return "a label key has at most one '/' (an optional DNS subdomain prefix, '/', a name)"
        if not prefix:
            return "prefix part must be non-empty"
        if len(prefix) > _PREFIX_MAX:
            return f"prefix part must be no more than {_PREFIX_MAX} characters"
        if not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix):
            return "prefix part must be a lowercase RFC 1123 subdomain (e.g. 'example.com')"
    if not name:
        return "name part must be non-empty"
    if len(name) > _NAME_MAX:
        return f"name part must be no more than {_NAME_MAX} characters"
    if not _NAME_RE.fullmatch(name):
        return f"name part must {_NAME_SYNTAX}"
    return None


def _value_problem(value: str) -> str | None:
    """Why `value` is not a valid label value, or None if it is (the empty string is valid)."""
    if len(value) > _NAME_MAX:
        return f"must be no more than {_NAME_MAX} characters"
    if value and not _NAME_RE.fullmatch(value):
        return f"must be empty or {_NAME_SYNTAX}"
    return None


def _parse_int64(text: str) -> int | None:
    """`text` as Go's `strconv.ParseInt(text, 10, 64)` reads it, or None (Python's int() is laxer)."""
    if not (text.isascii() and text.isdigit()) and not _INT64_RE.fullmatch(text):
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def _requirement_problem(operator: Operator, values: tuple[str, ...]) -> str | None:
    """Why `values` do not fit `operator` (NewRequirement's rules), or None."""
    if operator in (Operator.IN, Operator.NOT_IN):
        return "the 'in' and 'notin' operators need at least one value" if not values else None
    if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        return "the exists and does-not-exist operators take no values" if values else None
    if len(values) != 1:
        return f"the {operator.value!r} operator needs exactly one value"
    if operator in (Operator.GREATER_THAN, Operator.LESS_THAN) and _parse_int64(values[0]) is None:
        return f"the {operator.value!r} operator needs an integer value"
    return None


@dataclass(frozen=True, slots=True)
class Requirement:
    """One `key op values` term of a label selector, validated on construction.

    `values` is kept sorted and without duplicates, so equal requirements compare equal.
    """

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        values = tuple(sorted(set(self.values)))
        object.__setattr__(self, "values", values)
        problem = _key_problem(self.key)
        if problem:
            raise InvalidSelectorError(f"invalid label key {self.key!r}: {problem}")
        for value in values:
            problem = _value_problem(value)
            if problem:
                raise InvalidSelectorError(f"invalid label value {value!r} for key {self.key!r}: {problem}")
        problem = _requirement_problem(self.operator, values)
        if problem:
            raise InvalidSelectorError(f"invalid requirement on label key {self.key!r}: {problem}")

    def __str__(self) -> str:
        """The term as kube's `Requirement.String()` writes it (`!a`, `a`, `a=b`, `a in (x,y)`...)."""
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if op is Operator.IN or op is Operator.NOT_IN:
            return f"{self.key} {op.value} ({','.join(self.values)})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{self.values[0]}"


_NO_LABELS: Final[Mapping[str, str]] = {}


class LabelSelector:
    """A conjunction of label requirements, compiled for fast matching.

    Build one with `parse`, `from_match_labels`, `from_label_selector_object` or `everything`;
    the constructor takes `Requirement`s (each validated when it was built).
    """

    __slots__ = ("_hash", "_requirements", "_text", "matches")

    matches: Callable[[Mapping[str, str] | None], bool]
    """Whether an object with these labels (None: no labels) satisfies every requirement.

    An attribute holding a function compiled for this selector, called like a method.
    """

    def __init__(self, requirements: Iterable[Requirement] = ()) -> None:
        self._requirements: tuple[Requirement, ...] = tuple(
            sorted(set(requirements), key=lambda r: (r.key, str(r)))
        )
        self._text = ",".join(str(r) for r in self._requirements)
        self._hash = hash(self._text)
        self.matches = _compile_matcher(self._requirements)

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse the text form (`app=web,tier in (a,b),!canary`); "" selects everything.

        Raises `InvalidSelectorError` saying what was expected at which position.
        """
        return _parse_label_selector(text)

    @classmethod
    def everything(cls) -> LabelSelector:
        """The selector with no requirements, which matches every object."""
        return _EVERYTHING

    @classmethod
    def from_match_labels(cls, match_labels: Mapping[str, str]) -> LabelSelector:
        """The selector of a `matchLabels` map (or a Service's `spec.selector`): all must equal."""
        return cls._from_object({"matchLabels": match_labels})

    @classmethod
    def from_label_selector_object(cls, obj: Mapping[str, Any]) -> LabelSelector:
        """The selector of a metav1.LabelSelector (`{"matchLabels": ..., "matchExpressions": [...]}`).

        As in kube's `LabelSelectorAsSelector`, an object with neither field selects everything.
        """
        return cls._from_object(obj)

    @classmethod
    def _from_object(cls, obj: Mapping[str, Any]) -> LabelSelector:
        def fail(path: str, problem: str) -> NoReturn:
            raise InvalidSelectorError(f"invalid label selector: {path}: {problem}")

        if not isinstance(obj, Mapping):
            fail("selector", "must be an object")
        requirements: list[Requirement] = []
        match_labels = obj.get("matchLabels") or {}
        if not isinstance(match_labels, Mapping):
            fail("matchLabels", "must be an object mapping label keys to values")
        for key, value in match_labels.items():
            path = f"matchLabels[{key!r}]"
            if not isinstance(key, str) or not isinstance(value, str):
                fail(path, "keys and values must be strings")
            requirements.append(_requirement_at(path, key, Operator.EQUALS, (value,)))
        expressions = obj.get("matchExpressions") or []
        if not isinstance(expressions, list):
            fail("matchExpressions", "must be a list")
        for i, expression in enumerate(expressions):
            path = f"matchExpressions[{i}]"
            if not isinstance(expression, Mapping):
                fail(path, "must be an object with key, operator and values")
            key, operator, values = (
                expression.get("key"),
                expression.get("operator"),
                expression.get("values") or [],
            )
            if not isinstance(key, str):
                fail(f"{path}.key", "must be a string")
            if operator not in _OBJECT_OPERATORS:
                fail(f"{path}.operator", f"{operator!r} is not one of In, NotIn, Exists, DoesNotExist")
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                fail(f"{path}.values", "must be a list of strings")
            requirements.append(_requirement_at(path, key, _OBJECT_OPERATORS[operator], tuple(values)))
        return cls(requirements)

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        """The requirements in canonical order (by key)."""
        return self._requirements

    @property
    def is_empty(self) -> bool:
        """Whether this selects everything (no requirements)."""
        return not self._requirements

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        """`matches` on a Kubernetes object's `metadata.labels`."""
        metadata = obj.get("metadata")
        return self.matches(metadata.get("labels") if metadata else None)

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"LabelSelector({self._text!r})"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        """Pickle as the canonical text: the compiled matcher is rebuilt, not serialised."""
        return (_parse_label_selector, (self._text,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSelector) and other._text == self._text

    def __hash__(self) -> int:
        return self._hash


def _compile_matcher(requirements: tuple[Requirement, ...]) -> Callable[[Mapping[str, str] | None], bool]:
    """One generated Python function testing every requirement in a single expression.

    On the hot path this runs 2-4x faster than looping over requirement tuples: no loop, no
    tuple unpacking, and `in {...}` over literals compiles to a frozenset constant. Keys and
    values are embedded with repr(), so no string can change the code's meaning.
    A missing key reads as None, which is never equal to or in a set of strings: `!=` and
    `notin` therefore match objects without the key, as in Kubernetes.
    """
    terms: list[str] = []
    for r in requirements:
        key, op = repr(r.key), r.operator
        value_set = "{" + ", ".join(map(repr, r.values)) + "}"
        if op is Operator.EXISTS:
            terms.append(f"{key} in labels")
        elif op is Operator.DOES_NOT_EXIST:
            terms.append(f"{key} not in labels")
        elif op is Operator.EQUALS:
            terms.append(f"labels.get({key}) == {r.values[0]!r}")
        elif op is Operator.NOT_EQUALS:
            terms.append(f"labels.get({key}) != {r.values[0]!r}")
        elif op is Operator.IN:
            terms.append(f"labels.get({key}) in {value_set}")
        elif op is Operator.NOT_IN:
            terms.append(f"labels.get({key}) not in {value_set}")
        else:
            greater = op is Operator.GREATER_THAN
            terms.append(f"_compare_int64(labels.get({key}), {int(r.values[0])}, {greater})")
    source = (
        "def matches(labels):\n"
        "    if labels is None:\n"
        "        labels = _NO_LABELS\n"
        f"    return {' and '.join(terms) or 'True'}\n"
    )
    namespace: dict[str, Any] = {"_NO_LABELS": _NO_LABELS, "_compare_int64": _compare_int64}
    exec(source, namespace)
    matcher: Callable[[Mapping[str, str] | None], bool] = namespace["matches"]
    return matcher


def _compare_int64(value: str | None, bound: int, greater: bool) -> bool:
    """The `>`/`<` test: false unless the label exists and reads as a 64-bit integer."""
    number = _parse_int64(value) if value is not None else None
    return number is not None and (number > bound if greater else number < bound)


_EVERYTHING: Final = LabelSelector()


def _requirement_at(path: str, key: str, operator: Operator, values: tuple[str, ...]) -> Requirement:
    """A `Requirement`, with the path of the offending field in any validation error."""
    try:
        return Requirement(key, operator, values)
    except InvalidSelectorError as error:
        raise InvalidSelectorError(f"invalid label selector: {path}: {error}") from None


# --- the text form -------------------------------------------------------------------------------

# kube's lexer: whitespace is " \t\r\n"; symbols are = == != ! ( ) , < >; anything else up to the
# next whitespace or symbol is an identifier. `in`/`notin` are keywords only where an operator
# is expected, so they remain usable as keys and values.
_TOKEN_RE: Final = re.compile(r"[ \t\r\n]*(?:(!=|==|[=!(),<>])|([^ \t\r\n=!(),<>]+)|$)")
_IDENT, _END = "identifier", "end"
_OPERATORS: Final = {
    "=": Operator.EQUALS,
    "==": Operator.EQUALS,
    "!=": Operator.NOT_EQUALS,
    ">": Operator.GREATER_THAN,
    "<": Operator.LESS_THAN,
    "in": Operator.IN,
    "notin": Operator.NOT_IN,
}


class _Token:
    __slots__ = ("kind", "pos", "text")

    def __init__(self, kind: str, text: str, pos: int) -> None:
        self.kind, self.text, self.pos = kind, text, pos


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while True:
        match = _TOKEN_RE.match(text, pos)
        assert match is not None  # every character is whitespace, a symbol or part of an identifier
        symbol, ident = match.group(1), match.group(2)
        if symbol is not None:
            tokens.append(_Token(symbol, symbol, match.start(1)))
        elif ident is not None:
            tokens.append(_Token(_IDENT, ident, match.start(2)))
        else:
            tokens.append(_Token(_END, "", len(text)))
            return tokens
        pos = match.end()


class _Parser:
    """A recursive-descent mirror of apimachinery's `labels.Parser`, with positions in errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def next(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != _END:
            self.index += 1
        return token

    def fail(self, problem: str, pos: int, detail: str) -> NoReturn:
        raise InvalidSelectorError(
            f"invalid label selector {self.text!r}: {problem} at position {pos}{detail}"
        )

    def expected(self, what: str, token: _Token) -> NoReturn:
        found = "end of input" if token.kind == _END else repr(token.text)
        self.fail(f"expected {what}", token.pos, f", found {found}")

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        if self.peek().kind == _END:
            return requirements
        while True:
            requirements.append(self.requirement())
            token = self.next()
            if token.kind == _END:
                return requirements
            if token.kind != ",":
                self.expected("',' or end of input", token)

    def requirement(self) -> Requirement:
        token = self.next()
        negated = token.kind == "!"
        if negated:
            token = self.next()
        if token.kind != _IDENT:
            self.expected("a label key" if negated else "a label key or '!'", token)
        key, key_pos = token.text, token.pos
        problem = _key_problem(key)
        if problem:
            self.fail(f"invalid label key {key!r}", key_pos, f": {problem}")
        if negated:
            return Requirement(key, Operator.DOES_NOT_EXIST)
        if self.peek().kind in (",", _END):
            return Requirement(key, Operator.EXISTS)
        token = self.next()
        operator = _OPERATORS.get(token.text)
        if operator is None:
            self.expected("an operator (=, ==, !=, in, notin, >, <)", token)
        if operator is Operator.IN or operator is Operator.NOT_IN:
            values = self.value_set()
        else:
            values = [self.exact_value()]
        for value, pos in values:
            problem = _value_problem(value)
            if problem:
                self.fail(f"invalid value {value!r} for label key {key!r}", pos, f": {problem}")
        if operator is Operator.GREATER_THAN or operator is Operator.LESS_THAN:
            value, pos = values[0]
            if _parse_int64(value) is None:
                self.fail(
                    f"invalid value {value!r} for label key {key!r}",
                    pos,
                    f": {token.text!r} needs an integer",
                )
        return Requirement(key, operator, tuple(value for value, _ in values))

    def exact_value(self) -> tuple[str, int]:
        """The value after `=`, `==`, `!=`, `>` or `<`; nothing before ',' or the end means ""."""
        token = self.peek()
        if token.kind in (",", _END):
            return "", token.pos
        self.next()
        if token.kind != _IDENT:
            self.expected("a value", token)
        return token.text, token.pos

    def value_set(self) -> list[tuple[str, int]]:
        """`(a,b)` after in/notin. As in kube, empty slots (`()`, `(,a)`, `(a,)`) mean ""."""
        token = self.next()
        if token.kind != "(":
            self.expected("'('", token)
        values: list[tuple[str, int]] = []
        token = self.peek()
        if token.kind == ")":
            self.next()
            return [("", token.pos)]
        if token.kind not in (_IDENT, ","):
            self.expected("a value, ',' or ')'", token)
        while True:
            token = self.next()
            if token.kind == _IDENT:
                values.append((token.text, token.pos))
                following = self.peek()
                if following.kind == ")":
                    break
                if following.kind != ",":
                    self.expected("',' or ')'", following)
            elif token.kind == ",":
                if not values:
                    values.append(("", token.pos))
                following = self.peek()
                if following.kind == ")":
                    values.append(("", following.pos))
                    break
                if following.kind == ",":
                    self.next()
                    values.append(("", following.pos))
            else:
                self.expected("a value, ',' or ')'", token)
        self.next()  # the ')' seen above
        return values


@functools.lru_cache(maxsize=1024)
def _parse_label_selector(text: str) -> LabelSelector:
    """Cached: selectors are immutable and the same few strings arrive again and again."""
    requirements = _Parser(text).parse()
    return LabelSelector(requirements) if requirements else _EVERYTHING


# --- field selectors -----------------------------------------------------------------------------

# The fields every resource type supports server-side, mapped to their key in `metadata`.
_FIELDS: Final = {"metadata.name": "name", "metadata.namespace": "namespace"}
_FIELD_TERM_RE: Final = re.compile(r"!=|==|=")


@dataclass(frozen=True, slots=True)
class FieldTerm:
    """One `field=value` or `field!=value` term of a field selector."""

    field: str
    value: str
    negated: bool = False

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{'!=' if self.negated else '='}{escaped}"


class FieldSelector:
    """A field selector over the fields every resource supports: `metadata.name`, `metadata.namespace`.

    The syntax is kube's `fields.ParseSelector`: comma-separated `field=value`, `field==value`
    or `field!=value`, with `\\,`, `\\=` and `\\\\` escaping those characters in values.
    A missing field reads as "" (cluster-scoped objects have no namespace).
    """

    SUPPORTED_FIELDS: Final = tuple(_FIELDS)

    __slots__ = ("_checks", "_terms", "_text")

    def __init__(self, terms: Iterable[FieldTerm] = ()) -> None:
        self._terms = tuple(sorted(set(terms), key=str))
        for term in self._terms:
            if term.field not in _FIELDS:
                raise InvalidSelectorError(_unsupported_field(term.field))
        self._text = ",".join(str(t) for t in self._terms)
        self._checks = tuple((_FIELDS[t.field], t.value, not t.negated) for t in self._terms)

    @classmethod
    def parse(cls, text: str) -> FieldSelector:
        """Parse `metadata.name=x,metadata.namespace!=y`; "" selects everything."""
        terms: list[FieldTerm] = []
        for part, start in _split_unescaped_commas(text):
            stripped = part.strip()
            if not stripped:
                continue
            start += len(part) - len(part.lstrip())

            def fail(problem: str, offset: int, stripped: str = stripped, start: int = start) -> NoReturn:
                where = f"term {stripped!r} at position {start + offset}"
                raise InvalidSelectorError(f"invalid field selector {text!r}: {where}: {problem}")

            match = _FIELD_TERM_RE.search(stripped)
            if match is None:
                fail("expected field=value, field==value or field!=value", 0)
            field = stripped[: match.start()].strip()
            if field not in _FIELDS:
                fail(_unsupported_field(field), 0)
            raw = stripped[match.end() :]
            value, problem, offset = _unescape(raw.strip())
            if problem:
                fail(problem, match.end() + len(raw) - len(raw.lstrip()) + offset)
            terms.append(FieldTerm(field, value, match.group() == "!="))
        return cls(terms)

    @classmethod
    def everything(cls) -> FieldSelector:
        return cls()

    @property
    def terms(self) -> tuple[FieldTerm, ...]:
        return self._terms

    @property
    def is_empty(self) -> bool:
        return not self._terms

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether a Kubernetes object (a decoded dict) satisfies every term."""
        metadata = obj.get("metadata") or _NO_LABELS
        return all(((metadata.get(key) or "") == value) is wanted for key, value, wanted in self._checks)

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"FieldSelector({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSelector) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)


def _unsupported_field(field: str) -> str:
    return f"field {field!r} is not supported (supported: {', '.join(_FIELDS)})"


def _split_unescaped_commas(text: str) -> list[tuple[str, int]]:
    """The comma-separated parts of `text` (commas after a backslash do not split), with offsets."""
    parts: list[tuple[str, int]] = []
    start, escaped = 0, False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append((text[start:i], start))
            start = i + 1
    parts.append((text[start:], start))
    return parts


def _unescape(value: str) -> tuple[str, str | None, int]:
    """kube's `fields.UnescapeValue`: (value, problem or None, offset of the problem)."""
    if "\\" not in value and "," not in value and "=" not in value:
        return value, None, 0
    out: list[str] = []
    escaped = False
    for i, char in enumerate(value):
        if escaped:
            if char not in "\\,=":
                return "", f"invalid escape sequence '\\{char}'", i - 1
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            return "", f"unescaped {char!r} in value (write '\\{char}')", i
        else:
            out.append(char)
    if escaped:
        return "", "value ends with an unfinished escape '\\'", len(value) - 1
    return "".join(out), None, 0

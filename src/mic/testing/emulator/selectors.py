"""Server-side label and field selectors, as kube-apiserver parses and applies them.

The emulator has its own small parser (rather than `mic.kube.selectors`) because it plays the
server: it must reject what the server rejects and match what the server matches, whatever
the client library under test believes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mic.testing.emulator.errors import StatusError, bad_request

_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One clause: `key op values` (op is one of =, !=, in, notin, exists, !, gt, lt)."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if not present or value is None:
            return False
        try:
            have, want = int(value), int(self.values[0])
        except ValueError:
            return False
        return have > want if self.op == "gt" else have < want


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed `labelSelector` query parameter; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside `( ... )`."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _check_key(key: str, clause: str) -> str:
    if not _KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise bad_request(f"unable to parse requirement: invalid label key {key!r} in {clause!r}")
    return key


def _check_value(value: str, clause: str) -> str:
    if len(value) > 63 or not _VALUE.match(value):
        raise bad_request(f"unable to parse requirement: invalid label value {value!r} in {clause!r}")
    return value


_SET_CLAUSE = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")


def _parse_clause(clause: str) -> Requirement:
    text = clause.strip()
    if not text:
        raise bad_request(f"unable to parse requirement: found '', expected: identifier (in {clause!r})")
    if m := _SET_CLAUSE.match(text):
        key, op, inner = m.group(1), m.group(2), m.group(3)
        # As kube's parser: every slot, empty ones included, is a value, so `in ()` is
        # `in ("")` and `notin ()` is `notin ("")` (apimachinery's selector tests list
        # "x in ()" as valid), never an empty set that would let every object through.
        values = tuple(_check_value(v.strip(), clause) for v in inner.split(","))
        return Requirement(_check_key(key, clause), op, values)
    for token, op in (("!=", "!="), ("==", "="), ("=", "="), (">", "gt"), ("<", "lt")):
        if token in text:
            key, value = (part.strip() for part in text.split(token, 1))
            if op in ("gt", "lt") and not value.lstrip("-").isdigit():
                raise bad_request(f"unable to parse requirement: {value!r} is not an integer ({clause!r})")
            return Requirement(_check_key(key, clause), op, (_check_value(value, clause),))
    if text.startswith("!"):
        return Requirement(_check_key(text[1:].strip(), clause), "!")
    return Requirement(_check_key(text, clause), "exists")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse kube's label selector syntax; a 400 `StatusError` says what is wrong."""
    if not text or not text.strip():
        return LabelSelector()
    return LabelSelector(tuple(_parse_clause(c) for c in _split_top_level(text)))


FieldGetter = Callable[[dict[str, Any]], str]


def _path_getter(path: str) -> FieldGetter:
    keys = path.split(".")

    def get(obj: dict[str, Any]) -> str:
        node: Any = obj
        for key in keys:
            if not isinstance(node, dict):
                return ""
            node = node.get(key)
        if node is None:
            return ""
        if isinstance(node, bool):
            return "true" if node else "false"
        return str(node)

    return get


# Fields every resource supports; resources add their own (pods: spec.nodeName, status.phase...).
COMMON_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A parsed `fieldSelector`: equality clauses on the fields the resource supports."""

    clauses: tuple[tuple[str, bool, str, FieldGetter], ...] = ()  # (field, equal?, value, getter)

    def matches(self, obj: dict[str, Any]) -> bool:
        return all((getter(obj) == value) == equal for _, equal, value, getter in self.clauses)

    @property
    def empty(self) -> bool:
        return not self.clauses

    def required(self, field: str) -> str | None:
        """The value `field` must equal, if the selector pins it (used to narrow lookups)."""
        for name, equal, value, _ in self.clauses:
            if name == field and equal:
                return value
        return None


def parse_field_selector(text: str | None, supported: tuple[str, ...] = COMMON_FIELDS) -> FieldSelector:
    """Parse `a=b,c!=d`; fields outside `supported` are a 400, as kube answers."""
    if not text or not text.strip():
        return FieldSelector()
    clauses = []
    for raw in text.split(","):
        clause = raw.strip()
        token = next((t for t in ("!=", "==", "=") if t in clause), None)
        if token is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{clause}'")
        field, value = (p.strip() for p in clause.split(token, 1))
        equal = token != "!="
        if field not in supported:
            raise StatusError(400, "BadRequest", f"field label not supported: {field}")
        clauses.append((field, equal, value, _path_getter(field)))
    return FieldSelector(tuple(clauses))

"""What changed between two versions of an object: no-op detection and watched field paths.

Kubernetes bumps `metadata.resourceVersion` on every write and rewrites `metadata.managedFields`
on server-side apply even when nothing a recipient cares about changed (a controller re-applying
the same spec, a periodic status write with the same values). Delivering those would wake every
recipient for nothing, so by default a subscription drops them, and a subscription may narrow
"changed" further to the few paths it reacts to (`spec.rules`, `metadata.labels`).

Everything here runs per event on the hot path, so it compares with `==` on the decoded dicts
(a C-level deep comparison) instead of hashing or serialising objects; when both states are at
hand as compact JSON bytes (compact caches), `json_is_noop` decides most cases on the bytes,
without decoding the old state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

__all__ = [
    "NOOP_METADATA_KEYS",
    "InvalidFieldPathError",
    "changed_fields",
    "changed_paths",
    "is_noop",
    "json_is_noop",
    "parse_field_path",
    "value_at",
]

NOOP_METADATA_KEYS: Final = frozenset({"resourceVersion", "managedFields"})
"""Metadata that changes on writes which changed nothing else.

`generation` is not here: the API server bumps it only when the spec changed.
"""

FieldPath = tuple[str, ...]

_MISSING: Final[Any] = object()
_EMPTY: Final[dict[str, Any]] = {}


class InvalidFieldPathError(ValueError):
    """A `fields` entry that is not a dotted path."""


def parse_field_path(path: str) -> FieldPath:
    """`spec.rules` -> ("spec", "rules"); `\\.` is a literal dot, as in kubectl's JSONPath.

    So `metadata.annotations.kubernetes\\.io/ingress\\.class` names one annotation. A segment
    of digits indexes a list (`spec.rules.0.host`).
    """
    segments: list[str] = []
    current: list[str] = []
    escaped = False
    for char in path:
        if escaped:
            if char not in ".\\":
                raise InvalidFieldPathError(
                    f"invalid field path {path!r}: '\\{char}' is not an escape; write '\\.' for a "
                    "literal dot in a key and '\\\\' for a backslash"
                )
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        raise InvalidFieldPathError(f"invalid field path {path!r}: it ends with an unfinished escape '\\'")
    segments.append("".join(current))
    if not path or any(not segment for segment in segments):
        raise InvalidFieldPathError(
            f"invalid field path {path!r}: write keys separated by single dots, e.g. 'spec.rules' "
            "or 'metadata.labels' (no leading, trailing or doubled dots)"
        )
    return tuple(segments)


def value_at(obj: Any, path: FieldPath) -> Any:
    """The value at `path`, or a sentinel when any step is missing (so missing == missing)."""
    value = obj
    for segment in path:
        if isinstance(value, dict):
            value = value.get(segment, _MISSING)
            if value is _MISSING:
                return _MISSING
        elif isinstance(value, list) and segment.isdigit():
            index = int(segment)
            if index >= len(value):
                return _MISSING
            value = value[index]
        else:
            return _MISSING
    return value


def is_noop(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether `new` differs from `old` only in `metadata.resourceVersion`/`metadata.managedFields`.

    Identical objects are no-ops too (a resync re-sending the same version). Written as plain
    loops with identity short-cuts: no sets or copies are built, since this runs per MODIFIED.
    """
    if len(old) != len(new):
        return False
    for key, value in new.items():
        if key == "metadata":
            continue
        other = old.get(key, _MISSING)
        if other is not value and other != value:
            return False
    old_meta = old.get("metadata") or _EMPTY
    new_meta = new.get("metadata") or _EMPTY
    if old_meta is new_meta:
        return True
    ignored_old = ("resourceVersion" in old_meta) + ("managedFields" in old_meta)
    ignored_new = ("resourceVersion" in new_meta) + ("managedFields" in new_meta)
    if len(old_meta) - ignored_old != len(new_meta) - ignored_new:
        return False
    for key, value in new_meta.items():
        if key == "resourceVersion" or key == "managedFields":
            continue
        other = old_meta.get(key, _MISSING)
        if other is not value and other != value:
            return False
    return True


_RESOURCE_VERSION_KEY: Final = b'"resourceVersion":"'
_MANAGED_FIELDS_KEY: Final = b'"managedFields"'


def json_is_noop(old: bytes, new: bytes) -> bool | None:
    """`is_noop` on two states as compact JSON (`orjson.dumps` of the decoded objects), or None
    when the bytes cannot tell and the caller must compare the dicts.

    Each side must hold exactly one `resourceVersion` (an object served by the API server has
    one in its metadata; a second one, in an Endpoints' targetRef say, makes this abstain, as
    cutting the wrong one would hide a change). True when the bytes are equal once that value
    is cut out of each: the objects then differ in nothing else. False when they differ
    otherwise: orjson writes keys in the order the API server sent them, and a server writes
    one type's fields in one order, so different bytes mean a different value. (Were an
    object's keys ever reordered, this says "changed" and a recipient gets one event too many,
    never one too few.) None also when managedFields are present (is_noop ignores them, bytes
    do not).
    """
    if _MANAGED_FIELDS_KEY in old or _MANAGED_FIELDS_KEY in new:
        return None
    key, offset = _RESOURCE_VERSION_KEY, len(_RESOURCE_VERSION_KEY)
    old_start, new_start = old.find(key), new.find(key)
    if old_start < 0 or new_start < 0:
        return None if (old_start < 0) != (new_start < 0) else old == new
    old_end, new_end = old.find(b'"', old_start + offset), new.find(b'"', new_start + offset)
    if old_end < 0 or new_end < 0 or old.find(key, old_end) >= 0 or new.find(key, new_end) >= 0:
        return None
    return old[:old_start] == new[:new_start] and old[old_end:] == new[new_end:]


def changed_paths(old: dict[str, Any], new: dict[str, Any], paths: Sequence[FieldPath]) -> bool:
    """Whether the value at any of the parsed `paths` differs (a path missing in both is equal)."""
    return any(value_at(old, path) != value_at(new, path) for path in paths)


def changed_fields(old: dict[str, Any], new: dict[str, Any], fields: Sequence[str]) -> bool:
    """Whether the value at any of the dotted `fields` differs between `old` and `new`.

    Parses the paths on every call; hot paths parse once and use `changed_paths`.
    """
    return changed_paths(old, new, [parse_field_path(field) for field in fields])

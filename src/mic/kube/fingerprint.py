"""Content hashes of objects: did anything a recipient cares about change?"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

# Fields the API server changes on every write whether or not anything meaningful changed.
VOLATILE_METADATA_FIELDS = frozenset({"resourceVersion", "managedFields", "generation"})
# Constant for a resource, and present or not depending on whether the object came from a
# list (omitted) or a watch (present): never a difference worth reporting.
TYPE_FIELDS = frozenset({"kind", "apiVersion"})


def content_hash(obj: dict[str, Any]) -> str:
    """A stable hash of the object without its bookkeeping fields.

    Two states with the same hash differ at most in resourceVersion, managedFields,
    generation, kind and apiVersion, so a restart that finds the same hash has nothing to
    report. Keys are sorted so the hash does not depend on the server's field order.
    """
    trimmed = {key: value for key, value in obj.items() if key not in TYPE_FIELDS}
    metadata = trimmed.get("metadata")
    if isinstance(metadata, dict):
        trimmed["metadata"] = {k: v for k, v in metadata.items() if k not in VOLATILE_METADATA_FIELDS}
    return hashlib.blake2b(orjson.dumps(trimmed, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()

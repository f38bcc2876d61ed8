"""The kopf peer: an operator with one empty event handler, run by `kopf run` in its own process.

It counts the MODIFIED events its handler is called with and, at the first and at the
`BENCH_EVENTS`-th, appends a JSON line (wall time, process CPU time, count) to `BENCH_OUT`.
Everything else is kopf's defaults (the handler does nothing), except that kopf does not
post Kubernetes Events about its own activity (`posting.enabled = False`), which would add
writes to the API server that MIC does not make.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import kopf

RESOURCE = os.environ["BENCH_RESOURCE"]
TARGET = int(os.environ["BENCH_EVENTS"])
OUT = os.environ["BENCH_OUT"]
_count = 0


def _mark(kind: str) -> None:
    with open(OUT, "a") as f:
        f.write(json.dumps({"mark": kind, "t": time.time(), "cpu": time.process_time(), "n": _count}) + "\n")


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False
    _mark("startup")


@kopf.on.event(RESOURCE)
async def on_event(event: dict[str, Any], **_: Any) -> None:
    global _count
    if event.get("type") != "MODIFIED":
        return
    _count += 1
    if _count == 1:
        _mark("first")
    if _count % 1000 == 0 or _count == TARGET:
        _mark("progress" if _count != TARGET else "done")

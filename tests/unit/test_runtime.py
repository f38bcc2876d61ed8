"""`tune_gc` changes the whole process, so each check runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc, weakref
from mic.runtime import YOUNG_THRESHOLD, tune_gc

before = gc.get_threshold()
tune_gc()
after = gc.get_threshold()
assert after == (YOUNG_THRESHOLD, before[1], before[2]), (before, after)
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()

class Node:
    pass

# A reference cycle made after tuning is still found and freed by a collection.
a, b = Node(), Node()
a.other, b.other = b, a
alive = weakref.ref(a)
del a, b
gc.collect()
assert alive() is None
print("ok")
"""


def test_tune_gc_freezes_startup_objects_raises_the_threshold_and_still_frees_cycles() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

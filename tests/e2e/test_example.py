"""The README's library example runs as a user would run it and prints what the hub saw."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "watch_ingresses.py"


def test_watch_ingresses_demo_prints_every_change() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines[:3]) == ["ap-1", "eu-1", "us-1"]
    assert lines[3].split()[:2] == ["eu-1", "MODIFIED"]
    assert "hosts=new.example.com" in lines[3]
    assert lines[4].split()[:2] == ["us-1", "DELETED"]
    assert lines[5] == "still there: ap-1/shop, eu-1/shop"

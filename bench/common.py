"""What every scenario shares: CPU and RSS of a process from /proc, machine facts, results."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
_TICKS = os.sysconf("SC_CLK_TCK")


def service_hub() -> Any:
    """A `Hub` as `mic serve` wires it: the default cache mode's informer options, and the
    process's garbage collector tuned as `mic serve` tunes it (`mic.runtime.tune_gc`)."""
    from mic import Hub
    from mic.runtime import tune_gc
    from mic.service.settings import ServiceSettings

    tune_gc()
    return Hub(informer_options=ServiceSettings().informer_options())


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (its threads included; children not)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class CpuWindow:
    """CPU used by a process between `start()` and `stop()`, against wall time."""

    pid: int
    wall0: float = 0.0
    cpu0: float = 0.0
    wall: float = 0.0
    cpu: float = 0.0

    def start(self) -> CpuWindow:
        self.wall0, self.cpu0 = time.monotonic(), cpu_seconds(self.pid)
        return self

    def stop(self) -> CpuWindow:
        self.wall = time.monotonic() - self.wall0
        self.cpu = cpu_seconds(self.pid) - self.cpu0
        return self

    @property
    def percent(self) -> float:
        """CPU % of one core (100 = one core busy the whole window)."""
        return 100.0 * self.cpu / self.wall if self.wall else 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100.0 * (len(ordered) - 1))))
    return ordered[index]


def latency_summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000.0 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else float("nan"),
    }


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "src")),
        "load_avg_at_start": os.getloadavg(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


@dataclass
class Table:
    """One Markdown table of a scenario's results."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append(list(cells))

    def markdown(self) -> str:
        head = "| " + " | ".join(self.columns) + " |"
        rule = "|" + "|".join("---" for _ in self.columns) + "|"
        body = ["| " + " | ".join(_cell(c) for c in row) + " |" for row in self.rows]
        return "\n".join([f"**{self.title}**", "", head, rule, *body])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclass
class ScenarioResult:
    """What a scenario measured: raw numbers (JSON), tables (Markdown), notes, target checks."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def target(self, what: str, measured: str, goal: str, met: bool, detail: str = "") -> None:
        self.targets.append(
            {"target": what, "measured": measured, "goal": goal, "met": met, "detail": detail}
        )


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_results(results: list[ScenarioResult], *, quick: bool, info: dict[str, Any], readme: bool) -> Path:
    """bench/results/latest.json and latest.md (only the latest run is kept); README table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    for old in RESULTS.glob("latest*"):
        old.unlink()
    document = {
        "mode": "quick" if quick else "full",
        "machine": info,
        "scenarios": {
            r.name: {"seconds": r.seconds, "data": r.data, "notes": r.notes, "targets": r.targets}
            for r in results
        },
    }
    (RESULTS / "latest.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    markdown = render_markdown(results, quick=quick, info=info)
    (RESULTS / "latest.md").write_text(markdown)
    if readme:
        update_readme(results, quick=quick, info=info)
    return RESULTS / "latest.md"


def _header(quick: bool, info: dict[str, Any]) -> str:
    return (
        f"{'Quick' if quick else 'Full'} run of {info['date']} on {info['nproc']} x {info['cpu_model']}, "
        f"{info['ram_gib']} GiB RAM, {info['implementation']} {info['python']}, commit "
        f"`{info['commit']}`{' (src/ modified)' if info['dirty'] else ''}. "
        f"Clusters: {info.get('clusters', 'emulated')}."
    )


def targets_table(results: list[ScenarioResult]) -> Table:
    table = Table("Targets of issue 5", ["target", "goal", "measured", "met", "detail"])
    for result in results:
        for t in result.targets:
            table.add(t["target"], t["goal"], t["measured"], "yes" if t["met"] else "**no**", t["detail"])
    return table


def render_markdown(results: list[ScenarioResult], *, quick: bool, info: dict[str, Any]) -> str:
    parts = [f"# MIC benchmark results\n\n{_header(quick, info)}\n", targets_table(results).markdown(), ""]
    for result in results:
        parts.append(f"## {result.name} ({result.seconds:.0f} s)\n")
        for table in result.tables:
            parts.extend([table.markdown(), ""])
        for note in result.notes:
            parts.append(f"- {note}")
        parts.append("")
    return "\n".join(parts)


def update_readme(results: list[ScenarioResult], *, quick: bool, info: dict[str, Any]) -> None:
    text = README.read_text()
    if README_START not in text or README_END not in text:
        return
    block = "\n".join(
        [
            README_START,
            _header(quick, info),
            "",
            targets_table(results).markdown(),
            "",
            "Every table, the method and the notes: `bench/results/latest.md`.",
            README_END,
        ]
    )
    text = re.sub(re.escape(README_START) + ".*?" + re.escape(README_END), lambda _: block, text, flags=re.S)
    README.write_text(text)

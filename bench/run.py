"""Run the benchmark suite: `python -m bench.run [--quick] [--only NAME ...] [--profile DIR]`.

Against emulated clusters by default; with `MIC_BENCH_KUBECONFIG=path`, ingest and end-to-end
run against that real cluster (see `bench.real`), and the scenarios that need many clusters or
100,000 objects are skipped with their reason.

Prints numbers; asserts nothing about time. Results of the latest run go to
bench/results/latest.json and latest.md; `--readme` also updates the table in README.md.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import ScenarioResult, log, machine, write_results
from bench.real import KUBECONFIG_ENV, real_kubeconfig

SCENARIOS = ["ingest", "e2e", "fanin", "memory", "resync", "idle"]

EMULATOR_ONLY = {
    "fanin": "it needs 50 clusters",
    "memory": "it creates 100,000 objects of each type",
    "resync": "it creates 100,000 objects and changes them while MIC is stopped",
    "idle": "it needs 50 clusters",
}
"""Scenarios that `MIC_BENCH_KUBECONFIG` does not run (against one real cluster), and why."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole suite in < 2 minutes")
    parser.add_argument(
        "--only", action="append", choices=SCENARIOS, help="run only this scenario (repeatable)"
    )
    parser.add_argument("--readme", action="store_true", help="update the table in README.md")
    parser.add_argument(
        "--profile", type=Path, help="record py-spy profiles of MIC's process (ingest, e2e) into this folder"
    )
    args = parser.parse_args(argv)
    info = machine()
    real = real_kubeconfig() is not None
    info["clusters"] = f"a real cluster ({KUBECONFIG_ENV})" if real else "emulated (mic.testing)"
    results: list[ScenarioResult] = []
    for name in args.only or SCENARIOS:
        if real and name in EMULATOR_ONLY:
            log(f"scenario {name}: skipped against a real cluster: {EMULATOR_ONLY[name]}")
            continue
        module = importlib.import_module(f"bench.{name}")
        run: Callable[..., ScenarioResult] = module.run
        log(f"scenario {name} ({'quick' if args.quick else 'full'})")
        started = time.monotonic()
        kwargs = {"profile": args.profile} if name in ("ingest", "e2e") else {}
        result = run(args.quick, **kwargs)
        result.seconds = time.monotonic() - started
        results.append(result)
        log(f"scenario {name} done in {result.seconds:.1f} s")
    path = write_results(results, quick=args.quick, info=info, readme=args.readme)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

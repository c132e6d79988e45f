"""`drill run -n 2` against `drill run -n 0` on the bundled drills (features/): wall time and outcomes.

By the method of bench/method.py: one warm-up run of each, then ROUNDS (at least 3) rounds that
interleave the two, the order alternating, so that a change in the machine's load hits both alike.
Prints the median wall time of each mode, the median of the per-round ratios (serial / parallel: the
speed-up) with its range, and whether every run had the same scenario outcomes; the JSON keeps every
run. `--smoke` runs one small feature, one round, no warm-up (tests/test_parallel.py checks the script).

    .venv/bin/python bench/parallel_bench.py [--rounds 3] [--workers 2] [--out bench/results/parallel.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import method
from method import print_rows, save_and_print

REPO = Path(__file__).resolve().parent.parent
SMOKE_FEATURE = '''Feature: smoke
  Scenario: a cache comes back
    Given the Redis store "cache"
    And "cache" is seeded with 100 keys
    And a backup of "cache" is taken
    When "cache" is lost
    And "cache" is restored from its latest backup
    Then "cache" holds 100 keys

  Scenario: another cache comes back
    Given the Redis store "other"
    And "other" is seeded with 50 keys
    And a backup of "other" is taken
    When "other" is lost
    And "other" is restored from its latest backup
    Then "other" holds 50 keys
'''


def one_run(workers: int, paths: list[str], cwd: Path, report_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "drill", "run", "--quiet", "-n", str(workers), "--report-format",
                           "none", "--report-dir", str(report_dir), *paths], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seconds = time.perf_counter() - started
    found = sorted(report_dir.glob("*/results.json"), key=lambda p: p.stat().st_mtime)
    if done.returncode != 0 or not found:
        raise SystemExit(f"drill run -n {workers} failed (exit {done.returncode}):\n{done.stdout[-3000:]}"
                         f"{done.stderr[-3000:]}")
    results = json.loads(found[-1].read_text())
    outcomes = [[s["feature"], s["name"], s["status"]] for s in results["scenarios"]]
    return {"workers": workers, "seconds": seconds, "outcomes": outcomes, "run_id": results["run_id"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=method.MIN_RUNS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="one small feature, one round: the script works")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "parallel.json")
    args = parser.parse_args()
    say = method.quiet if args.smoke else (lambda text: print(text, file=sys.stderr, flush=True))
    machine = method.machine()  # its load average at the start: before the runs
    with tempfile.TemporaryDirectory(prefix="drill-parallel-bench-") as tmp:
        cwd, paths = REPO, []
        rounds, warm_up = max(method.MIN_RUNS, args.rounds), 1
        if args.smoke:
            (Path(tmp) / "features").mkdir()
            (Path(tmp) / "features" / "smoke.feature").write_text(SMOKE_FEATURE)
            cwd, rounds, warm_up = Path(tmp), 1, 0
        reports = Path(tmp) / "reports"
        found = method.compare(f"drill run -n {args.workers} vs -n 0",
                               lambda: one_run(args.workers, paths, cwd, reports),
                               lambda: one_run(0, paths, cwd, reports), runs=rounds, warm_up=warm_up,
                               ratio="baseline/drill", say=say)
    every = [run for r in found["rounds"] + found["warm_up"] for run in (r["drill"], r["baseline"])]
    report = {
        "machine": machine, "workers": args.workers, "method": method.__doc__, "comparison": found,
        "serial_median_seconds": found["baseline_seconds"]["median"],
        "parallel_median_seconds": found["drill_seconds"]["median"], "speedup": found["ratio"],
        "same_outcomes": all(run["outcomes"] == every[0]["outcomes"] for run in every),
        "scenarios": len(every[0]["outcomes"]), "smoke": args.smoke,
    }
    save_and_print(report, args.out, print_table)


def print_table(report: dict[str, Any]) -> None:
    speedup = report["speedup"]
    print_rows([
        ("measure", "value"),
        ("scenarios", str(report["scenarios"])),
        ("-n 0 wall time (median)", f"{report['serial_median_seconds']:.1f}s"),
        (f"-n {report['workers']} wall time (median)", f"{report['parallel_median_seconds']:.1f}s"),
        ("speed-up (median of rounds)", f"{speedup['median']:.2f}x (range {speedup['min']:.2f}-{speedup['max']:.2f}x)"),
        ("same outcomes in every run", "yes" if report["same_outcomes"] else "NO"),
    ])
    print(method.load_line(report))
    if not report["same_outcomes"]:
        raise SystemExit("the runs had different outcomes")


if __name__ == "__main__":
    main()

"""`drill run -n 2` against `drill run -n 0` on the bundled drills (features/): wall time and outcomes.

One warm-up run of each, then ROUNDS rounds that alternate the two (serial, parallel, serial, ...)
so that a change in the machine's load hits both alike. Prints each run, the median wall time of
each mode, the median of the per-round ratios (serial / parallel: the speed-up) with its range,
and whether every run had the same scenario outcomes. `--smoke` runs one small feature, one round
(tests/test_parallel.py checks that the script works).

    .venv/bin/python bench/parallel_bench.py [--rounds 3] [--workers 2] [--out bench/results/parallel.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_table import print_rows, save_and_print

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
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "drill", "run", "--quiet", "-n", str(workers), "--report-format",
                           "none", "--report-dir", str(report_dir), *paths], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seconds = time.monotonic() - started
    found = sorted(report_dir.glob("*/results.json"), key=lambda p: p.stat().st_mtime)
    if done.returncode != 0 or not found:
        raise SystemExit(f"drill run -n {workers} failed (exit {done.returncode}):\n{done.stdout[-3000:]}"
                         f"{done.stderr[-3000:]}")
    results = json.loads(found[-1].read_text())
    outcomes = [[s["feature"], s["name"], s["status"]] for s in results["scenarios"]]
    return {"workers": workers, "seconds": round(seconds, 2), "outcomes": outcomes, "run_id": results["run_id"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="one small feature, one round: the script works")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "parallel.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drill-parallel-bench-") as tmp:
        cwd, paths = REPO, []
        if args.smoke:
            (Path(tmp) / "features").mkdir()
            (Path(tmp) / "features" / "smoke.feature").write_text(SMOKE_FEATURE)
            cwd, args.rounds = Path(tmp), 1
        reports = Path(tmp) / "reports"
        warm = [one_run(0, paths, cwd, reports), one_run(args.workers, paths, cwd, reports)]
        rounds = []
        for number in range(args.rounds):
            serial = one_run(0, paths, cwd, reports)
            parallel = one_run(args.workers, paths, cwd, reports)
            rounds.append({"round": number + 1, "serial": serial, "parallel": parallel,
                           "speedup": round(serial["seconds"] / parallel["seconds"], 3)})
            print(f"round {number + 1}: -n 0 {serial['seconds']:.1f}s, -n {args.workers} {parallel['seconds']:.1f}s",
                  flush=True)
    ratios = [r["speedup"] for r in rounds]
    every = [r["serial"] for r in rounds] + [r["parallel"] for r in rounds] + warm
    report = {
        "workers": args.workers, "rounds": rounds, "warm_up": warm,
        "serial_median_seconds": statistics.median(r["serial"]["seconds"] for r in rounds),
        "parallel_median_seconds": statistics.median(r["parallel"]["seconds"] for r in rounds),
        "speedup_median": statistics.median(ratios), "speedup_range": [min(ratios), max(ratios)],
        "same_outcomes": all(run["outcomes"] == every[0]["outcomes"] for run in every),
        "scenarios": len(every[0]["outcomes"]), "cpus": os.cpu_count(), "load_average": list(os.getloadavg()),
        "smoke": args.smoke,
    }
    save_and_print(report, args.out, print_table)


def print_table(report: dict[str, Any]) -> None:
    low, high = report["speedup_range"]
    print_rows([
        ("measure", "value"),
        ("scenarios", str(report["scenarios"])),
        ("-n 0 wall time (median)", f"{report['serial_median_seconds']:.1f}s"),
        (f"-n {report['workers']} wall time (median)", f"{report['parallel_median_seconds']:.1f}s"),
        ("speed-up (median of rounds)", f"{report['speedup_median']:.2f}x (range {low:.2f}-{high:.2f}x)"),
        ("same outcomes in every run", "yes" if report["same_outcomes"] else "NO"),
        ("cpus, load average at the end", f"{report['cpus']}, {' '.join(f'{v:.1f}' for v in report['load_average'])}"),
    ])
    if not report["same_outcomes"]:
        raise SystemExit("the runs had different outcomes")


if __name__ == "__main__":
    main()

"""Whole-system restore: PostgreSQL, Redis and MongoDB restored in parallel, against the same stores one after
the other. Both runs are real `drill run`s of the same feature on the same data sizes; only drill.toml
differs (one stage for all, or one stage each, which makes the restore sequential).

    .venv/bin/python bench/system_bench.py            # default sizes (each store's restore takes seconds)
    .venv/bin/python bench/system_bench.py --smoke    # tiny sizes: checks the script works

Figures: the parallel whole-system time; the sequential one (= the sum of the stores' own restore and
verify times, each alone); the slowest store alone; parallel / slowest (goal: <= 1.2x) and parallel / sum
(well under 1). By the method of bench/method.py: the two runs interleaved, one warm-up, then at least 3
rounds; the median ratio with its range; every sample in the JSON (bench/results/system.json, or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import method
from method import HEADER, comparison_row, print_rows, save_and_print

REPO = Path(__file__).resolve().parent.parent
GOAL_VS_SLOWEST = 1.2

FEATURE = '''Feature: whole-system benchmark
  Scenario: whole system
    Given the PostgreSQL store "userdb"
    And the Redis store "cache"
    And the MongoDB store "notifydb"
    And "userdb" is seeded with {rows} rows
    And "cache" is seeded with {keys} keys
    And "notifydb" is seeded with {docs} documents
    And a backup of "userdb" is taken
    And a backup of "cache" is taken
    And a backup of "notifydb" is taken
    When "userdb" is lost
    And "cache" is lost
    And "notifydb" is lost
    And the whole system is restored
'''

PARALLEL = '''[drill]
stages = ["data"]
'''
SEQUENTIAL = '''[drill]
stages = ["first", "second", "third"]
[stores.userdb]
kind = "postgres"
stage = "first"
[stores.cache]
kind = "redis"
stage = "second"
[stores.notifydb]
kind = "mongodb"
stage = "third"
'''


def run(toml: str, sizes: dict[str, int]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="drill-system-bench-") as tmp:
        root = Path(tmp)
        (root / "features").mkdir()
        (root / "features" / "system.feature").write_text(FEATURE.format(**sizes), encoding="utf-8")
        (root / "drill.toml").write_text(toml, encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "drill", "run", "--quiet"], cwd=root, capture_output=True,
                              text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=3600)
        found = sorted((root / "reports").glob("*/results.json"))
        if done.returncode != 0 or not found:
            raise SystemExit(f"drill run failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        scenario = json.loads(found[-1].read_text())["scenarios"][0]
        system: dict[str, Any] = scenario["evidence"]["system"]
        for phase in scenario["phases"]:  # where each store's time went: restore, then verify
            if phase["name"] in ("restore", "verify") and phase["store"] in system["stores"]:
                system["stores"][phase["store"]][f"{phase['name']}_seconds"] = phase["seconds"]
        return system


def parallel_run(sizes: dict[str, int]) -> dict[str, Any]:
    system = run(PARALLEL, sizes)
    return {"seconds": system["seconds"], "stores": system["stores"]}


def slowest_alone(sizes: dict[str, int]) -> dict[str, Any]:
    """The stores one after the other: the slowest store's own time is the baseline."""
    system = run(SEQUENTIAL, sizes)
    alone = {name: s["seconds"] for name, s in system["stores"].items()}
    return {"seconds": max(alone.values()), "sequential_seconds": system["seconds"],
            "sum_of_stores_alone": sum(alone.values()), "slowest": max(alone, key=lambda n: alone[n]),
            "stores": system["stores"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round")
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--keys", type=int, default=150_000)
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=method.MIN_RUNS, help="rounds (at least 3)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "system.json")
    args = parser.parse_args()
    sizes = {"rows": 2000, "keys": 2000, "docs": 500} if args.smoke else \
        {"rows": args.rows, "keys": args.keys, "docs": args.docs}
    runs = 1 if args.smoke else max(method.MIN_RUNS, args.runs)
    say = method.quiet if args.smoke else (lambda text: print(text, file=sys.stderr, flush=True))
    machine = method.machine()  # its load average at the start: before the runs
    found = method.compare("whole-system restore vs its slowest store alone", lambda: parallel_run(sizes),
                           lambda: slowest_alone(sizes), runs=runs, warm_up=0 if args.smoke else 1, say=say)
    sums = [r["baseline"]["sum_of_stores_alone"] for r in found["rounds"]]
    vs_sum = [r["drill"]["seconds"] / r["baseline"]["sum_of_stores_alone"] for r in found["rounds"]]
    report = {"machine": machine, "smoke": args.smoke, "sizes": sizes, "goal_vs_slowest": GOAL_VS_SLOWEST,
              "method": method.__doc__, "vs_slowest": found, "sum_of_stores_alone": method.spread(sums),
              "parallel_vs_sum": method.spread(vs_sum),
              "verdict": method.met(found, GOAL_VS_SLOWEST)}
    save_and_print(report, args.out, print_table)


def print_table(report: dict[str, Any]) -> None:
    sizes, found = report["sizes"], report["vs_slowest"]
    print(f"sizes: {sizes['rows']} PostgreSQL rows, {sizes['keys']} Redis keys, {sizes['docs']} MongoDB documents")
    rows = [HEADER, comparison_row("whole-system restore (parallel) vs the slowest store alone", found,
                                   report["goal_vs_slowest"])]
    vs_sum = report["parallel_vs_sum"]
    rows.append(("whole-system restore (parallel) vs the stores one after the other",
                 method.seconds(found["drill_seconds"]["median"]),
                 method.seconds(report["sum_of_stores_alone"]["median"]), method.ratio_text(vs_sum), "-"))
    for name in found["rounds"][0]["baseline"]["stores"]:
        alone = [r["baseline"]["stores"][name] for r in found["rounds"]]
        together = [r["drill"]["stores"][name] for r in found["rounds"]]
        rows.append((f"{name}: restore + verify, in parallel vs alone",
                     method.seconds(method.spread([s["seconds"] for s in together])["median"]),
                     method.seconds(method.spread([s["seconds"] for s in alone])["median"]), "-", "-"))
    print_rows(rows)
    print(method.load_line(report))


if __name__ == "__main__":
    main()

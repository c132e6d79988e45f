"""Whole-system restore: PostgreSQL, Redis and MongoDB restored in parallel, against the same stores one after
the other. Both runs are real `drill run`s of the same feature on the same data sizes; only drill.toml
differs (one stage for all, or one stage each, which makes the restore sequential).

    .venv/bin/python bench/system_bench.py            # default sizes (each store's restore takes seconds)
    .venv/bin/python bench/system_bench.py --smoke    # tiny sizes: checks the script works

Figures: the parallel whole-system time; the sequential one (= the sum of the stores' own restore and
verify times, each alone); the slowest store alone; parallel / slowest (goal: close to 1) and
parallel / sum (goal: well under 1). JSON goes to bench/results/system.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--keys", type=int, default=150_000)
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "system.json")
    args = parser.parse_args()
    sizes = {"rows": 2000, "keys": 2000, "docs": 500} if args.smoke else \
        {"rows": args.rows, "keys": args.keys, "docs": args.docs}
    sequential = run(SEQUENTIAL, sizes)
    parallel = run(PARALLEL, sizes)
    alone = {name: s["seconds"] for name, s in sequential["stores"].items()}
    together = {name: s["seconds"] for name, s in parallel["stores"].items()}
    slowest = max(alone.values())
    report = {
        "sizes": sizes, "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "sequential_seconds": sequential["seconds"], "sum_of_stores_alone": sum(alone.values()),
        "parallel_seconds": parallel["seconds"], "slowest_store_alone_seconds": slowest,
        "stores_alone": alone, "stores_in_parallel": together,
        "phases_alone": sequential["stores"], "phases_in_parallel": parallel["stores"],
        "parallel_vs_slowest": parallel["seconds"] / slowest,
        "parallel_vs_sum": parallel["seconds"] / sum(alone.values()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"sizes: {sizes['rows']} PostgreSQL rows, {sizes['keys']} Redis keys, {sizes['docs']} MongoDB documents")
    print(f"{'store':<10} {'alone (s)':>10} {'restore+verify':>15} {'in parallel (s)':>16} {'restore+verify':>15}")
    for name in alone:
        a, b = sequential["stores"][name], parallel["stores"][name]
        print(f"{name:<10} {alone[name]:>10.2f} {a.get('restore_seconds', 0):>7.2f}+{a.get('verify_seconds', 0):<7.2f} "
              f"{together[name]:>16.2f} {b.get('restore_seconds', 0):>7.2f}+{b.get('verify_seconds', 0):<7.2f}")
    print(f"sum of the stores alone: {report['sum_of_stores_alone']:.2f}s "
          f"(sequential whole-system restore: {report['sequential_seconds']:.2f}s)")
    print(f"parallel whole-system restore: {report['parallel_seconds']:.2f}s = "
          f"{report['parallel_vs_slowest']:.2f}x the slowest store alone ({slowest:.2f}s), "
          f"{report['parallel_vs_sum']:.2f}x the sum")
    print(f"JSON: {args.out}")


if __name__ == "__main__":
    main()

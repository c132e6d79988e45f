"""Suites of many small drills: a Scenario Outline of N small PostgreSQL scenarios (100-400 rows each) through
`drill run`, against the same work done by the native tools on one server. Wall time, per-scenario time, and
drill's overhead per scenario: (drill's wall time - the native script's) / N.

    .venv/bin/python bench/many_scenarios_bench.py                     # 40 and 200 scenarios (~40 minutes idle)
    .venv/bin/python bench/many_scenarios_bench.py --scenarios 40      # 40 only (~6 minutes idle)
    .venv/bin/python bench/many_scenarios_bench.py --smoke             # 3 scenarios, one round: the script works

A mode is a drill.toml for the run (MODES below): `per-scenario` (`[drill] shared_servers = false`: a throwaway
PostgreSQL server per scenario, initdb, start, stop, remove: drill before shared servers) and `shared` (the
default: one server for the run, a database per scenario), so that one run gives the before and after figures
side by side.
The native script does, per scenario, on one server the bench started: createdb, load the rows (psql of a
dump of drill's seed), pg_dump -Fc, dropdb, createdb, pg_restore, SELECT COUNT(*) of each table, dropdb.

Method (bench/method.py): at each size the modes and the native script run interleaved, the order rotating
from round to round, after one warm-up of each (at 200 scenarios the 40-scenario comparison is the warm-up);
medians with their range; every sample in the JSON (bench/results/many.json). After each drill run the bench
checks that nothing is left behind: no throwaway server directory and no server process of that drill.
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

import method
import psycopg
from method import print_rows, save_and_print

from drill.provision.processes import OWNER_FILE
from drill.stores.postgres import binaries as pg_binaries
from drill.stores.postgres import seed as postgres_seed
from drill.stores.postgres.local import LocalPostgresCluster

REPO = Path(__file__).resolve().parent.parent
ROW_COUNTS = (100, 150, 200, 250, 300, 350, 400)
GOAL_OVERHEAD_SECONDS = 0.3

FEATURE = """Feature: many small drills
  Scenario Outline: small database <n> comes back with <rows> rows
    Given the PostgreSQL store "db"
    And "db" is seeded with <rows> rows
    And a backup of "db" is taken
    When "db" is lost
    And "db" is restored from its latest backup
    Then "db" matches its state at the backup
    And "db" holds <rows> rows

    Examples:
      | n | rows |
{examples}
"""

# mode -> drill.toml: "per-scenario" is drill before shared servers (a throwaway server per scenario), "shared" the
# default since ([drill] shared_servers: one server per run, a database per scenario).
MODES = {"per-scenario": "[drill]\nshared_servers = false\n", "shared": "[drill]\nshared_servers = true\n"}

NATIVE = """set -euo pipefail
for i in $(seq 1 {count}); do
  rows=${{ROWS[$(( (i - 1) % {kinds} ))]}}
  createdb {conn} db_$i
  psql -X -q -v ON_ERROR_STOP=1 {conn} -d db_$i -f "$WORK/seed_$rows.sql" > /dev/null
  pg_dump -Fc {conn} -f "$WORK/dump" db_$i
  dropdb {conn} db_$i
  createdb {conn} db_$i
  pg_restore {conn} -d db_$i "$WORK/dump"
  for t in users orders order_items; do psql -X -q -t {conn} -d db_$i -c "SELECT COUNT(*) FROM $t" > /dev/null; done
  dropdb {conn} db_$i
done
"""


def rows_of(index: int) -> int:
    return ROW_COUNTS[index % len(ROW_COUNTS)]


def write_project(root: Path, count: int, mode: str) -> None:
    (root / "features").mkdir(parents=True, exist_ok=True)
    examples = "\n".join(f"      | {i + 1} | {rows_of(i)} |" for i in range(count))
    (root / "features" / "many.feature").write_text(FEATURE.format(examples=examples))
    (root / "drill.toml").write_text(MODES[mode])


def left_behind(pid: int) -> list[str]:
    """Throwaway server folders of drill process `pid` still on disk (drill-pg-*, drill-redis-*, ...)."""
    found = []
    for folder in Path(tempfile.gettempdir()).glob("drill-*"):
        owner = folder / OWNER_FILE
        try:
            if owner.read_text().strip() == str(pid):
                found.append(folder.name)
        except OSError:
            continue
    return found


def leftover_servers(pid: int) -> list[int]:
    """PostgreSQL servers (postmasters) started by drill process `pid` that still run: their data folder
    is gone, or its owner file names `pid` (other engineers' drills on this machine name theirs)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not args[0].endswith(b"postgres") or b"-D" not in args or not any(b"/drill-pg-" in a for a in args):
            continue
        data = Path(args[args.index(b"-D") + 1].decode())
        owner = data.parent / OWNER_FILE
        try:
            mine = owner.read_text().strip() == str(pid)
        except OSError:
            mine = True  # its folder was removed under it: nobody will stop it
        if mine:
            found.append(int(proc.name))
    return found


def drill_run(root: Path) -> dict[str, Any]:
    started = time.perf_counter()
    log = root / "drill.log"
    with log.open("w") as output:
        proc = subprocess.Popen([sys.executable, "-m", "drill", "run", "--quiet", "--report-format", "none",
                                 "--report-dir", str(root / "reports")], cwd=root, stdout=output, stderr=output)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"drill run failed (exit {code}):\n{log.read_text()[-4000:]}")
    results = sorted((root / "reports").glob("*/results.json"), key=lambda p: p.stat().st_mtime)[-1]
    scenarios = json.loads(results.read_text())["scenarios"]
    provision = [p["seconds"] for s in scenarios for p in s["phases"] if p["name"] == "provision"]
    return {"seconds": seconds, "scenarios": len(scenarios),
            "passed": sum(1 for s in scenarios if s["status"] == "passed"),
            "provision_seconds_median": statistics.median(provision) if provision else 0.0,
            "left_behind": left_behind(proc.pid), "leftover_server_processes": leftover_servers(proc.pid),
            "peak_rss_mb": usage.ru_maxrss / 1024}


def prepare_native(cluster: LocalPostgresCluster, work: Path, binaries: pg_binaries.PgBinaries) -> None:
    """A plain SQL file of drill's seed for each row count: what the native script loads per scenario."""
    for rows in ROW_COUNTS:
        with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS seedsrc")
            conn.execute("CREATE DATABASE seedsrc")
        with psycopg.connect(cluster.conninfo("seedsrc"), autocommit=True) as conn, conn.transaction():
            postgres_seed.seed(conn, rows, lambda _: None)
        subprocess.run([binaries.path("pg_dump"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
                        "-f", str(work / f"seed_{rows}.sql"), "seedsrc"], check=True)


def native_run(cluster: LocalPostgresCluster, work: Path, binaries: pg_binaries.PgBinaries, count: int) -> float:
    conn = f"-h 127.0.0.1 -p {cluster.port} -U postgres"
    script = f"ROWS=({' '.join(str(r) for r in ROW_COUNTS)})\n" + NATIVE.format(count=count, conn=conn,
                                                                               kinds=len(ROW_COUNTS))
    env = {**os.environ, "WORK": str(work), "PATH": f"{binaries.bin_dir}:{os.environ['PATH']}"}
    started = time.perf_counter()
    subprocess.run(["bash", "-c", script], env=env, check=True)
    return time.perf_counter() - started


def measure(count: int, modes: list[str], runs: int, warm_up: int, cluster: LocalPostgresCluster, work: Path,
            binaries: pg_binaries.PgBinaries, say: method.Say) -> dict[str, Any]:
    """Every mode and the native script at `count` scenarios, interleaved, the order rotating each round."""
    sides: dict[str, Any] = {}
    for mode in modes:
        root = work / f"{mode}-{count}"
        write_project(root, count, mode)
        sides[mode] = (lambda root=root: drill_run(root))
    sides["native"] = lambda: {"seconds": native_run(cluster, work, binaries, count)}
    names = list(sides)
    load_before = method.load_average()
    warm = []
    for _ in range(warm_up):
        say(f"{count} scenarios: warm-up")
        warm.append({name: method.sample(sides[name]) for name in names})
    rounds = []
    for number in range(runs):
        order = names[number % len(names):] + names[:number % len(names)]
        say(f"{count} scenarios: round {number + 1} of {runs} ({', '.join(order)})")
        rounds.append({"order": order, **{name: method.sample(sides[name]) for name in order}})
    found: dict[str, Any] = {"scenarios": count, "warm_up": warm, "rounds": rounds,
                             "load_average": {"before": load_before, "after": method.load_average()}}
    for name in names:
        found[name] = {"seconds": method.spread([r[name]["seconds"] for r in rounds])}
    for mode in modes:
        per_round = [(r[mode]["seconds"] - r["native"]["seconds"]) / count for r in rounds]
        found[mode]["overhead_per_scenario"] = method.spread(per_round)
        found[mode]["per_scenario"] = method.spread([r[mode]["seconds"] / count for r in rounds])
        found[mode]["all_passed"] = all(r[mode]["passed"] == count for r in rounds)
        found[mode]["nothing_left_behind"] = all(not r[mode]["left_behind"] and not r[mode]["leftover_server_processes"]
                                                 for r in rounds)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="3 scenarios, one round: the script works")
    parser.add_argument("--scenarios", default="40,200")
    parser.add_argument("--modes", default=",".join(MODES), help=f"drill's modes to run: {', '.join(MODES)}")
    parser.add_argument("--runs", type=int, default=method.MIN_RUNS)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "many.json")
    args = parser.parse_args(argv)
    counts = [3] if args.smoke else [int(c) for c in args.scenarios.split(",")]
    modes = args.modes.split(",")
    runs = 1 if args.smoke else max(method.MIN_RUNS, args.runs)
    say = method.quiet if args.smoke else (lambda text: print(text, file=sys.stderr, flush=True))
    binaries = pg_binaries.for_local_cluster()
    from run import compile_drill
    compile_drill()
    report: dict[str, Any] = {"machine": {**method.machine(), "postgres": binaries.version}, "smoke": args.smoke,
                              "goal_overhead_seconds": GOAL_OVERHEAD_SECONDS, "row_counts": ROW_COUNTS,
                              "sizes": []}
    with tempfile.TemporaryDirectory(prefix="drill-many-bench-") as tmp, LocalPostgresCluster(binaries) as cluster:
        work = Path(tmp)
        prepare_native(cluster, work, binaries)
        for number, count in enumerate(counts):
            warm_up = 0 if args.smoke or number > 0 else 1
            report["sizes"].append(measure(count, modes, runs, warm_up, cluster, work, binaries, say))
    save_and_print(report, args.out, print_table)
    return 0


def print_table(report: dict[str, Any]) -> None:
    rows: list[tuple[str, ...]] = [("scenarios", "run", "wall: median (min-max)", "per scenario",
                                    "drill overhead per scenario", "goal", "passed, nothing left")]
    for size in report["sizes"]:
        count = size["scenarios"]
        native = size["native"]["seconds"]
        for mode in [k for k in size if k not in ("scenarios", "warm_up", "rounds", "load_average", "native")]:
            found = size[mode]
            over = found["overhead_per_scenario"]
            wall = found["seconds"]
            rows.append((str(count), f"drill ({mode})", f"{wall['median']:.1f}s ({wall['min']:.1f}-{wall['max']:.1f})",
                         f"{found['per_scenario']['median']:.2f}s",
                         f"{over['median']:.2f}s ({over['min']:.2f}-{over['max']:.2f})",
                         f"<= {report['goal_overhead_seconds']}s "
                         f"{method.mark(over['median'] <= report['goal_overhead_seconds'])}",
                         "yes" if found["all_passed"] and found["nothing_left_behind"] else "NO"))
        rows.append((str(count), "native script", f"{native['median']:.1f}s ({native['min']:.1f}-{native['max']:.1f})",
                     f"{native['median'] / count:.2f}s", "-", "-", "-"))
    print_rows(rows)
    print(method.load_line(report))


if __name__ == "__main__":
    sys.exit(main())

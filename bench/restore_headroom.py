"""How much of the post-restore fingerprint could hide inside `pg_restore -j`? The measure behind issue 18's
last PostgreSQL lever (fingerprint each table as soon as pg_restore has finished it).

Overlapping two pieces of work on the same cores only saves time if the first leaves cores idle. This
bench restores the seed database (drill's three tables, ~1 GB by default) with `pg_restore -j N`, the
way drill and the runbook do, and reads the machine's CPU counters (/proc/stat) around it:

- **idle core-seconds during the restore** (idle + iowait over all cores): the room an overlapped
  fingerprint could use without slowing the restore down;
- **the fingerprint's CPU** (drill's post-restore fingerprint of the same database: its server
  backend, its parallel workers and drill, all counted by the machine's busy time);
- **the best case**: the fingerprint's wall time scaled by the share of its CPU that fits in that idle
  room. Lock waits (pg_restore's ALTER TABLE ... ADD PRIMARY KEY waits for a reader of its table) and
  cache contention only make the real saving smaller.

Run it on an idle machine (`uptime` below 0.5): every other process's CPU is counted as the restore's.
A warm-up, then 3 runs (bench/method.py's `repeated`); medians with their range; every sample in the JSON.

    .venv/bin/python bench/restore_headroom.py            ~1 GB, about 4 minutes on 2 idle cores
    .venv/bin/python bench/restore_headroom.py --smoke    tiny: the script works (measures nothing)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import method
import psycopg
from method import print_rows, save_and_print
from run import ROWS_PER_MB, seed

from drill.config import StoreConfig
from drill.stores.postgres import binaries as pg_binaries
from drill.stores.postgres.local import LocalPostgresCluster
from drill.stores.postgres.store import PgServer, PostgresStore

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_counters() -> tuple[float, float]:
    """(busy, idle) seconds summed over every core since boot: the first line of /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _TICK, (idle + iowait) / _TICK


def measured(run: Any) -> dict[str, float]:
    """Wall seconds of `run()` and the machine's busy and idle core-seconds meanwhile."""
    busy0, idle0 = cpu_counters()
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    busy1, idle1 = cpu_counters()
    return {"seconds": seconds, "busy_core_seconds": busy1 - busy0, "idle_core_seconds": idle1 - idle0}


def one_round(cluster: LocalPostgresCluster, dump: Path, jobs: int, binaries: pg_binaries.PgBinaries) -> dict[str, Any]:
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS restored WITH (FORCE)")
        conn.execute("CREATE DATABASE restored")
    args = [str(binaries.bin_dir / "pg_restore"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
            "-d", "restored", "-j", str(jobs), "--exit-on-error", str(dump)]
    restore = measured(lambda: subprocess.run(args, check=True))
    server = PgServer("127.0.0.1", cluster.port, "postgres", None, binaries)
    store = PostgresStore("restored", StoreConfig(name="restored", kind="postgres"), server, "restored")
    prints = []
    fingerprint = measured(lambda: prints.append(store.fingerprint()))
    # The share of the fingerprint's CPU that fits into the restore's idle room, applied to its wall time.
    fits = min(1.0, restore["idle_core_seconds"] / max(fingerprint["busy_core_seconds"], 1e-9))
    return {"seconds": restore["seconds"] + fingerprint["seconds"],
            "restore_seconds": restore["seconds"], "restore_busy_core_seconds": restore["busy_core_seconds"],
            "restore_idle_core_seconds": restore["idle_core_seconds"],
            "restore_idle_share": restore["idle_core_seconds"] / max(restore["seconds"] * (os.cpu_count() or 1), 1e-9),
            "fingerprint_seconds": fingerprint["seconds"],
            "fingerprint_busy_core_seconds": fingerprint["busy_core_seconds"],
            "best_case_saving_seconds": fingerprint["seconds"] * fits,
            "restored_rows": prints[0].total}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny size, one run: checks the script, measures nothing")
    parser.add_argument("--size-mb", type=float, default=1024, help="the seed database's size")
    parser.add_argument("--runs", type=int, default=method.MIN_RUNS, help="runs after the warm-up (at least 3)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "headroom.json")
    args = parser.parse_args(argv)
    size = 2.0 if args.smoke else args.size_mb
    runs = 1 if args.smoke else max(method.MIN_RUNS, args.runs)
    jobs = max(1, min(4, os.cpu_count() or 1))  # what drill and the bench's native script use
    binaries = pg_binaries.for_local_cluster()
    say = method.quiet if args.smoke else (lambda text: print(text, file=sys.stderr, flush=True))
    report: dict[str, Any] = {"machine": {**method.machine(), "postgres": binaries.version}, "smoke": args.smoke,
                              "jobs": jobs, "rows_per_mb": ROWS_PER_MB, "method": method.__doc__}
    with tempfile.TemporaryDirectory(prefix="drill-bench-") as tmp, LocalPostgresCluster(binaries) as cluster:
        say(f"seeding {size:g} MB ...")
        report["database_mb"] = seed(cluster, "bench", size) / 1e6
        report["seeded_rows"] = max(10, int(size * ROWS_PER_MB))  # what run.seed writes
        dump = Path(tmp) / "bench.fc"
        subprocess.run([str(binaries.bin_dir / "pg_dump"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U",
                        "postgres", "-Fc", "-f", str(dump), "bench"], check=True)
        report["dump_mb"] = dump.stat().st_size / 1e6
        report["headroom"] = method.repeated(f"pg_restore -j {jobs}, then the fingerprint",
                                             lambda: one_round(cluster, dump, jobs, binaries),
                                             runs=runs, warm_up=0 if args.smoke else 1, say=say)
    save_and_print(report, args.out, print_table)
    return 0


def print_table(report: dict[str, Any]) -> None:
    h = report["headroom"]

    def cell(key: str, unit: str = "s") -> str:
        found = h[key]
        if unit == "%":
            return f"{100 * found['median']:.0f}% ({100 * found['min']:.0f}-{100 * found['max']:.0f}%)"
        return f"{found['median']:.2f}{unit} ({found['min']:.2f}-{found['max']:.2f})"

    rows = [("measure", "median (min-max)"),
            (f"pg_restore -j {report['jobs']}, {report['database_mb']:.0f} MB: wall", cell("restore_seconds")),
            ("  busy core-seconds", cell("restore_busy_core_seconds", "")),
            ("  idle core-seconds (the room to overlap)", cell("restore_idle_core_seconds", "")),
            ("  idle share of the cores", cell("restore_idle_share", "%")),
            ("fingerprint after it: wall", cell("fingerprint_seconds")),
            ("  busy core-seconds", cell("fingerprint_busy_core_seconds", "")),
            ("best case saving of an overlapped fingerprint", cell("best_case_saving_seconds"))]
    print_rows(rows)
    print(method.load_line(report))


if __name__ == "__main__":
    sys.exit(main())

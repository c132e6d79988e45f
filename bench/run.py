"""drill against the native tools, side by side in one run. Every figure is a ratio to a baseline
measured in the same run on the same data, by the method of bench/method.py (interleaved, a warm-up,
then at least 3 rounds; medians with their range; every sample in the JSON). Prints a table and writes JSON.

    ./dev bench               the full run (about 1 GB of PostgreSQL data; ~10 minutes on 2 idle cores)
    ./dev bench --smoke       a tiny run that checks the suite itself works (part of the tests)

1. overhead: a whole drill (backup with fingerprint, restore into a new database, verify, drop it) through
   `drill run`, against
   the runbook's shell steps (pg_dump | gzip; dropdb; createdb; gunzip | psql; SELECT COUNT(*)) and the
   same with pg_dump -Fc and pg_restore -j.
2. verification speed: drill's fingerprint against COPY ... TO '/dev/null' (how fast the server hands out
   the data).
3. provisioning: time to a ready local PostgreSQL.
4. scaling: drill time and the drill process tree's peak RSS at several data sizes.
"""

from __future__ import annotations

import argparse
import compileall
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import method
import psycopg
from method import HEADER, comparison_row, mark, print_rows, save_and_print

from drill.config import StoreConfig
from drill.stores.postgres import binaries as pg_binaries
from drill.stores.postgres import seed as postgres_seed
from drill.stores.postgres.local import LocalPostgresCluster
from drill.stores.postgres.store import PgServer, PostgresStore

ROWS_PER_MB = 5200  # measured for drill's seed schema (rows of users/orders/order_items, with indexes)
GOALS = {"overhead_vs_fc_j": 1.10, "fingerprint_vs_copy": 0.8, "peak_rss_mb": 200.0}
REPO = Path(__file__).resolve().parent.parent

FEATURE = """Feature: bench
  Scenario: bench drill
    Given the PostgreSQL store "bench"
    And a backup of "bench" is taken
    When "bench" is restored from its latest backup into "bench_copy"
    Then "bench_copy" matches the state of "bench" at the backup
"""
# A live store is never restored over (drill restores into a new database and drops it afterwards),
# which leaves the original for the native scripts; they drop and recreate it instead.

NATIVE_GZIP = """set -euo pipefail
pg_dump {conn} {db} | gzip > "$WORK/dump.sql.gz"
dropdb {conn} {db}
createdb {conn} {db}
gunzip -c "$WORK/dump.sql.gz" | psql -X -q -v ON_ERROR_STOP=1 {conn} -d {db} > /dev/null
for t in users orders order_items; do psql -X -q -t {conn} -d {db} -c "SELECT COUNT(*) FROM $t" > /dev/null; done
"""

NATIVE_FC = """set -euo pipefail
pg_dump -Fc {conn} -f "$WORK/dump.fc" {db}
dropdb {conn} {db}
createdb {conn} {db}
pg_restore -j {jobs} {conn} -d {db} "$WORK/dump.fc"
for t in users orders order_items; do psql -X -q -t {conn} -d {db} -c "SELECT COUNT(*) FROM $t" > /dev/null; done
"""


def seed(cluster: LocalPostgresCluster, db: str, megabytes: float) -> int:
    rows = max(10, int(megabytes * ROWS_PER_MB))
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db}")
    with psycopg.connect(cluster.conninfo(db), autocommit=True) as conn:
        with conn.transaction():
            postgres_seed.seed(conn, rows, lambda _: None)
        conn.execute("VACUUM ANALYZE")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(size[0]) if size else 0


def timed_process(args: list[str], **kwargs: Any) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a process and the children it waited for."""
    start = time.monotonic()
    proc = subprocess.Popen(args, **kwargs)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {proc.returncode}")
    return seconds, usage.ru_maxrss / 1024


def drill_run(cluster: LocalPostgresCluster, db: str, work: Path) -> tuple[float, float]:
    project = work / "project"
    (project / "features").mkdir(parents=True, exist_ok=True)
    (project / "features" / "bench.feature").write_text(FEATURE)
    (project / "drill.toml").write_text(
        f'[drill]\nbackup_dir = "{work / "backups"}"\nreport_dir = "{work / "reports"}"\n\n'
        f'[stores.bench]\nkind = "postgres"\nprovision = "live"\nurl_env = "BENCH_URL"\ndatabase = "{db}"\n'
        f'destructive = true\n')
    env = {**os.environ, "BENCH_URL": cluster.url(db)}
    result = timed_process([sys.executable, "-m", "drill", "run", "--quiet"], cwd=project, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for leftover in (work / "backups").rglob("*"):
        if leftover.is_file():
            leftover.unlink()
    return result


def native(script: str, cluster: LocalPostgresCluster, db: str, work: Path, binaries: pg_binaries.PgBinaries) -> float:
    conn = f"-h 127.0.0.1 -p {cluster.port} -U postgres"
    body = script.format(conn=conn, db=db, jobs=max(1, min(4, os.cpu_count() or 1)))
    env = {**os.environ, "WORK": str(work), "PATH": f"{binaries.bin_dir}:{os.environ['PATH']}"}
    seconds, _ = timed_process(["bash", "-c", body], env=env)
    for leftover in work.glob("dump.*"):
        leftover.unlink()
    return seconds


def fingerprint_seconds(cluster: LocalPostgresCluster, db: str, binaries: pg_binaries.PgBinaries) -> float:
    server = PgServer("127.0.0.1", cluster.port, "postgres", None, binaries)
    store = PostgresStore("bench", StoreConfig(name="bench", kind="postgres"), server, db)
    start = time.perf_counter()
    store.fingerprint()
    return time.perf_counter() - start


def copy_seconds(cluster: LocalPostgresCluster, db: str) -> float:
    with psycopg.connect(cluster.conninfo(db), autocommit=True) as conn:
        start = time.perf_counter()
        for table in postgres_seed.SEED_TABLES:
            conn.execute(f"COPY (SELECT * FROM {table}) TO '/dev/null'")
        return time.perf_counter() - start


def provisioning_seconds(binaries: pg_binaries.PgBinaries) -> float:
    start = time.perf_counter()
    with LocalPostgresCluster(binaries):
        return time.perf_counter() - start


def compile_drill() -> None:
    """drill's modules compiled to bytecode first, as `pip install` leaves them: otherwise a drill run under
    PYTHONDONTWRITEBYTECODE (or from a read-only checkout) compiles every module at each start."""
    for folder in ("drill", "steps"):
        compileall.compile_dir(REPO / folder, quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the suite, measures nothing")
    parser.add_argument("--size-mb", type=float, default=1024, help="dataset for overhead and verification")
    parser.add_argument("--scaling-mb", default="10,100,1024", help="sizes for the scaling run")
    parser.add_argument("--runs", type=int, default=method.MIN_RUNS, help="rounds per comparison (at least 3)")
    parser.add_argument("--no-gzip", action="store_true", help="leave out the comparison with the gzip'd SQL script")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "latest.json")
    args = parser.parse_args(argv)
    size = 2.0 if args.smoke else args.size_mb
    scaling = [1.0, 2.0] if args.smoke else [float(s) for s in args.scaling_mb.split(",")]
    runs = 1 if args.smoke else max(method.MIN_RUNS, args.runs)
    warm_up = 0 if args.smoke else 1
    binaries = pg_binaries.for_local_cluster()
    compile_drill()
    report: dict[str, Any] = {"machine": {**method.machine(), "postgres": binaries.version,
                                          "postgres_source": binaries.source},
                              "smoke": args.smoke, "goals": GOALS, "method": method.__doc__}
    say = method.quiet if args.smoke else (lambda text: print(text, file=sys.stderr, flush=True))
    with tempfile.TemporaryDirectory(prefix="drill-bench-") as tmp, LocalPostgresCluster(binaries) as cluster:
        work = Path(tmp)
        say(f"seeding {size:g} MB ...")
        db_bytes = seed(cluster, "bench", size)

        def drill() -> dict[str, float]:
            seconds, rss = drill_run(cluster, "bench", work)
            return {"seconds": seconds, "peak_rss_mb": rss}

        overhead = method.compare("drill vs pg_dump -Fc / pg_restore -j", drill,
                                  lambda: native(NATIVE_FC, cluster, "bench", work, binaries),
                                  runs=runs, warm_up=warm_up, say=say)
        report["overhead"] = {"database_mb": db_bytes / 1e6, "vs_fc_j": overhead}
        if not args.no_gzip:
            report["overhead"]["vs_gzip_psql"] = method.compare(
                "drill vs pg_dump | gzip, gunzip | psql", drill,
                lambda: native(NATIVE_GZIP, cluster, "bench", work, binaries), runs=runs, warm_up=warm_up, say=say)
        report["verification"] = {"postgres": method.compare(
            "fingerprint vs COPY TO /dev/null", lambda: fingerprint_seconds(cluster, "bench", binaries),
            lambda: copy_seconds(cluster, "bench"), runs=runs, warm_up=warm_up, ratio="baseline/drill", say=say)}
        points = []
        for megabytes in scaling:
            say(f"scaling: {megabytes:g} MB ...")
            if megabytes == size:
                samples = [r["drill"] for r in overhead["rounds"]]
                actual = db_bytes
            else:
                actual = seed(cluster, "scale", megabytes)
                samples = method.repeated(f"drill run, {megabytes:g} MB",
                                          lambda: dict(zip(("seconds", "peak_rss_mb"),
                                                           drill_run(cluster, "scale", work), strict=True)),
                                          runs=runs, warm_up=warm_up, say=say)["samples"]
            points.append({"size_mb": megabytes, "database_mb": actual / 1e6, "samples": samples,
                           "drill_seconds": method.spread([s["seconds"] for s in samples]),
                           "peak_rss_mb": max(s["peak_rss_mb"] for s in samples)})
        report["scaling"] = points
    say("provisioning ...")
    report["provisioning"] = {"postgres": method.repeated("local PostgreSQL ready",
                                                          lambda: provisioning_seconds(binaries),
                                                          runs=runs, warm_up=warm_up, say=say)}
    report["verdicts"] = {
        "overhead_vs_fc_j": method.met(report["overhead"]["vs_fc_j"], GOALS["overhead_vs_fc_j"]),
        "fingerprint_vs_copy": method.met(report["verification"]["postgres"], GOALS["fingerprint_vs_copy"],
                                          at_most=False),
        "peak_rss_mb": max(p["peak_rss_mb"] for p in points) <= GOALS["peak_rss_mb"],
    }
    save_and_print(report, args.out, print_table)
    return 0


def print_table(report: dict[str, Any]) -> None:
    o, v = report["overhead"], report["verification"]["postgres"]
    rows = [
        HEADER,
        comparison_row(f"PostgreSQL drill, {o['database_mb']:.0f} MB vs pg_dump -Fc / pg_restore -j", o["vs_fc_j"],
                       GOALS["overhead_vs_fc_j"]),
    ]
    if "vs_gzip_psql" in o:
        rows.append(comparison_row("PostgreSQL drill vs pg_dump | gzip, gunzip | psql", o["vs_gzip_psql"]))
    rows.append(comparison_row("PostgreSQL fingerprint rate vs COPY TO /dev/null", v, GOALS["fingerprint_vs_copy"],
                               at_most=False))
    ready = report["provisioning"]["postgres"]["seconds"]
    rows.append(("local PostgreSQL ready", method.seconds(ready["median"]), "-",
                 f"range {ready['min']:.2f}-{ready['max']:.2f}s", "-"))
    for point in report["scaling"]:
        rows.append((f"scaling: {point['database_mb']:.0f} MB database",
                     method.seconds(point["drill_seconds"]["median"]), "-", f"{point['peak_rss_mb']:.0f} MB RSS (max)",
                     f"<= {GOALS['peak_rss_mb']:.0f} MB {mark(point['peak_rss_mb'] <= GOALS['peak_rss_mb'])}"))
    print_rows(rows)
    print(method.load_line(report))


if __name__ == "__main__":
    sys.exit(main())

"""What reading a plain SQL backup as data costs (drill.sql_guard), against psql restoring the same file.

    .venv/bin/python bench/sql_guard_bench.py             400,000 ledger rows, dumped plain and with --inserts
    .venv/bin/python bench/sql_guard_bench.py --smoke     a tiny run: checks the script works

A throwaway PostgreSQL cluster is seeded, dumped by pg_dump (plain COPY format, as the runbook's cron
writes, and --inserts, the slow case: one statement per row), and for each file it times: reading it,
`check_file` (the pass before the target is touched), `filtered` with owners skipped (the pass that
feeds psql), and psql restoring it into a new database (the work the guard sits in front of).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drill.stores.postgres import binaries as pg_binaries
from drill.stores.postgres.local import LocalPostgresCluster
from drill.stores.postgres.sql_guard import check_file, filtered


def seed(conninfo: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE entries (id bigserial PRIMARY KEY, account int NOT NULL, amount numeric(12,2), "
                     "note text, booked_at timestamptz NOT NULL, tags jsonb)")
        conn.execute("INSERT INTO entries (account, amount, note, booked_at, tags) "
                     "SELECT g %% 50, (g %% 997) / 10.0, CASE WHEN g %% 7 = 0 THEN NULL ELSE 'entry ' || g END, "
                     "timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute', "
                     "jsonb_build_object('n', g, 'even', g %% 2 = 0) FROM generate_series(1, %s) g", (rows,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--smoke", action="store_true", help="2,000 rows")
    args = parser.parse_args()
    rows = 2_000 if args.smoke else args.rows
    tools = pg_binaries.for_local_cluster()
    with LocalPostgresCluster(tools) as cluster, tempfile.TemporaryDirectory(prefix="drill-bench-sql-") as tmp:
        import psycopg

        with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE ledger")
        seed(cluster.conninfo("ledger"), rows)
        env = {"PATH": os.environ.get("PATH", "")}
        base = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
        print(f"{rows:,} rows; PostgreSQL {tools.version}; load average {os.getloadavg()[0]:.1f}")
        print(f"{'dump':<8} {'size':>8} {'statements':>10} {'read':>7} {'check':>7} {'MB/s':>6} {'filter':>7} "
              f"{'psql':>7}")
        for name, extra in (("copy", []), ("inserts", ["--inserts"])):
            path = Path(tmp) / f"{name}.sql"
            subprocess.run([tools.path("pg_dump"), *base, "-d", "ledger", "-f", str(path), *extra], env=env,
                           check=True)
            size = path.stat().st_size / 1e6
            started = time.perf_counter()
            path.read_bytes()
            read = time.perf_counter() - started
            started = time.perf_counter()
            summary = check_file(path, False, "ledger")
            check = time.perf_counter() - started
            started = time.perf_counter()
            for _ in filtered(path, False, "ledger", skip_owners=True):
                pass
            filtering = time.perf_counter() - started
            with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE restored_{name}")
            started = time.perf_counter()
            subprocess.run([tools.path("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *base, "-d", f"restored_{name}",
                            "-f", str(path)], env=env, check=True, capture_output=True)
            psql = time.perf_counter() - started
            print(f"{name:<8} {size:>6.1f}MB {summary.statements:>10,} {read:>6.2f}s {check:>6.2f}s "
                  f"{size / check:>6.0f} {filtering:>6.2f}s {psql:>6.2f}s")


if __name__ == "__main__":
    main()

"""Stores other than PostgreSQL against their native tools, side by side in one run: verification
speed, fingerprint memory at growing sizes, and provisioning time. Prints a table and writes JSON.

    ./dev bench --stores            the full run (100,000 keys/documents per store; a few minutes)
    python bench/store_bench.py --smoke   tiny sizes: checks the suite works (part of the tests)

1. verification speed: drill's fingerprint against the fastest way the server hands out all its data:
   Redis: `redis-cli --rdb -` to /dev/null (the server serialises every key); MongoDB: draining a plain
   find() cursor over every collection.
2. flat memory: the fingerprint runs in a child process that reports its peak RSS (VmHWM) at each size;
   the goal is a peak under 200 MB that does not grow with the data.
3. provisioning: time to a ready throwaway server (median of 3): Redis, the MongoDB wire server, the GCS
   emulator (fake-gcs-server, bucket made) and the Firestore emulator.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_table import HEADER, mark, print_rows, save_and_print

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.provision.factory import provision
from drill.stores.base import Store

GOALS = {"fingerprint_vs_native": 0.8, "peak_rss_mb": 200.0, "rss_growth": 1.25}
KINDS = ("redis", "mongodb")
# Provisioning is measured for every local server drill starts (PostgreSQL: bench/run.py).
PROVISIONED = ("redis", "mongodb", "gcs", "firestore")


# -- how a child process reaches a store the parent provisioned ------------------------------------------------

def attach_info(store: Store) -> dict[str, Any]:
    if store.kind == "redis":
        return {"port": store.server.port}  # type: ignore[attr-defined]
    if store.kind == "mongodb":
        return {"uri": store.server.uri, "database": store.database_name}  # type: ignore[attr-defined]
    raise ValueError(store.kind)


def attach(kind: str, info: dict[str, Any]) -> Store:
    if kind == "redis":
        from drill.stores.redis.store import RedisServer, RedisStore
        return RedisStore(name="bench", config=StoreConfig(name="bench", kind="redis"),
                          server=RedisServer(host="127.0.0.1", port=int(info["port"])))
    if kind == "mongodb":
        from drill.stores.mongodb.store import MongoServer, MongoStore
        return MongoStore(name="bench", config=StoreConfig(name="bench", kind="mongodb"),
                          server=MongoServer(uri=info["uri"]), database_name=info["database"])
    raise ValueError(kind)


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(kind: str, info: dict[str, Any]) -> None:
    store = attach(kind, info)
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    printed = store.fingerprint()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rss_before_mb": before, "peak_rss_mb": _status_mb("VmHWM"),
                      "total": printed.total}))


def fingerprint_in_child(store: Store) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", store.kind, json.dumps(attach_info(store))],
                          capture_output=True, text=True, check=True, timeout=3600)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- native baselines ---------------------------------------------------------------------------------------------

def native_seconds(store: Store) -> tuple[str, float]:
    if store.kind == "redis":
        port = store.server.port  # type: ignore[attr-defined]
        # Redis 7 waits repl-diskless-sync-delay (5 s) for more replicas before streaming: not data speed.
        store.execute_command("CONFIG", "SET", "repl-diskless-sync-delay", "0")  # type: ignore[attr-defined]
        start = time.perf_counter()
        # `--rdb -` streams the RDB to stdout (fsync on /dev/null itself fails), thrown away here.
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--rdb", "-"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=3600)
        return "redis-cli --rdb -", time.perf_counter() - start
    if store.kind == "mongodb":
        database = store.database()  # type: ignore[attr-defined]
        start = time.perf_counter()
        for name in database.list_collection_names():
            for _document in database[name].find():
                pass
        return "find() drained", time.perf_counter() - start
    raise ValueError(store.kind)


# -- the run ------------------------------------------------------------------------------------------------------

def provisioned(kind: str, cleanup: CleanupStack) -> Store:
    return provision(StoreConfig(name="bench", kind=kind), cleanup)


def provisioning_seconds(kind: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        cleanup = CleanupStack()
        start = time.perf_counter()
        try:
            provisioned(kind, cleanup)
            times.append(time.perf_counter() - start)
        finally:
            cleanup.run()
    return statistics.median(times)


def bench_kind(kind: str, sizes: list[int], repeats: int, say: Callable[[str], None]) -> dict[str, Any]:
    cleanup = CleanupStack()
    try:
        store = provisioned(kind, cleanup)
        points = []
        for size in sizes:
            say(f"{kind}: seeding up to {size} {store.unit} ...")
            store.lose()  # seeds are deterministic and refuse a non-empty store: start empty at each size
            store.seed(size)
            runs = [fingerprint_in_child(store) for _ in range(repeats)]
            best = min(runs, key=lambda r: float(r["seconds"]))
            assert best["total"] == size, f"{kind}: fingerprint counted {best['total']}, seeded {size}"
            points.append({"items": size, "fingerprint_seconds": best["seconds"],
                           "peak_rss_mb": max(float(r["peak_rss_mb"]) for r in runs),
                           "rss_before_mb": best["rss_before_mb"]})
        say(f"{kind}: native baseline ...")
        baseline, native = min((native_seconds(store) for _ in range(repeats)), key=lambda pair: pair[1])
        largest = points[-1]
        return {"unit": store.unit, "points": points, "native": baseline, "native_seconds": native,
                "ratio": native / largest["fingerprint_seconds"],
                "rss_growth": largest["peak_rss_mb"] / points[0]["peak_rss_mb"],
                "provisioning_seconds": provisioning_seconds(kind, repeats)}
    finally:
        cleanup.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the suite, measures nothing")
    parser.add_argument("--sizes", default="10000,100000", help="items per store for the memory run")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "stores.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.child:
        child(args.child, json.loads(rest[0]))
        return 0
    sizes = [200, 1000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    repeats = 1 if args.smoke else 3
    say = (lambda *_: None) if args.smoke else (lambda text: print(text, file=sys.stderr, flush=True))
    report: dict[str, Any] = {"smoke": args.smoke, "goals": GOALS, "cpus": os.cpu_count(), "stores": {}}
    for kind in args.kinds.split(","):
        report["stores"][kind] = bench_kind(kind, sizes, repeats, say)
    report["provisioning"] = {}
    for kind in PROVISIONED:
        say(f"{kind}: provisioning ...")
        found = report["stores"].get(kind)
        report["provisioning"][kind] = found["provisioning_seconds"] if found else provisioning_seconds(kind, repeats)
    save_and_print(report, args.out, print_table)
    return 0


def print_table(report: dict[str, Any]) -> None:
    rows: list[tuple[str, ...]] = [HEADER]
    for kind, found in report["stores"].items():
        largest = found["points"][-1]
        rows.append((f"{kind}: fingerprint rate, {largest['items']} {found['unit']} vs {found['native']}",
                     f"{largest['fingerprint_seconds']:.2f}s", f"{found['native_seconds']:.2f}s",
                     f"{found['ratio']:.2f}x",
                     f">= {GOALS['fingerprint_vs_native']}x {mark(found['ratio'] >= GOALS['fingerprint_vs_native'])}"))
        for point in found["points"]:
            rows.append((f"{kind}: fingerprint peak RSS at {point['items']} {found['unit']}", "-", "-",
                         f"{point['peak_rss_mb']:.0f} MB",
                         f"<= {GOALS['peak_rss_mb']:.0f} MB {mark(point['peak_rss_mb'] <= GOALS['peak_rss_mb'])}"))
        rows.append((f"{kind}: RSS growth {found['points'][0]['items']} -> {largest['items']}", "-", "-",
                     f"{found['rss_growth']:.2f}x",
                     f"<= {GOALS['rss_growth']}x {mark(found['rss_growth'] <= GOALS['rss_growth'])}"))
    for kind, seconds in report["provisioning"].items():
        rows.append((f"{kind}: local server ready", f"{seconds:.2f}s", "-", "-", "-"))
    print_rows(rows)


if __name__ == "__main__":
    sys.exit(main())

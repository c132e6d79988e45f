"""Stores other than PostgreSQL against their native limits, side by side in one run: verification
speed, fingerprint memory at growing sizes, and provisioning time. Prints a table and writes JSON.

    ./dev bench --stores            the full run (100,000 keys/documents per store; a few minutes)
    python bench/store_bench.py --smoke   tiny sizes: checks the suite works (part of the tests)

Every figure by the method of bench/method.py: interleaved, one warm-up, then at least 3 rounds; the
median with its range; every sample in the JSON.

1. verification speed at the largest size, drill's fingerprint (in a child process) against:
   Redis: the server's own full-dataset digest, `DEBUG DIGEST`, on a throwaway server the bench starts with
   `--enable-debug-command local` (the goal: drill <= 1.5x its time). `redis-cli --rdb` is kept as an
   informative row: a raw serialisation without hashing, which no logical per-key hash can approach.
   The same Redis rounds are also compared by redis-server's own CPU time (INFO cpu), where both run:
   that ratio holds on a loaded machine, where wall times do not.
   MongoDB: draining a plain find() cursor over every collection (the goal: a rate >= 1.0x).
2. flat memory: the fingerprint's child process reports its peak RSS (VmHWM) at each size; the goal is a
   peak under 200 MB that does not grow with the data.
3. provisioning: time to a ready throwaway server: Redis, the MongoDB wire server, the GCS emulator
   (fake-gcs-server, bucket made) and the Firestore emulator.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import method
from method import HEADER, comparison_row, mark, print_rows, save_and_print

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.provision.factory import provision
from drill.stores.base import Store

GOALS = {"redis_vs_debug_digest": 1.5, "mongodb_vs_find": 1.0, "peak_rss_mb": 200.0, "rss_growth": 1.25}
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

def redis_server_cpu(store: Store) -> float:
    """CPU seconds redis-server has used (INFO cpu: user + system): both drill's fingerprint (a Lua script)
    and DEBUG DIGEST run inside the server, so their CPU is a comparison a busy machine does not distort."""
    info = store.server.client(0).info("cpu")  # type: ignore[attr-defined]
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def debug_digest_seconds(store: Store) -> dict[str, float]:
    client = store.server.client(0)  # type: ignore[attr-defined]
    try:
        cpu = redis_server_cpu(store)
        start = time.perf_counter()
        client.execute_command("DEBUG", "DIGEST")
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "server_cpu_seconds": redis_server_cpu(store) - cpu}
    finally:
        client.close()


def redis_fingerprint_in_child(store: Store) -> dict[str, Any]:
    cpu = redis_server_cpu(store)
    found = fingerprint_in_child(store)
    return {**found, "server_cpu_seconds": redis_server_cpu(store) - cpu}


def redis_rdb_seconds(store: Store) -> float:
    port = store.server.port  # type: ignore[attr-defined]
    # Redis 7 waits repl-diskless-sync-delay (5 s) for more replicas before streaming: not data speed.
    store.execute_command("CONFIG", "SET", "repl-diskless-sync-delay", "0")  # type: ignore[attr-defined]
    start = time.perf_counter()
    # `--rdb -` streams the RDB to stdout (fsync on /dev/null itself fails), thrown away here.
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--rdb", "-"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=3600)
    return time.perf_counter() - start


def find_drained_seconds(store: Store) -> float:
    database = store.database()  # type: ignore[attr-defined]
    start = time.perf_counter()
    for name in database.list_collection_names():
        for _document in database[name].find():
            pass
    return time.perf_counter() - start


# Per kind: (baseline name, its timer, ratio kind, goal, goal is an upper bound), then informative baselines.
BASELINES: dict[str, tuple[str, Callable[[Store], Any], str, float, bool]] = {
    "redis": ("DEBUG DIGEST", debug_digest_seconds, "drill/baseline", GOALS["redis_vs_debug_digest"], True),
    "mongodb": ("find() drained", find_drained_seconds, "baseline/drill", GOALS["mongodb_vs_find"], False),
}
INFORMATIVE: dict[str, tuple[str, Callable[[Store], float]]] = {"redis": ("redis-cli --rdb -", redis_rdb_seconds)}


# -- the run ------------------------------------------------------------------------------------------------------

def provisioned(kind: str, cleanup: CleanupStack) -> Store:
    return provision(StoreConfig(name="bench", kind=kind), cleanup)


def provisioning_seconds(kind: str) -> float:
    cleanup = CleanupStack()
    start = time.perf_counter()
    try:
        provisioned(kind, cleanup)
        return time.perf_counter() - start
    finally:
        cleanup.run()


@contextmanager
def bench_store(kind: str) -> Iterator[Store]:
    """The store a kind is measured on: Redis, a throwaway server started here with DEBUG enabled (drill's own
    throwaway servers do not enable it); MongoDB, drill's throwaway server."""
    if kind == "redis":
        from drill.stores.redis.local import LocalRedisServer, redis_server_binary, redis_server_version
        binary = redis_server_binary()
        server = LocalRedisServer(binary, version=redis_server_version(binary),
                                  extra_args=("--enable-debug-command", "local"))
        server.start()
        try:
            yield attach("redis", {"port": server.port})
        finally:
            server.stop()
        return
    cleanup = CleanupStack()
    try:
        yield provisioned(kind, cleanup)
    finally:
        cleanup.run()


def emptied(store: Store) -> None:
    """Seeds are deterministic and refuse a non-empty store: start empty at each size."""
    if store.kind == "redis":
        store.execute_command("FLUSHALL")  # type: ignore[attr-defined]
    else:
        store.lose()


def bench_kind(kind: str, sizes: list[int], runs: int, warm_up: int, say: method.Say) -> dict[str, Any]:
    with bench_store(kind) as store:
        points = []
        comparison: dict[str, Any] = {}
        informative: dict[str, Any] = {}
        for number, size in enumerate(sizes):
            say(f"{kind}: seeding {size} {store.unit} ...")
            emptied(store)
            store.seed(size)
            if number < len(sizes) - 1:
                found = method.repeated(f"{kind}: fingerprint at {size}", lambda: fingerprint_in_child(store),
                                        runs=runs, warm_up=warm_up, say=say)
                samples = found["samples"]
            else:  # the largest size: drill against its baseline, interleaved; its samples give the memory too
                name, timer, ratio, _goal, _at_most = BASELINES[kind]
                measure = redis_fingerprint_in_child if kind == "redis" else fingerprint_in_child
                comparison = method.compare(f"{kind}: fingerprint vs {name}", lambda m=measure: m(store),
                                            lambda t=timer: t(store), runs=runs, warm_up=warm_up, ratio=ratio, say=say)
                comparison["baseline"] = name
                if kind == "redis":  # the same rounds by the server's CPU: meaningful on a loaded machine too
                    comparison["server_cpu_ratio"] = method.spread(
                        [r["drill"]["server_cpu_seconds"] / max(r["baseline"]["server_cpu_seconds"], 1e-6)
                         for r in comparison["rounds"]])
                samples = [r["drill"] for r in comparison["rounds"]]
                for other, other_timer in ([INFORMATIVE[kind]] if kind in INFORMATIVE else []):
                    informative = method.compare(f"{kind}: fingerprint vs {other}", lambda: fingerprint_in_child(store),
                                                 lambda t=other_timer: t(store), runs=runs, warm_up=warm_up,
                                                 ratio="baseline/drill", say=say)
                    informative["baseline"] = other
            assert all(s["total"] == size for s in samples), f"{kind}: fingerprint counted {samples}, seeded {size}"
            points.append({"items": size, "samples": samples,
                           "fingerprint_seconds": method.spread([s["seconds"] for s in samples]),
                           "peak_rss_mb": max(float(s["peak_rss_mb"]) for s in samples)})
        return {"unit": store.unit, "points": points, "vs_native": comparison, "informative": informative,
                "rss_growth": points[-1]["peak_rss_mb"] / points[0]["peak_rss_mb"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the suite, measures nothing")
    parser.add_argument("--sizes", default="10000,100000", help="items per store for the memory run")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--provisioned", default=",".join(PROVISIONED), help="kinds whose start-up is timed")
    parser.add_argument("--runs", type=int, default=method.MIN_RUNS, help="rounds per comparison (at least 3)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "stores.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.child:
        child(args.child, json.loads(rest[0]))
        return 0
    sizes = [200, 1000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    runs = 1 if args.smoke else max(method.MIN_RUNS, args.runs)
    warm_up = 0 if args.smoke else 1
    say = method.quiet if args.smoke else (lambda text: print(text, file=sys.stderr, flush=True))
    report: dict[str, Any] = {"machine": method.machine(), "smoke": args.smoke, "goals": GOALS,
                              "method": method.__doc__, "stores": {}, "provisioning": {}}
    for kind in [k for k in args.kinds.split(",") if k]:
        report["stores"][kind] = bench_kind(kind, sizes, runs, warm_up, say)
    for kind in [k for k in args.provisioned.split(",") if k]:
        say(f"{kind}: provisioning ...")
        report["provisioning"][kind] = method.repeated(f"{kind} ready", lambda k=kind: provisioning_seconds(k),
                                                       runs=runs, warm_up=warm_up, say=say)
    report["verdicts"] = {kind: method.met(found["vs_native"], BASELINES[kind][3], at_most=BASELINES[kind][4])
                          for kind, found in report["stores"].items()}
    save_and_print(report, args.out, print_table)
    return 0


def print_table(report: dict[str, Any]) -> None:
    rows: list[tuple[str, ...]] = [HEADER]
    for kind, found in report["stores"].items():
        largest = found["points"][-1]
        name, _timer, ratio, goal, at_most = BASELINES[kind]
        what = "time" if ratio == "drill/baseline" else "rate"
        rows.append(comparison_row(f"{kind}: fingerprint {what}, {largest['items']} {found['unit']} vs {name}",
                                   found["vs_native"], goal, at_most=at_most))
        if "server_cpu_ratio" in found["vs_native"]:
            cpu = found["vs_native"]["server_cpu_ratio"]
            rows.append((f"{kind}: fingerprint server CPU vs {name} (load-independent)", "-", "-",
                         method.ratio_text(cpu), f"<= {goal}x {mark(cpu['median'] <= goal)}"))
        if found["informative"]:
            rows.append(comparison_row(f"{kind}: fingerprint rate vs {found['informative']['baseline']} "
                                       "(no hashing; informative)", found["informative"]))
        for point in found["points"]:
            rows.append((f"{kind}: fingerprint peak RSS at {point['items']} {found['unit']}", "-", "-",
                         f"{point['peak_rss_mb']:.0f} MB (max)",
                         f"<= {GOALS['peak_rss_mb']:.0f} MB {mark(point['peak_rss_mb'] <= GOALS['peak_rss_mb'])}"))
        rows.append((f"{kind}: RSS growth {found['points'][0]['items']} -> {largest['items']}", "-", "-",
                     f"{found['rss_growth']:.2f}x",
                     f"<= {GOALS['rss_growth']}x {mark(found['rss_growth'] <= GOALS['rss_growth'])}"))
    for kind, found in report["provisioning"].items():
        ready = found["seconds"]
        rows.append((f"{kind}: local server ready", method.seconds(ready["median"]), "-",
                     f"range {ready['min']:.2f}-{ready['max']:.2f}s", "-"))
    print_rows(rows)
    print(method.load_line(report))


if __name__ == "__main__":
    sys.exit(main())

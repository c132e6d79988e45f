"""Whole-system restore: PostgreSQL, Redis and MongoDB restored in parallel, against the same stores one after
the other. Both runs are real `drill run`s of the same feature on the same data sizes; only drill.toml
differs (one stage for all, or one stage each, which makes the restore sequential).

    .venv/bin/python bench/system_bench.py            # default sizes (each store's restore takes seconds)
    .venv/bin/python bench/system_bench.py --smoke    # tiny sizes: checks the script works

Figures: the parallel whole-system time; the sequential one (= the sum of the stores' own restore and
verify times, each alone); the slowest store alone; parallel / slowest (goal: <= 1.2x) and parallel / sum
(well under 1). The machine's CPU counters (/proc/stat, sampled every 50 ms) give each store's busy
core-seconds while it is restored alone, and so the **two-core bound**: no schedule of the same work on the
machine's cores can end before max(slowest alone, the stores' core-seconds / cores), a ratio to the slowest
store alone that no code change short of doing less work can beat. By the method of bench/method.py: the
two runs interleaved, one warm-up, then at least 3 rounds; the median ratio with its range; every sample in
the JSON (bench/results/system.json, or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
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


_TICK = os.sysconf("SC_CLK_TCK")


def busy_core_seconds() -> float:
    """Busy seconds summed over every core since boot: the first line of /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _TICK


# The server process of the slowest store, found by its command line: how much of a core it gets decides whether
# the store keeps beside the others the pace it has alone (PostgreSQL's backends come and go; Redis's server is
# replaced when it is lost).
SERVERS = {"notifydb": ("nx-27017", "nx_27017", "mongod")}


def _process_seconds(pid: str) -> float | None:
    """CPU seconds (user + system) of one process, from /proc/PID/stat; None once it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else (int(fields[11]) + int(fields[12])) / _TICK


def _find_server(names: tuple[str, ...]) -> str | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(name in command for name in names) and "system_bench" not in command:
                return entry.name
    return None


class CpuSampler:
    """The machine's busy core-seconds, and each store server's own CPU seconds, every 50 ms, in a thread, with
    each sample's wall time: the CPU inside any window of a run (a store's restore and verify) is read from the
    samples afterwards."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        # store -> (wall time, pid, its CPU seconds): a store may stop its server and start another (`lost`)
        self.servers: dict[str, list[tuple[float, str, float]]] = {store: [] for store in SERVERS}
        self._pids: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _take(self) -> None:
        now = time.time()
        self.samples.append((now, busy_core_seconds()))
        for store, names in SERVERS.items():
            pid = self._pids.get(store)
            seconds = _process_seconds(pid) if pid else None
            if seconds is None:  # not found yet, or gone (a version probe, a stopped server): look again
                pid = _find_server(names)
                seconds = _process_seconds(pid) if pid else None
            if pid and seconds is not None:
                self._pids[store] = pid
                self.servers[store].append((now, pid, seconds))

    def _sample(self) -> None:
        while True:
            self._take()
            if self._stop.wait(0.05):
                self._take()
                return

    @staticmethod
    def _at(samples: list[tuple[float, float]], when: float) -> float:
        before = [s for s in samples if s[0] <= when] or samples[:1]
        after = [s for s in samples if s[0] >= when] or samples[-1:]
        (t0, b0), (t1, b1) = before[-1], after[0]
        return b0 if t1 == t0 else b0 + (b1 - b0) * (when - t0) / (t1 - t0)

    def busy_between(self, start: float, end: float) -> float:
        return self._at(self.samples, end) - self._at(self.samples, start)

    def server_between(self, store: str, start: float, end: float) -> float | None:
        """The CPU seconds the store's server process used in the window: the process running at its end, from
        the window's start or its own (None: no such process was seen)."""
        seen = [sample for sample in self.servers.get(store) or [] if sample[0] <= end]
        if not seen:
            return None
        pid = seen[-1][1]
        samples = [(when, seconds) for when, sample_pid, seconds in seen if sample_pid == pid]
        started_inside = samples[0][0] > start
        return self._at(samples, end) - (0.0 if started_inside else self._at(samples, start))


def _when(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def run(toml: str, sizes: dict[str, int]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="drill-system-bench-") as tmp, CpuSampler() as cpu:
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
        windows: dict[str, list[float]] = {}
        for phase in scenario["phases"]:  # where each store's time went: restore, then verify
            if phase["name"] in ("restore", "verify") and phase["store"] in system["stores"]:
                system["stores"][phase["store"]][f"{phase['name']}_seconds"] = phase["seconds"]
                windows.setdefault(phase["store"], []).extend((_when(phase["started_at"]), _when(phase["ended_at"])))
    for name, window in windows.items():  # the machine's busy core-seconds while the store was restored
        system["stores"][name]["busy_core_seconds"] = cpu.busy_between(min(window), max(window))
        server = cpu.server_between(name, min(window), max(window))
        if server is not None:  # the share of a core its server process got meanwhile
            system["stores"][name]["server_core_share"] = server / (max(window) - min(window))
    start, end = min(min(w) for w in windows.values()), max(max(w) for w in windows.values())
    system["busy_core_seconds"] = cpu.busy_between(start, end)
    system["busy_share"] = system["busy_core_seconds"] / ((end - start) * (os.cpu_count() or 1))
    return system


def parallel_run(sizes: dict[str, int]) -> dict[str, Any]:
    system = run(PARALLEL, sizes)
    return {"seconds": system["seconds"], "stores": system["stores"], "busy_share": system["busy_share"]}


def slowest_alone(sizes: dict[str, int]) -> dict[str, Any]:
    """The stores one after the other: the slowest store's own time is the baseline."""
    system = run(SEQUENTIAL, sizes)
    alone = {name: s["seconds"] for name, s in system["stores"].items()}
    work = sum(s["busy_core_seconds"] for s in system["stores"].values())
    cores = os.cpu_count() or 1
    return {"seconds": max(alone.values()), "sequential_seconds": system["seconds"], "core_seconds_alone": work,
            "two_core_bound_ratio": max(max(alone.values()), work / cores) / max(alone.values()),
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
              "core_seconds_alone": method.spread([r["baseline"]["core_seconds_alone"] for r in found["rounds"]]),
              "two_core_bound_ratio": method.spread([r["baseline"]["two_core_bound_ratio"] for r in found["rounds"]]),
              "parallel_busy_share": method.spread([r["drill"]["busy_share"] for r in found["rounds"]]),
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
    bound, work, busy = report["two_core_bound_ratio"], report["core_seconds_alone"], report["parallel_busy_share"]
    rows.append((f"bound on {report['machine'].get('cpus', '?')} cores: max(slowest, core-seconds / cores) vs slowest",
                 method.seconds(work["median"]) + " cpu", method.seconds(found["baseline_seconds"]["median"]),
                 method.ratio_text(bound), "-"))
    rows.append(("cores busy during the parallel restore", f"{busy['median']:.0%}", "-",
                 f"range {busy['min']:.0%}-{busy['max']:.0%}", "-"))
    for name in found["rounds"][0]["baseline"]["stores"]:
        alone = [r["baseline"]["stores"][name] for r in found["rounds"]]
        together = [r["drill"]["stores"][name] for r in found["rounds"]]
        rows.append((f"{name}: restore + verify, in parallel vs alone",
                     method.seconds(method.spread([s["seconds"] for s in together])["median"]),
                     method.seconds(method.spread([s["seconds"] for s in alone])["median"]), "-", "-"))
        if all("server_core_share" in s for s in alone + together):
            rows.append((f"{name}: its server's share of a core, in parallel vs alone",
                         f"{method.spread([s['server_core_share'] for s in together])['median']:.0%}",
                         f"{method.spread([s['server_core_share'] for s in alone])['median']:.0%}", "-", "-"))
    print_rows(rows)
    print(method.load_line(report))


if __name__ == "__main__":
    main()

"""The one way every benchmark here measures, so that a figure means the same in every table.

- **Interleaved.** A comparison runs drill and its baseline back to back, round after round, the order
  alternating (drill first, then baseline first, ...): a change of the machine's load or a cache
  warmed by the previous run hits both sides alike.
- **Warm-up, then at least 3 rounds.** One warm-up run of each side first (page cache, server
  buffers, imported modules): kept in the JSON, left out of the figures.
- **Medians with their range.** Each round gives one ratio; a table quotes the median ratio and its
  min-max, and the median seconds of each side. Nothing else: no best-of, no single run.
- **Every sample in the JSON**, with the machine's load average before and after each comparison, so
  that a figure can always be traced to the state of the machine that gave it.

A measure without a baseline (start-up time, peak memory) is `repeated` the same way: a warm-up, then
N runs, the median and the range.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MIN_RUNS = 3

# What one run of a side returns: its seconds, or a dict with "seconds" and anything else worth keeping.
Measured = float | dict[str, Any]
Say = Callable[[str], None]


def quiet(_text: str) -> None:
    return None


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def machine() -> dict[str, Any]:
    """The state of the machine a report was taken on: the README quotes it next to every figure."""
    try:
        text = Path("/proc/meminfo").read_text()
        meminfo = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        memory_gib = round(int(meminfo["MemTotal"].split()[0]) / 2**20, 1)
    except (OSError, KeyError, ValueError):
        memory_gib = None
    return {"cpus": os.cpu_count(), "memory_gib": memory_gib, "python": platform.python_version(),
            "platform": platform.platform(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "load_average_at_start": load_average()}


def sample(run: Callable[[], Measured]) -> dict[str, Any]:
    started = time.perf_counter()
    measured = run()
    if isinstance(measured, dict):
        return {"seconds": float(measured.get("seconds", time.perf_counter() - started)),
                **{k: v for k, v in measured.items() if k != "seconds"}}
    return {"seconds": float(measured)}


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def compare(name: str, drill: Callable[[], Measured], baseline: Callable[[], Measured], *, runs: int = MIN_RUNS,
            warm_up: int = 1, ratio: str = "drill/baseline", say: Say = quiet) -> dict[str, Any]:
    """drill against its baseline, interleaved: `warm_up` runs of each, then `runs` rounds alternating which
    side goes first. `ratio` is "drill/baseline" (a time ratio: lower is better) or "baseline/drill" (a rate
    ratio: how fast drill goes relative to the baseline; higher is better)."""
    if ratio not in ("drill/baseline", "baseline/drill"):
        raise ValueError(ratio)
    load_before = load_average()
    warm = []
    for _ in range(warm_up):
        say(f"{name}: warm-up")
        warm.append({"drill": sample(drill), "baseline": sample(baseline)})
    rounds = []
    for number in range(runs):
        say(f"{name}: round {number + 1} of {runs}")
        if number % 2 == 0:
            first = sample(drill)
            second = sample(baseline)
            measured = {"drill": first, "baseline": second, "order": "drill first"}
        else:
            second = sample(baseline)
            first = sample(drill)
            measured = {"drill": first, "baseline": second, "order": "baseline first"}
        d, b = measured["drill"]["seconds"], measured["baseline"]["seconds"]
        measured["ratio"] = d / b if ratio == "drill/baseline" else b / d
        rounds.append(measured)
    ratios = [r["ratio"] for r in rounds]
    return {
        "name": name, "ratio_kind": ratio, "runs": runs, "warm_up": warm, "rounds": rounds,
        "drill_seconds": spread([r["drill"]["seconds"] for r in rounds]),
        "baseline_seconds": spread([r["baseline"]["seconds"] for r in rounds]),
        "ratio": spread(ratios), "load_average": {"before": load_before, "after": load_average()},
    }


def repeated(name: str, run: Callable[[], Measured], *, runs: int = MIN_RUNS, warm_up: int = 1,
             say: Say = quiet) -> dict[str, Any]:
    """A measure without a baseline: `warm_up` runs, then `runs` runs; the median and range of each field."""
    load_before = load_average()
    warm = [sample(run) for _ in range(warm_up)]
    samples = []
    for number in range(runs):
        say(f"{name}: run {number + 1} of {runs}")
        samples.append(sample(run))
    numeric = [key for key, value in samples[0].items() if isinstance(value, (int, float))]
    return {"name": name, "runs": runs, "warm_up": warm, "samples": samples,
            **{key: spread([float(s[key]) for s in samples]) for key in numeric},
            "load_average": {"before": load_before, "after": load_average()}}


# -- the text table every benchmark prints ----------------------------------------------------------------------

HEADER = ("measure", "drill", "baseline", "ratio: median (min-max)", "goal")


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def seconds(value: float) -> str:
    return f"{value:.2f}s" if value < 10 else f"{value:.1f}s"


def ratio_text(found: dict[str, float]) -> str:
    return f"{found['median']:.2f}x ({found['min']:.2f}-{found['max']:.2f})"


def goal_text(found: dict[str, float], goal: float, at_most: bool) -> str:
    """A goal on the median ratio: `<= goal` (at_most) or `>= goal`."""
    ok = found["median"] <= goal if at_most else found["median"] >= goal
    return f"{'<=' if at_most else '>='} {goal:g}x {mark(ok)}"


def comparison_row(label: str, found: dict[str, Any], goal: float | None = None,
                   at_most: bool = True) -> tuple[str, ...]:
    return (label, seconds(found["drill_seconds"]["median"]), seconds(found["baseline_seconds"]["median"]),
            ratio_text(found["ratio"]), goal_text(found["ratio"], goal, at_most) if goal is not None else "-")


def met(found: dict[str, Any], goal: float, at_most: bool = True) -> bool:
    median = float(found["ratio"]["median"])
    return median <= goal if at_most else median >= goal


def load_line(report: dict[str, Any]) -> str:
    """One line naming the machine state the table was measured in (the README quotes it)."""
    state = report.get("machine", {})
    start = " ".join(f"{v:.1f}" for v in state.get("load_average_at_start", []))
    end = " ".join(f"{v:.1f}" for v in report.get("load_average_at_end", []))
    return f"machine: {state.get('cpus')} cpus, load average {start} at the start, {end} at the end"


def print_rows(rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns as wide as their widest cell; a rule of dashes under the first (header) row."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if number == 0:
            print("  ".join("-" * w for w in widths))


def save_and_print(report: dict[str, Any], out: Path, print_table: Callable[[dict[str, Any]], None]) -> None:
    """Write the report as JSON to `out` (the load average at the end added), print its table and where it is."""
    report.setdefault("load_average_at_end", load_average())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nJSON: {out}")

"""Splitting one run's scenarios into N shares for N machines (`drill run --shard I/N`, 1-based).

Every share computes the same plan from the same inputs, so the shares need not talk to each
other: the scenarios in run order (features sorted, scenarios in file order, outline examples in
table order) and, to balance them, the durations of the last runs in the history. Balanced by
history, the longest scenarios are placed first, each on the share with the least work so far
(a scenario with no past duration counts as the median of the known ones); with no history at
all, scenario k goes to share k mod N (balanced by count). The plan's sha256 is kept in every
share's results, and `drill report merge` refuses shares of different plans, so a history that
changed between two shares' starts is caught rather than silently running a scenario twice.

A scenario's key is `<feature path>:<line>` plus `[<example id>]` for an outline's example: what
stays the same in every clone of the repository.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from pathlib import Path

from drill.errors import DrillError
from drill.report.history import HistoryEntry, read_history, scenario_id
from drill.report.history_store import HistoryStore
from drill.results import ScenarioResult, ShardInfo

RECENT_RUNS = 5  # durations are the median over this many of the latest runs that have the scenario
BALANCE_MODES = ("history", "count")


class ShardError(DrillError):
    """A --shard value or a plan that cannot be used."""


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (1-based: 1/3, 2/3, 3/3) -> (I, N)."""
    found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if found is None:
        raise ShardError(f"--shard {text!r}: write I/N, e.g. --shard 2/3 for the second of three shares (1-based; "
                         f"from a 0-based index such as JOB_COMPLETION_INDEX: --shard $((JOB_COMPLETION_INDEX + 1))/3)")
    index, count = int(found.group(1)), int(found.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ShardError(f"--shard {text!r}: the share must be between 1 and {max(count, 1)} (shares are numbered "
                         f"from 1) and N at least 1")
    return index, count


def key_of(feature: str, line: int, example_id: str | None) -> str:
    return f"{feature}:{line}" + (f"[{example_id}]" if example_id else "")


def scenario_key(result: ScenarioResult) -> str:
    """The key of a scenario in a run's results (the example id is the bracketed end of its pytest node id)."""
    found = re.search(r"\[(.*)\](?:@[^\[\]]*)?$", result.nodeid)
    return key_of(result.feature, result.line, found.group(1) if found else None)


def recent_durations(store: HistoryStore, report_dir: Path, runs: int = RECENT_RUNS) -> dict[str, float]:
    """Scenario id (feature::name) -> median seconds over the latest runs whose results can be read."""
    try:
        entries: list[HistoryEntry] = read_history(report_dir, store)
    except DrillError:
        return {}
    seen: dict[str, list[float]] = {}
    used = 0
    for entry in reversed(entries):
        if used >= runs:
            break
        raw = store.get(entry.results)
        try:
            data = json.loads(raw) if raw is not None else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            continue
        used += 1
        for scenario in data.get("scenarios", []):
            seconds = scenario.get("seconds")
            if isinstance(seconds, int | float) and scenario.get("status") in ("passed", "failed"):
                seen.setdefault(scenario_id(scenario.get("feature", ""), scenario.get("name", "")), []).append(
                    float(seconds))
    return {sid: statistics.median(values) for sid, values in seen.items()}


def plan(keys: list[str], durations: list[float | None], count: int, by: str) -> tuple[list[int], str]:
    """The share (1-based) of each key, and how it was balanced ("history" or "count")."""
    known = [d for d in durations if d is not None]
    if by == "count" or not known:
        return [position % count + 1 for position in range(len(keys))], "count"
    typical = statistics.median(known)
    estimated = [d if d is not None else typical for d in durations]
    loads = [0.0] * count
    shares = [0] * len(keys)
    for position in sorted(range(len(keys)), key=lambda p: (-estimated[p], p)):
        lightest = min(range(count), key=lambda s: (loads[s], s))
        shares[position] = lightest + 1
        loads[lightest] += estimated[position]
    return shares, "history"


def shard_info(keys: list[str], shares: list[int], index: int, count: int, balanced_by: str) -> ShardInfo:
    digest = hashlib.sha256(json.dumps({"order": keys, "shares": shares, "count": count},
                                       separators=(",", ":")).encode()).hexdigest()
    return ShardInfo(index=index, count=count, plan=digest, balanced_by=balanced_by,
                     scenarios=[k for k, s in zip(keys, shares, strict=True) if s == index], order=list(keys))

"""Audit controls: which drills evidence them (`@control:ID` tags) and whether their frequency was kept.

A control ([controls.ID] in drill.toml: a title and `every`) is evidenced by every passing run of a
scenario tagged `@control:ID`. It is kept while its last success is no older than `every`; each
longer gap between successes in the history is a lapse. Runs count at their start time, the
time the history records. Everything here is computed from the history (and the controls the
results recorded), never from a store.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CONTROL_TAG = "control:"


def control_ids(tags: Iterable[str]) -> list[str]:
    """The controls a scenario's tags name: `control:SOC2-CC7.5` -> SOC2-CC7.5 (sorted, once each)."""
    return sorted({t.removeprefix(CONTROL_TAG) for t in tags if t.startswith(CONTROL_TAG) and t != CONTROL_TAG})


def undeclared_tag_problems(tags: Iterable[str], declared: Mapping[str, Any]) -> list[str]:
    """What is wrong with a scenario's @control tags: a control drill.toml does not declare, or no id at all."""
    problems = []
    for tag in sorted(tags):
        if tag == CONTROL_TAG.rstrip(":") or tag == CONTROL_TAG:
            problems.append(f"@{tag} names no control: write @control:ID with an id declared as [controls.ID] "
                            f"in drill.toml")
    for control_id in control_ids(tags):
        if control_id not in declared:
            known = ", ".join(sorted(declared)) or "none declared"
            quoted = control_id if re.fullmatch(r"[A-Za-z0-9_-]+", control_id) else f'"{control_id}"'  # TOML key
            problems.append(f"@control:{control_id} names a control that drill.toml does not declare (controls: "
                            f"{known}); add [controls.{quoted}] with a title and every = \"90 days\"")
    return problems


def format_period(seconds: float) -> str:
    """A control's frequency or an age as people say it: `90 days`, `1 day`, `36 hours`, `45 minutes`."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        # the largest unit that reads well: 1 day, 2.5 days, but 36 hours rather than 1.5 days
        if seconds >= 2 * size or (seconds >= size and seconds % size == 0):
            value = round(seconds / size, 1)
            text = f"{value:g}"
            return f"{text} {unit}{'' if text == '1' else 's'}"
    text = f"{seconds:.3g}"
    return f"{text} second{'' if text == '1' else 's'}"


@dataclass(frozen=True)
class Occurrence:
    """One scenario of one run, as far as controls care."""

    run_id: str
    at: dt.datetime  # when the run started
    scenario_id: str
    name: str
    status: str
    controls: tuple[str, ...]


@dataclass
class ScenarioEvidence:
    """A scenario that evidences a control: its latest result and its latest success."""

    id: str
    name: str
    latest_status: str
    latest_at: dt.datetime
    latest_run: str
    last_success_at: dt.datetime | None = None
    runs: int = 0
    passed: int = 0


@dataclass
class Lapse:
    """A stretch longer than the control's `every` without a success."""

    since: dt.datetime | None  # the success before it (None: before the first success)
    until: dt.datetime  # the next success, or the time of evaluation (still open)
    open: bool  # still running: the control is overdue

    @property
    def seconds(self) -> float:
        return (self.until - self.since).total_seconds() if self.since else 0.0


@dataclass
class ControlStatus:
    id: str
    title: str
    every: float  # seconds
    as_of: dt.datetime
    scenarios: list[ScenarioEvidence] = field(default_factory=list)
    last_success_at: dt.datetime | None = None
    last_success_run: str | None = None
    successes: int = 0
    lapses: list[Lapse] = field(default_factory=list)

    @property
    def overdue(self) -> bool:
        return self.last_success_at is None or (self.as_of - self.last_success_at).total_seconds() > self.every

    @property
    def state(self) -> str:
        """kept | overdue | no evidence (no scenario evidences it) | never passed."""
        if not self.scenarios:
            return "no evidence"
        if self.last_success_at is None:
            return "never passed"
        return "overdue" if self.overdue else "kept"

    @property
    def age_seconds(self) -> float | None:
        return None if self.last_success_at is None else (self.as_of - self.last_success_at).total_seconds()

    @property
    def due_at(self) -> dt.datetime | None:
        return None if self.last_success_at is None else self.last_success_at + dt.timedelta(seconds=self.every)

    def to_dict(self) -> dict[str, Any]:
        def when(value: dt.datetime | None) -> str | None:
            return value.isoformat(timespec="seconds") if value else None

        return {
            "id": self.id, "title": self.title, "every_seconds": self.every, "every": format_period(self.every),
            "state": self.state, "overdue": self.overdue, "as_of": when(self.as_of),
            "last_success_at": when(self.last_success_at), "last_success_run": self.last_success_run,
            "age_seconds": self.age_seconds, "due_at": when(self.due_at), "successes": self.successes,
            "lapses": [{"since": when(lapse.since), "until": when(lapse.until), "open": lapse.open}
                       for lapse in self.lapses],
            "scenarios": [{"id": s.id, "name": s.name, "latest_status": s.latest_status,
                           "latest_at": when(s.latest_at), "latest_run": s.latest_run,
                           "last_success_at": when(s.last_success_at), "runs": s.runs, "passed": s.passed}
                          for s in self.scenarios],
        }


def parse_time(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def occurrences(runs: Iterable[tuple[str, str, Iterable[Any]]]) -> list[Occurrence]:
    """(run id, started_at, scenario points with id/name/status/controls) -> occurrences, oldest first."""
    found: list[Occurrence] = []
    for run_id, started_at, points in runs:
        at = parse_time(started_at)
        if at is None:
            continue
        for point in points:
            found.append(Occurrence(run_id, at, point.id, point.name, point.status, tuple(point.controls)))
    found.sort(key=lambda o: o.at)
    return found


def evaluate(declared: Mapping[str, Mapping[str, Any]], history: list[Occurrence],
             as_of: dt.datetime) -> list[ControlStatus]:
    """Every declared control (id -> {title, every_seconds}) as of `as_of`, from the occurrences up to then."""
    statuses = []
    for control_id, spec in sorted(declared.items()):
        status = ControlStatus(control_id, str(spec.get("title", "")), float(spec.get("every_seconds", 0)), as_of)
        by_scenario: dict[str, ScenarioEvidence] = {}
        successes: list[Occurrence] = []
        for occurrence in history:
            if control_id not in occurrence.controls or occurrence.at > as_of:
                continue
            evidence = by_scenario.setdefault(occurrence.scenario_id, ScenarioEvidence(
                occurrence.scenario_id, occurrence.name, occurrence.status, occurrence.at, occurrence.run_id))
            evidence.latest_status, evidence.latest_at, evidence.latest_run = (occurrence.status, occurrence.at,
                                                                               occurrence.run_id)
            evidence.runs += 1
            if occurrence.status == "passed":
                evidence.passed += 1
                evidence.last_success_at = occurrence.at
                successes.append(occurrence)
        status.scenarios = sorted(by_scenario.values(), key=lambda s: s.name)
        status.successes = len(successes)
        if successes:
            status.last_success_at, status.last_success_run = successes[-1].at, successes[-1].run_id
        status.lapses = _lapses([s.at for s in successes], status.every, as_of)
        statuses.append(status)
    return statuses


def _lapses(successes: list[dt.datetime], every: float, as_of: dt.datetime) -> list[Lapse]:
    lapses = []
    distinct = sorted(set(successes))
    for before, after in itertools.pairwise(distinct):
        if (after - before).total_seconds() > every:
            lapses.append(Lapse(before, after, open=False))
    if distinct and (as_of - distinct[-1]).total_seconds() > every:
        lapses.append(Lapse(distinct[-1], as_of, open=True))
    return lapses

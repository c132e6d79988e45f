"""Targets: RTO and RPO targets from tags and steps, measured and judged (drill.targets reads the tags)."""

from __future__ import annotations

from drill.durations import parse_duration
from drill.errors import TargetMissed
from drill.results import TargetResult
from drill.scenario.state import ScenarioState
from drill.targets import evaluate, missed_message, targets_from_tags


class Targets:
    def __init__(self, state: ScenarioState, tags: set[str]) -> None:
        self.state = state
        state.result.targets = targets_from_tags(tags, state.config)

    def measured(self, metric: str) -> float | None:
        state = self.state
        if metric == "rto":
            # Only a recovery that happened has a recovery time: none before a restore succeeded, none after
            # a restore failed (the clock would otherwise read the time up to now as if it were one).
            return state.clock.rto() if state.restores and not state.recovery_failed else None
        return state.result.rpo_seconds

    def unmeasured_reason(self, metric: str) -> str:
        if metric == "rto" and self.state.recovery_failed:
            return "the restore failed, so there was no recovery to time"
        return f"the scenario has no {'restore' if metric == 'rto' else 'restore from a backup'}"

    def check(self, metric: str, duration_text: str, line: int) -> None:
        target = TargetResult(metric, parse_duration(duration_text), f"step at line {line}")
        self.state.result.targets.append(target)
        self._evaluate(target)
        if target.met is False:
            raise TargetMissed(missed_message(target))

    def _evaluate(self, target: TargetResult) -> None:
        measured = self.measured(target.metric)
        if target.metric == "rto":
            self.state.result.rto_seconds = measured
        evaluate(target, measured, self.unmeasured_reason(target.metric) if measured is None else None)

    def enforce(self, raise_on_miss: bool) -> None:
        """Measure every tag target; raise TargetMissed listing the misses (after a scenario that passed)."""
        missed = []
        for target in self.state.result.targets:
            if target.source.startswith("@"):
                self._evaluate(target)
            if target.met is False:
                missed.append(target)
        if missed and raise_on_miss:
            raise TargetMissed("; ".join(missed_message(t) for t in missed))

"""RTO/RPO targets from tags: `@tier:critical` (tiers from configuration), `@rto:30m`, `@rpo:1h`."""

from __future__ import annotations

from collections.abc import Iterable

from drill.config import Config
from drill.durations import DurationError, format_duration, parse_duration
from drill.results import TargetResult

TAG_PREFIXES = ("tier:", "rto:", "rpo:")


class TagError(ValueError):
    """A target tag that cannot be honoured (unknown tier, unreadable duration)."""


def targets_from_tags(tags: Iterable[str], config: Config) -> list[TargetResult]:
    targets: list[TargetResult] = []
    for tag in sorted(tags):
        name, _, value = tag.partition(":")
        if name == "tier":
            tier = config.tiers.get(value)
            if tier is None:
                known = ", ".join(sorted(config.tiers))
                raise TagError(f"unknown tier in @{tag}; tiers: {known} (add [tiers.{value}] to drill.toml)")
            targets.append(TargetResult("rto", tier.rto, f"@{tag}"))
            targets.append(TargetResult("rpo", tier.rpo, f"@{tag}"))
        elif name in ("rto", "rpo"):
            try:
                seconds = parse_duration(value)
            except DurationError as exc:
                raise TagError(f"@{tag}: {exc}") from None
            if seconds <= 0:
                raise TagError(f"@{tag}: a target must be above 0 (e.g. @{name}:30m)")
            targets.append(TargetResult(name, seconds, f"@{tag}"))
    return targets


def evaluate(target: TargetResult, measured: float | None, unmeasured_reason: str | None = None) -> None:
    """Record the measured figure on the target and whether it is met (a figure that is missing is not met, and
    `unmeasured_reason` says why it is missing, e.g. the restore failed)."""
    target.measured_seconds = measured
    target.unmeasured_reason = unmeasured_reason if measured is None else None
    target.met = measured is not None and measured <= target.target_seconds


def missed_message(target: TargetResult) -> str:
    """What a missed target says: the metric, the figure, the target and where the target came from."""
    what = "recovery time (RTO)" if target.metric == "rto" else "data loss (RPO)"
    if target.measured_seconds is None:
        why = target.unmeasured_reason or (
            f"the scenario has no {'restore' if target.metric == 'rto' else 'restore from a backup'}")
        return (f"{what} target {format_duration(target.target_seconds)} ({target.source}) could not be measured: "
                f"{why}")
    return (f"{what} {format_duration(target.measured_seconds)} exceeds the target "
            f"{format_duration(target.target_seconds)} ({target.source})")

"""RTO/RPO targets from tags: `@tier:critical` (tiers from configuration), `@rto:30m`, `@rpo:1h`."""

from __future__ import annotations

from collections.abc import Iterable

from drill.config import Config
from drill.durations import DurationError, parse_duration
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

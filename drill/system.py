"""Whole-system restores: every store of a scenario, in dependency order, independent ones in parallel.

The order comes from configuration, as the runbook's full-system procedure (infrastructure first,
then the databases, then the applications): `[drill] stages` names the stages in order and each
store's `stage` puts it in one (default: "data", or the first stage when there is no "data");
`depends_on` orders stores further, also inside a stage. Stores of one wave have no order between
them and are restored at the same time, each in its own thread; a wave starts when the one
before it has been restored and verified. Each store gets its own RTO (from the disaster to its
own verified restore), checked against its `rto` target; the whole gets the scenario's RTO.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from drill.config import Config
from drill.errors import ConfigError, StoreError


@dataclass
class StoreOutcome:
    name: str
    stage: str
    wave: int
    started: float  # seconds after the clock started
    finished: float
    error: str | None = None

    def evidence(self) -> dict[str, Any]:
        return {"stage": self.stage, "wave": self.wave, "started_after_seconds": round(self.started, 3),
                "rto_seconds": round(self.finished, 3), "seconds": round(self.finished - self.started, 3),
                "error": self.error}


@dataclass
class Plan:
    waves: list[list[str]]
    stages: dict[str, str] = field(default_factory=dict)

    def evidence(self) -> list[dict[str, Any]]:
        return [{"wave": i + 1, "stores": wave, "stages": sorted({self.stages[n] for n in wave})}
                for i, wave in enumerate(self.waves)]


def stage_of(name: str, config: Config) -> str:
    found = config.stores.get(name)
    if found is not None and found.stage is not None:
        return found.stage
    return "data" if "data" in config.stages else config.stages[0]


def plan(names: list[str], config: Config) -> Plan:
    """Group stores into waves: by stage order, then by depends_on (a cycle is a configuration error)."""
    rank = {stage: i for i, stage in enumerate(config.stages)}
    stages = {name: stage_of(name, config) for name in names}
    levels: dict[str, int] = {}
    span = len(names) + 1  # a stage's levels never reach the next stage's

    def level(name: str, path: tuple[str, ...]) -> int:
        if name in path:
            cycle = " -> ".join((*path[path.index(name):], name))
            raise ConfigError(f"the stores depend on each other in a cycle: {cycle}; fix depends_on in drill.toml",
                              path=config.path, key=f"stores.{name}.depends_on")
        if name not in levels:
            found = config.stores.get(name)
            deps = [d for d in (found.depends_on if found else ()) if d in stages]
            levels[name] = max([rank[stages[name]] * span, *(level(d, (*path, name)) + 1 for d in deps)])
        return levels[name]

    for name in names:
        level(name, ())
    ordered = sorted(set(levels.values()))
    waves = [[n for n in names if levels[n] == lvl] for lvl in ordered]
    return Plan(waves, stages)


def run_waves(the_plan: Plan, restore_one: Callable[[str], None], elapsed: Callable[[], float],
              progress: Callable[[str], None], interrupted: Callable[[], None] = lambda: None) -> list[StoreOutcome]:
    """Restore wave after wave, the stores of a wave in parallel; stop before the next wave on a failure.

    `interrupted` is called at once when an interrupt (Ctrl-C) reaches the waiting thread, before the
    wave's threads are waited for: it can make them stop sooner (drill/hash_workers.py: cancel the hashing)."""
    outcomes: list[StoreOutcome] = []
    for number, wave in enumerate(the_plan.waves, start=1):
        progress(f"wave {number}/{len(the_plan.waves)}: restoring {', '.join(wave)} in parallel"
                 if len(wave) > 1 else f"wave {number}/{len(the_plan.waves)}: restoring {wave[0]}")
        results: dict[str, StoreOutcome] = {}

        def one(name: str, number: int = number, results: dict[str, StoreOutcome] = results) -> None:
            outcome = StoreOutcome(name, the_plan.stages[name], number, elapsed(), 0.0)
            results[name] = outcome
            try:
                restore_one(name)
            except Exception as exc:
                outcome.error = str(exc)
                raise
            finally:
                outcome.finished = elapsed()

        with ThreadPoolExecutor(max_workers=len(wave), thread_name_prefix="drill-system") as pool:
            futures = [pool.submit(one, name) for name in wave]
            try:
                for future in futures:
                    future.exception()  # wait for all of the wave, failed or not
            except BaseException:
                interrupted()
                raise
        outcomes.extend(results[name] for name in wave)
        failed = [results[n] for n in wave if results[n].error is not None]
        if failed:
            left = [n for later in the_plan.waves[number:] for n in later]
            reasons = "\n  - ".join(f"{o.name}: {o.error}" for o in failed)
            raise StoreError(f"the whole-system restore stopped in wave {number}: \n  - {reasons}"
                             + (f"\nnot restored (later waves): {', '.join(left)}" if left else ""))
    return outcomes

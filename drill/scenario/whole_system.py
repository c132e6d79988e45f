"""The whole system (drill.system) and health checks (drill.health).

Every store with a backup is restored in the order drill.toml gives, independent ones in parallel,
each verified against its backup and timed on its own; health checks after a restore (an HTTP
endpoint, a query) are the runbook's last step and so extend the RTO.
"""

from __future__ import annotations

import contextlib

from drill import hash_workers, health, system
from drill.durations import format_duration, parse_duration
from drill.errors import BackupError, StoreError, TargetMissed
from drill.redact import redact_text
from drill.scenario.recovery import Recovery
from drill.scenario.state import ScenarioState
from drill.scenario.verification import Verification


class WholeSystem:
    def __init__(self, state: ScenarioState, recovery: Recovery, verification: Verification) -> None:
        self.state = state
        self.recovery = recovery
        self.verification = verification
        self.health_service: health.HealthService | None = None

    def restore(self) -> None:
        state = self.state
        names = [n for n in state.stores if n in state.backups and n not in state.restores]
        if not names:
            raise BackupError("no store of this scenario has a backup to restore the system from: take backups first "
                              "(`Given a backup of \"userdb\" is taken`)")
        the_plan = system.plan(names, state.config)
        state.clock.start()
        evidence = state.evidence.system = {"plan": the_plan.evidence(), "stores": {}}

        def restore_one(name: str) -> None:
            self.recovery.restore(name)
            self.verification.assert_matches(name)

        def elapsed() -> float:
            return state.clock.rto() or 0.0

        try:
            # Verifications hash in worker processes, not in the threads that share this interpreter's lock.
            # Only where the lock is shared: a store that hashes in Python (MongoDB) restored in a wave with
            # others. Alone it hashes in its own thread (workers would only add their start-up). Started now,
            # while the restores wait on their servers.
            shared = any(len(wave) > 1 and any(getattr(state.store(n), "hashes_in_workers", False) for n in wave)
                         for wave in the_plan.waves)
            with hash_workers.running(warm=True) if shared else contextlib.nullcontext() as workers:
                outcomes = system.run_waves(the_plan, restore_one, elapsed, state.info,
                                            interrupted=workers.cancel if workers is not None else lambda: None)
        finally:
            evidence["seconds"] = elapsed()
        missed = []
        for outcome in outcomes:
            found = evidence["stores"][outcome.name] = outcome.evidence()
            target = state.store(outcome.name).config.rto
            if target is not None:
                found.update({"rto_target_seconds": target, "rto_target_source": f"stores.{outcome.name}.rto",
                              "rto_met": outcome.finished <= target})
                if outcome.finished > target:
                    missed.append(f"recovery time of {outcome.name!r} {format_duration(outcome.finished)} exceeds "
                                  f"its target {format_duration(target)} (stores.{outcome.name}.rto in drill.toml)")
        evidence["sum_of_store_seconds"] = sum(o.finished - o.started for o in outcomes)
        state.result.rto_seconds = state.clock.rto()
        if missed:
            raise TargetMissed("; ".join(missed))

    def check_store_rto(self, name: str, duration_text: str) -> None:
        state = self.state
        stores = state.evidence.system.get("stores", {})
        if name not in stores:
            raise StoreError(f"{name!r} was not restored with the whole system: add `When the whole system is "
                             f"restored` first")
        # A store's own target lives in the evidence: the scenario's targets (rto/rpo) stay the whole's.
        target, measured = parse_duration(duration_text), float(stores[name]["rto_seconds"])
        stores[name].update({"rto_target_seconds": target, "rto_target_source": f"step at line {state.current_line}",
                             "rto_met": measured <= target})
        if measured > target:
            raise TargetMissed(f"recovery time of {name!r} {format_duration(measured)} exceeds the target "
                               f"{format_duration(target)} (step at line {state.current_line})")

    # -- health checks ----------------------------------------------------------------------------------

    def start_health_service(self) -> str:
        state = self.state
        if self.health_service is None:
            def probes() -> dict[str, str | None]:
                found: dict[str, str | None] = {}
                for name, store in list(state.stores.items()):
                    try:
                        store.count()
                        found[name] = None
                    except Exception as exc:
                        found[name] = redact_text(str(exc))[:200]
                return found

            self.health_service = health.HealthService(probes)
            self.health_service.start()
            state.cleanup.push("stop the health service", self.health_service.stop)
            state.info(f"health service on {self.health_service.url}/health")
        return self.health_service.url

    def check_endpoint(self, url: str, status: int) -> None:
        state = self.state
        if "{health}" in url:
            if self.health_service is None:
                raise StoreError("{health} names drill's health service: add `Given a health service for the "
                                 "stores is running` first")
            url = url.replace("{health}", self.health_service.url)
        with state.clock.phase("verify", "health"):
            evidence = health.check_http(url, status)
        state.evidence.health.append(evidence)
        self._health_verified()

    def check_query(self, name: str, query: str, expected: str) -> None:
        state = self.state
        store = state.store(name)
        with state.clock.phase("verify", name):
            evidence = health.check_query(store, query, expected)
        state.evidence.health.append(evidence)
        state.passed_checks.setdefault(store.name, []).append(f"the query {query!r} returns {expected!r}")
        self._health_verified()

    def check_query_at_least(self, name: str, query: str, minimum: int) -> None:
        state = self.state
        store = state.store(name)
        with state.clock.phase("verify", name):
            evidence = health.check_query_at_least(store, query, minimum)
        state.evidence.health.append(evidence)
        state.passed_checks.setdefault(store.name, []).append(f"the query {query!r} returns at least {minimum}")
        self._health_verified()

    def _health_verified(self) -> None:
        # Health checks after a restore are part of the recovery (the runbook's last step): they extend the RTO.
        state = self.state
        if state.restores and state.clock.started:
            state.clock.stop()
            state.result.rto_seconds = state.clock.rto()

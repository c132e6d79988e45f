"""Verification: a restored store matches its backup's fingerprint, holds what it should, passes a kind's own check.

A verification of a restored store stops the RTO clock (the last one wins).
"""

from __future__ import annotations

from collections.abc import Callable

from drill.errors import StoreError, VerificationError
from drill.evidence import CountEvidence, FingerprintEvidence
from drill.fingerprint import Fingerprint, compare, mismatch_message
from drill.scenario.state import ScenarioState
from drill.scenario.stores import check_unit
from drill.stores import capabilities
from drill.stores.base import BackupArtifact, Store
from drill.stores.capabilities import CountsExpiring, CountsMatching, ExplainsDifferences, ObjectStore

MATCHES = "matches its state at the backup"


class Verification:
    def __init__(self, state: ScenarioState) -> None:
        self.state = state

    def expected_fingerprint(self, name: str, source: str | None) -> tuple[Fingerprint, BackupArtifact]:
        state = self.state
        record = state.restores.get(name)
        # A restored store is compared with the backup it came from; otherwise with the latest backup.
        artifact = record.artifact if source is None and record is not None else state.latest_backup(source or name)
        if artifact.fingerprint is None:
            raise VerificationError(
                f"the state of {artifact.store!r} at backup {artifact.id} is unknown (drill did not take that "
                f"backup, so it has no fingerprint of it); check it with `Then \"{name}\" holds N rows` instead")
        return artifact.fingerprint, artifact

    def assert_matches(self, name: str, source: str | None = None) -> None:
        state = self.state
        store = state.store(name)
        expected, artifact = self.expected_fingerprint(name, source)
        with state.clock.phase("verify", name):
            actual = store.fingerprint()
            differences = compare(expected, actual)
            # Kinds that can say which items differ (Firestore: documents and fields; GCS: objects) add those lines.
            details = (store.explain_differences(artifact, {d.part for d in differences})
                       if differences and isinstance(store, ExplainsDifferences) else [])
            state.evidence.fingerprints[store.name] = FingerprintEvidence(
                backup=artifact.id, before=expected.to_dict(), after=actual.to_dict(),
                differences=[d.to_dict() for d in differences], details=details)
            if differences:
                raise VerificationError(mismatch_message(name, artifact.store, artifact.id, differences, details))
        self.passed(name, MATCHES if source is None else f"matches the state of {source!r} at the backup")

    def assert_count(self, name: str, count: int, unit: str, part: str | None = None, *,
                     at_least: bool = False) -> None:
        """`holds N rows [in "part"]`, exactly or (at_least) as a lower bound for data that keeps growing."""
        where = f" in {part!r}" if part else ""
        self._count(name, unit, count, where, at_least, lambda store: store.count(part))

    def assert_count_expiring(self, name: str, count: int, unit: str, *, at_least: bool = False) -> None:
        """`holds N keys with a TTL`: units that expire on their own."""
        store = self.state.store(name)
        if not isinstance(store, CountsExpiring):
            raise StoreError(capabilities.lacks(name, store.kind, CountsExpiring, "a count of what expires"))
        self._count(name, unit, count, " with a TTL", at_least, lambda _store: store.count_expiring())

    def assert_count_matching(self, name: str, count: int, unit: str, pattern: str, *,
                              at_least: bool = False) -> None:
        """`holds N keys matching "session:*"`: units whose names match a pattern."""
        store = self.state.store(name)
        if not isinstance(store, CountsMatching):
            raise StoreError(capabilities.lacks(name, store.kind, CountsMatching, "a count by name pattern"))
        self._count(name, unit, count, f" matching {pattern!r}", at_least,
                    lambda _store: store.count_matching(pattern))

    def _count(self, name: str, unit: str, count: int, where: str, at_least: bool,
               counter: Callable[[Store], int]) -> None:
        state = self.state
        store = state.store(name)
        check_unit(store, unit)
        # seed_scale shrinks what drill seeds, so it shrinks counts of that data only: never production's (a live
        # store, a backup made outside drill), whose size the figure states as it is.
        seeded = state.holds_seeded_data(name)
        expected = state.config.scaled(count) if seeded else count
        scaled = state.config.seed_scale != 1.0 and seeded
        with state.clock.phase("verify", name):
            actual = counter(store)
            evidence = CountEvidence(expected=expected, actual=actual, at_least=at_least,
                                     scaled_from=count if scaled else None)
            state.evidence.counts[f"{name}{where}"] = evidence
            if not evidence.met:
                raise VerificationError(f"{name!r} holds {actual} {store.unit}{where}, expected "
                                        f"{'at least ' if at_least else ''}{expected}"
                                        f"{_scale_note(state.config.seed_scale, count, seeded)}")
        self.passed(name, f"holds {'at least ' if at_least else ''}{expected} {store.unit}{where}")

    def passed(self, name: str, check: str) -> None:
        """A check of `name` passed: the RTO clock stops if it was restored; the self-test will come back to it."""
        self.state.passed_checks.setdefault(self.state.store(name).name, []).append(check)
        self.state.verified(name)

    def assert_holds_object(self, name: str, object_name: str) -> None:
        store = self.state.store(name)
        if not isinstance(store, ObjectStore):
            raise StoreError(capabilities.lacks(name, store.kind, ObjectStore, "an object check"))
        if not store.has_object(object_name):
            raise VerificationError(f"{name!r} has no object {object_name!r}")

    def verify(self, name: str, check: Callable[[Store], None]) -> None:
        """A kind's own verification sentence: `check` runs on the store as a verify phase, like any check."""
        state = self.state
        store = state.store(name)
        with state.clock.phase("verify", name):
            check(store)
        self.passed(name, f"its kind's own check at line {state.current_line}")


def _scale_note(seed_scale: float, count: int, seeded: bool) -> str:
    """Why the figure in a failed count is what it is, when a profile's seed_scale could have changed it."""
    if seed_scale == 1.0:
        return ""
    if seeded:
        return f" ({count} scaled by seed_scale {seed_scale}: drill seeded this data)"
    return (f" (not scaled by seed_scale {seed_scale}: the data was not seeded by drill in this scenario, so the "
            f"figure stands as written)")

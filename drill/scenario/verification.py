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
from drill.stores.capabilities import ExplainsDifferences, ObjectStore


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
        state.verified(name)

    def assert_count(self, name: str, count: int, unit: str, part: str | None = None) -> None:
        state = self.state
        store = state.store(name)
        check_unit(store, unit)
        expected = state.config.scaled(count)
        with state.clock.phase("verify", name):
            actual = store.count(part)
            where = f" in {part!r}" if part else ""
            state.evidence.counts[f"{name}{where}"] = CountEvidence(expected=expected, actual=actual)
            if actual != expected:
                raise VerificationError(f"{name!r} holds {actual} {store.unit}{where}, expected {expected}")
        state.verified(name)

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
        state.verified(name)

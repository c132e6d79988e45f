"""Checks proven to bite: after a drill passed, a planted fault in each restored copy must make its check fail.

With `self_test = true`, for each store whose checks passed, on a throwaway or scratch copy only
(never a live store), drill plants one small fault (a changed row, key, document, object or file,
PlantsChanges), runs the content check again and requires a failure that names the part the fault
is in, then removes the fault and requires the check to pass again. The check re-run is
`matches its state at the backup` when the copy was restored from a backup with a fingerprint;
otherwise the copy's own fingerprint, taken just before the fault (the proof that drill reads the
restored data itself, not a summary of it). Counts are not re-run: a changed item leaves them as
they were, which is why drill changes one rather than removing it. The report lists the outcome
per store under "checks proven to bite".
"""

from __future__ import annotations

import time

from drill.errors import DrillError, VerificationError
from drill.evidence import SelfTestEvidence
from drill.fingerprint import Fingerprint, compare
from drill.pause import pause_point
from drill.scenario.state import ScenarioState
from drill.scenario.verification import MATCHES
from drill.stores import capabilities
from drill.stores.base import BackupArtifact, Store
from drill.stores.capabilities import ExplainsDifferences, PlantsChanges

COPY_FINGERPRINT = "the fingerprint of the restored copy"
LIVE_SKIPPED = "a live store: drill never plants a fault in one (restore it `into` a scratch target to prove it)"


class SelfTest:
    def __init__(self, state: ScenarioState) -> None:
        self.state = state

    def prove(self) -> None:
        """Prove the checks of every store that passed bite (self_test = true); VerificationError naming any that
        did not."""
        state = self.state
        if not state.config.self_test:
            return
        problems = []
        for name, passed in state.passed_checks.items():
            store = state.stores.get(name)
            if store is None:
                continue
            outcome = self._prove(name, store)
            outcome.passed = list(dict.fromkeys(passed))
            state.evidence.self_test[name] = outcome
            state.info(f"self-test of {name}: {outcome.status}: {outcome.fault or outcome.message}")
            if outcome.status == "not-caught":
                problems.append(f"{name!r}: {outcome.message}")
            elif outcome.status == "proven" and not outcome.removed:
                problems.append(f"{name!r}: the planted fault ({outcome.fault}) could not be removed: "
                                f"{outcome.message}")
        if problems:
            raise VerificationError("self-test failed (self_test = true): " + "; ".join(problems))

    def _scratch(self, name: str, store: Store) -> bool:
        """A throwaway store, or a target drill restored into (never a live store itself)."""
        if not store.config.is_live:
            return True
        record = self.state.restores.get(name)
        return record is not None and record.source != name

    def _prove(self, name: str, store: Store) -> SelfTestEvidence:
        if not self._scratch(name, store):
            return SelfTestEvidence(status="skipped", message=LIVE_SKIPPED)
        if not isinstance(store, PlantsChanges):
            return SelfTestEvidence(status="skipped", message=capabilities.lacks(name, store.kind, PlantsChanges,
                                                                                 "a self-test"))
        started = time.monotonic()
        before = store.fingerprint()  # what the fault must change, and what its removal must bring back
        expected, artifact, check = self._expected(name, before)
        planted = store.plant_change()
        pause_point(f"self-test:{name}")
        try:
            differences = compare(expected, store.fingerprint())
            details = (store.explain_differences(artifact, {d.part for d in differences})
                       if artifact is not None and differences and isinstance(store, ExplainsDifferences) else [])
        finally:
            planted.undo()
        naming = [d.message for d in differences if d.part == planted.part]
        outcome = SelfTestEvidence(status="proven" if naming else "not-caught", check=check,
                                   fault=f"changed {planted.item}", part=planted.part)
        if naming:
            named_item = [line for line in details if planted.item.split(" ", 1)[-1] in line]
            outcome.message = "; ".join(naming + named_item[:1])
        else:
            seen = "; ".join(d.message for d in differences) or "no difference at all"
            outcome.message = (f"the changed {planted.item} was not caught by {check}: it found {seen}")
        try:
            left = [d.message for d in compare(before, store.fingerprint())]
        except DrillError as exc:
            left = [f"the check after the removal failed: {exc}"]
        outcome.removed = not left
        if left:
            outcome.message += "; after the removal: " + "; ".join(left)
        outcome.seconds = time.monotonic() - started
        return outcome

    def _expected(self, name: str, before: Fingerprint) -> tuple[Fingerprint, BackupArtifact | None, str]:
        """What the re-run check compares with: the backup's fingerprint when `matches` passed (and the copy still
        matches it), else the copy's own fingerprint taken just before the fault."""
        record = self.state.restores.get(name)
        if (record is not None and record.artifact.fingerprint is not None
                and any(check.startswith("matches") for check in self.state.passed_checks.get(name, []))
                and not compare(record.artifact.fingerprint, before)):
            return record.artifact.fingerprint, record.artifact, MATCHES
        return before, None, COPY_FINGERPRINT

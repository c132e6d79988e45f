"""The live stores of a scenario end it as they began, or equal to the backup restored into them on purpose.

This collaborator holds the scenario's safety net (drill.safety_net): before the first change of a
live store (lost, restored in place, seeded, SQL) it makes sure there is a reference to put the store
back from; the other collaborators tell it each change before they make it (journaled, so that a
drill killed half-way leaves enough for `drill repair`). At the end of the scenario, passed, failed
or interrupted, `end` runs the rollbacks the policy `always` asks for, then the final check of every
live store, which puts back a store left worse than it began and fails the scenario saying so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace

from drill.cleanup import deferred_sigint
from drill.safety_net import SafetyNet
from drill.scenario.state import ScenarioState
from drill.stores.base import BackupArtifact, Store


class LiveStores:
    def __init__(self, state: ScenarioState) -> None:
        self.state = state
        self.net = SafetyNet(state.config.backup_dir, state.info)
        self.ended = False  # end() ran: rollbacks (policy always) and the final check of the live stores
        self.end_errors: list[str] = []  # rollbacks (policy always) that failed at the end

    # -- before and while a live store is changed -------------------------------------------------------

    def arm(self, store: Store, action: str) -> None:
        """Before the first change of a live store: the safety net's reference (outside the RTO clock)."""
        if not store.config.is_live:
            return
        state = self.state
        held = self.net.held.get(store.name)
        first = held is None or held.reference is None
        if first:
            consent = "destructive" if store.config.destructive else "allow_writes"
            state.info(f"{store.name} is live and may be {action}: `{consent} = true` in {store.config.consent()}")
        with state.clock.phase("safety-net", store.name) if first else contextlib.nullcontext():
            self.net.arm(store, action, state.backups.get(store.name, []))

    def changed(self, store: Store, damage: str, event: str) -> None:
        """A change about to be made to a live store (written, lost, overwritten): journaled first."""
        self.net.changed(store, damage, event)

    def restored(self, store: Store, artifact: BackupArtifact) -> None:
        """An in-place restore succeeded: the store may now also equal that backup. A backup made outside drill
        has no fingerprint of its own (drill did not write it): the store's, taken right after the restore, is
        what that backup gave, so that the final check leaves it as restored on purpose (and a later change of
        it is still put back)."""
        if artifact.fingerprint is None and store.name in self.net.held:
            with self.state.clock.phase("safety-net", store.name):
                artifact = replace(artifact, fingerprint=store.fingerprint())
        self.net.restored(store, artifact)

    def add_target(self, store: Store, target: str) -> None:
        """A restore `into` a new target on a live store's server: journaled before it is made."""
        self.net.add_target(store, target)

    # -- at the end -------------------------------------------------------------------------------------

    def end(self, rollbacks: Callable[[], list[str]]) -> list[str]:
        """The end of the scenario, passed, failed or interrupted: `rollbacks` (what the policy `always` asks
        for; returns its failures), then the safety net's final check of every live store (put back when it
        ended worse than it began). Returns what fails the scenario: live stores that were not as they should
        be (once; later calls return nothing)."""
        if self.ended:
            return []
        self.ended = True
        state = self.state
        with deferred_sigint():  # a second Ctrl-C must not leave a live store half put back
            self.end_errors += rollbacks()
            state.result.live_stores = self.net.final_check(state.stores)
        return self.net.problems()

    def release(self, keep: bool) -> None:
        """After the clean-up: the journals and references of the stores that are as they should be go, unless
        `keep` (the clean-up failed, so a restore target may be left for `drill repair`)."""
        self.net.release(keep=keep)

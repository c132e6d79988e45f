"""Which scenarios put their local stores on a server the run shares ([drill] shared_servers), and the end of
those servers.

A throwaway server per scenario costs seconds (PostgreSQL: initdb and a start); a database of its own on one
server started once costs milliseconds. Only the common small scenario qualifies, and conservatively: every
step of the scenario must be one of SHAREABLE_SENTENCES, sentences that act on the store's data only (seed,
SQL, back up, lose, restore, verify, count, RPO markers, targets). A scenario with any other step (a planted
server fault, a restore timeout, a rollback, a point-in-time recovery, a whole-system restore, a backup found
on disk, a kind's own sentence, an undefined step) gets a server of its own for each store, as before. A live
store never does (its kind's shared provisioner applies to `provision = "local"` only), nor a store whose
sentence sets options (`archiving its WAL`). The kind's shared provisioner may still give a store a private
server (PostgreSQL: `pitr = true`).

The shared servers are stopped and their folders removed when the run ends (the plugin's unconfigure, which
pytest runs after a failed or interrupted run too, and at exit); a drill killed with SIGKILL leaves folders
the next run sweeps by their owner pid, as for any throwaway server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from drill import vocabulary

# Step functions ("module.function") whose sentences act on a store's data only.
SHAREABLE_SENTENCES = frozenset({
    "drill.steps.stores.declare_store", "drill.steps.stores.seed", "drill.steps.stores.run_sql",
    "drill.steps.backups.take_backup", "drill.steps.backups.latest_backup_is_fresh",
    "drill.steps.recovery.start_writer", "drill.steps.recovery.stop_writer", "drill.steps.recovery.wait",
    "drill.steps.recovery.lose", "drill.steps.recovery.restore", "drill.steps.recovery.restore_into",
    "drill.steps.verification.matches", "drill.steps.verification.matches_other", "drill.steps.verification.holds",
    "drill.steps.verification.holds_in", "drill.steps.verification.holds_at_least",
    "drill.steps.verification.holds_at_least_in", "drill.steps.verification.rto_within",
    "drill.steps.verification.rpo_at_most", "drill.steps.system.query_returns",
    "drill.steps.system.query_returns_at_least",
})


def sentence_of(text: str) -> str | None:
    """The step function a step's text is bound to (any step type), or None for a text no sentence matches."""
    for entry in vocabulary.REGISTRY:
        if entry.match(text):
            return entry.function
    return None


def scenario_qualifies(step_texts: Iterable[str]) -> bool:
    """Every step acts on a store's data only: the scenario's local stores may live on a shared server."""
    return all(sentence_of(text) in SHAREABLE_SENTENCES for text in step_texts)


_stoppers: list[Callable[[], Any]] = []


def on_run_end(stop: Callable[[], Any]) -> None:
    """Register what stops a kind's shared server at the end of the run (the kind's module does, on import)."""
    if stop not in _stoppers:
        _stoppers.append(stop)


def stop_shared_servers() -> None:
    """The end of the run: stop every shared server and remove its folder (safe to call more than once)."""
    for stop in _stoppers:
        with contextlib.suppress(Exception):
            stop()

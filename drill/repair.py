"""Finishing what a killed drill left on live stores: `drill repair`, and the start of every `drill run`.

A drill killed with SIGKILL cannot run its final check or its clean-up. Its safety-net journals
(drill.safety_net) say, per live store, what it had done and what it held: the reference to put the
store back from, the restore targets it made on the store's server, the settings to re-create the
store with. For each journal whose drill is gone (same host, pid not running) this module provisions
the store as drill.toml configures it, drops the restore targets, checks the store against the
reference and the backups restored into it on purpose, puts it back from the reference when it matches
none (verified by fingerprint), and removes the journal. A journal it cannot finish stays, with a
message that says why and what to do.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path
from typing import Any

from drill import safe_paths
from drill.cleanup import CleanupStack
from drill.config import Config
from drill.errors import DrillError
from drill.provision.factory import provision
from drill.redact import redact_text
from drill.results import LiveStoreCheck
from drill.safety_net import (
    NOT_PUT_BACK,
    Held,
    artifact_from,
    check_store,
    forget_rollback_journal,
    journals,
    owner_alive,
    read_journal,
)
from drill.stores.base import Progress, no_progress
from drill.stores.capabilities import DropsRestoreTargets, KeepsTargetSettings


def describe(data: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(data.get("started_at") or 0)))
    return f"drill (pid {data.get('pid')} on {data.get('host')}) was killed while it held it (since {started})"


def repair_all(config: Config, progress: Progress = no_progress) -> list[LiveStoreCheck]:
    """Repair every journal left by a drill that is gone; journals of running drills are left alone."""
    outcomes = []
    for path in journals(config.backup_dir):
        try:
            data = read_journal(path)
        except DrillError as exc:
            outcomes.append(LiveStoreCheck(store=path.parent.name, kind="?", outcome=NOT_PUT_BACK, ok=False,
                                           message=str(exc)))
            continue
        if owner_alive(data):
            continue
        outcomes.append(repair_one(config, path, data, progress))
    return outcomes


def repair_one(config: Config, path: Path, data: dict[str, Any], progress: Progress) -> LiveStoreCheck:
    name = str(data.get("store"))
    what = describe(data)
    progress(f"{name}: {what}; finishing its safety net")
    held = Held(store=name, kind=str(data.get("kind")), location=str(data.get("location") or ""),
                directory=path.parent, reference_source=data.get("reference_source"),
                changes=list(data.get("changes") or []), damage=str(data.get("damage") or ""),
                targets=list(data.get("targets") or []), settings=dict(data.get("settings") or {}),
                started_at=float(data.get("started_at") or 0))
    reference = data.get("reference")
    if isinstance(reference, dict):
        held.reference = artifact_from(reference)
        held.fingerprint = held.reference.fingerprint
    held.restored_from = [artifact_from(a) for a in data.get("restored_from") or []]
    store_config = config.stores.get(name)
    if store_config is None or not store_config.is_live:
        return LiveStoreCheck(store=name, kind=held.kind, location=held.location, changes=held.changes,
                              reference=held.reference_source, outcome=NOT_PUT_BACK, ok=False, interrupted=what,
                              message=f"live store {name!r} was left by a killed drill, but drill.toml no longer "
                                      f"configures it as a live store; check it by hand, then remove {path.parent}")
    cleanup = CleanupStack()
    try:
        try:
            store = provision(store_config, cleanup, progress, allow_missing=True)
        except DrillError as exc:
            return LiveStoreCheck(store=name, kind=held.kind, location=held.location, changes=held.changes,
                                  reference=held.reference_source, outcome=NOT_PUT_BACK, ok=False, interrupted=what,
                                  message=f"live store {name!r} was left by a killed drill and cannot be reached to "
                                          f"repair it: {redact_text(str(exc))}; fix that, then run `drill repair`")
        if isinstance(store, KeepsTargetSettings) and held.settings:
            store.use_target_settings(held.settings)
        dropped = []
        for target in held.targets:
            if isinstance(store, DropsRestoreTargets):
                store.drop_restore_target(target)
                dropped.append(target)
        check = check_store(store, held, progress)
        check.interrupted = what
        if dropped:
            check.changes.append(f"restore target(s) {', '.join(dropped)} left on its server: dropped")
        if check.ok or check.outcome == "put back":
            check.ok = True  # repaired: this run did what the killed one could not
            forget_rollback_journal(config.backup_dir, name)
            shutil.rmtree(path.parent, ignore_errors=True)
        return check
    finally:
        with contextlib.suppress(Exception):
            cleanup.run()


# Private temporary folders that may hold decrypted backups (drill.safe_paths.private_temp): each is marked with
# its drill's pid; a new folder of the same prefix sweeps the old ones, and so does every drill run (here) and
# `drill repair`, whatever prefixes they use themselves.
TEMP_PREFIXES = ("drill-repo-", "drill-restore-", "drill-backup-", "drill-gcs-repo-")


def sweep_temp_folders() -> list[Path]:
    removed: list[Path] = []
    for prefix in TEMP_PREFIXES:
        removed += safe_paths.sweep_private_temps(prefix)
    return removed

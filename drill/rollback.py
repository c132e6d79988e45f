"""Rollback: before a restore overwrites a store, keep what is needed to put it back; put it back when asked.

The generic path is good enough for every kind: the safety copy is the store's own backup
(`Store.backup()`, with the fingerprint taken in the same snapshot) and the rollback is the
store's own restore of that copy, verified against that fingerprint. A store that holds nothing
to keep (a PostgreSQL or MongoDB database that the disaster dropped) is recorded as absent; its
rollback removes whatever the failed restore left.

A journal file is written before the restore touches the store and removed once the restore
(or the rollback) is over. A drill that is killed half-way leaves it behind: the next run that
declares the store finds it and repairs the store from the safety copy (a live store, which
outlives drill) or reports that the half-restored throwaway store is gone (a local one).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drill.errors import ConfigError, StoreError, VerificationError
from drill.fingerprint import Fingerprint, compare
from drill.provision.processes import pid_alive
from drill.redact import redact_text
from drill.stores.base import BackupArtifact, Progress, Store, no_progress
from drill.stores.capabilities import Removable

POLICIES = ("always", "on-failure", "never")
STATE_DIRNAME = ".drill-rollback"
JOURNAL = "journal.json"
ROLLBACK_ATTEMPTS = 3


def check_policy(value: str, where: str) -> str:
    if value not in POLICIES:
        raise ConfigError(f"rollback policy {value!r} ({where}) is not one of: {', '.join(POLICIES)}")
    return value


@dataclass
class SafetyCopy:
    """What drill kept of a store right before a restore overwrote it."""

    store: str
    kind: str
    directory: Path  # the store's rollback state: journal and safety copy
    absent: bool  # the store held nothing (its database did not exist): rolling back removes it
    artifact: BackupArtifact | None
    fingerprint: Fingerprint | None
    taken_at: float

    @property
    def journal(self) -> Path:
        return self.directory / JOURNAL

    def evidence(self) -> dict[str, Any]:
        return {"store": self.store, "absent": self.absent, "taken_at": self.taken_at,
                "safety_copy": str(self.artifact.path) if self.artifact else None,
                "sha256": self.artifact.sha256 if self.artifact else None,
                "fingerprint": self.fingerprint.to_dict() if self.fingerprint else None}


def state_dir(backup_dir: Path, store: str) -> Path:
    return backup_dir / STATE_DIRNAME / store


def store_is_absent(store: Store) -> bool:
    """True when the store's data does not exist at all (only kinds that are Removable can vanish: a database)."""
    return isinstance(store, Removable) and not store.exists()


def keep(store: Store, backup_dir: Path, progress: Progress = no_progress) -> SafetyCopy:
    """Take the safety copy and write the in-progress journal (before anything is overwritten)."""
    directory = state_dir(backup_dir, store.name)
    if (directory / JOURNAL).exists():
        raise StoreError(f"a restore of {store.name!r} is already in progress or was interrupted "
                         f"(journal {directory / JOURNAL}); let drill repair it first (declare the store again) "
                         f"or remove that directory once you have checked the store by hand")
    directory.mkdir(parents=True, exist_ok=True)
    taken_at = time.time()
    if store_is_absent(store):
        copy = SafetyCopy(store.name, store.kind, directory, True, None, None, taken_at)
    else:
        progress(f"keeping a safety copy of {store.name} before it is overwritten")
        artifact = store.backup(directory, progress)
        fingerprint = artifact.fingerprint or store.fingerprint()
        copy = SafetyCopy(store.name, store.kind, directory, False, artifact, fingerprint, taken_at)
    _write_journal(copy)
    return copy


def _write_journal(copy: SafetyCopy) -> None:
    payload = {"state": "restoring", "pid": os.getpid(), "host": socket.gethostname(),
               "kind": copy.kind, **copy.evidence(),
               "artifact": copy.artifact.evidence() if copy.artifact else None}
    tmp = copy.journal.with_name(JOURNAL + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, copy.journal)


def roll_back(store: Store, copy: SafetyCopy, progress: Progress = no_progress) -> dict[str, Any]:
    """Put the store back as it was when the copy was taken, and prove it with its fingerprint."""
    started = time.time()
    _wait_until_reachable(store)
    if copy.absent:
        progress(f"rolling back {store.name}: it held nothing before the restore; removing what the restore left")
        _remove(store)
        if not store_is_absent(store):
            raise VerificationError(f"rollback of {store.name!r} failed: it should not exist, but it still does")
        differences: list[str] = []
    else:
        assert copy.artifact is not None and copy.fingerprint is not None
        progress(f"rolling back {store.name} from its safety copy {copy.artifact.id}")
        for attempt in range(1, ROLLBACK_ATTEMPTS + 1):
            try:
                store.restore(copy.artifact, None, progress)
                actual = store.fingerprint()
                break
            except Exception as exc:
                # A server that crashed under the failed restore may still be restarting (PostgreSQL's
                # postmaster ends every connection while it recovers): the restore of the safety copy is
                # idempotent (drop, create, load), so it is tried again once the server answers.
                if attempt == ROLLBACK_ATTEMPTS:
                    raise
                progress(f"rollback attempt {attempt} of {store.name} failed ({redact_text(str(exc))}); trying again")
                time.sleep(1.0)
                _wait_until_reachable(store)
        differences = [d.message for d in compare(copy.fingerprint, actual)]
        if differences:
            listed = "\n  - ".join(differences)
            raise VerificationError(f"rollback of {store.name!r} did not bring back its state before the restore:"
                                    f"\n  - {listed}")
    return {"store": store.name, "rolled_back_at": time.time(), "seconds": time.time() - started,
            "verified": True, "absent": copy.absent, "differences": differences}


def _remove(store: Store) -> None:
    if isinstance(store, Removable):
        store.remove()
    else:
        store.lose()


def _wait_until_reachable(store: Store, timeout: float = 120.0) -> None:
    """A killed server restarts (PostgreSQL's postmaster re-initialises after a crashed backend): wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            store_is_absent(store)
            return
        except Exception:  # a restarting server fails in driver-specific ways
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def finish(copy: SafetyCopy) -> None:
    """The restore (or the rollback) is over: drop the journal and the safety copy."""
    copy.journal.unlink(missing_ok=True)
    shutil.rmtree(copy.directory, ignore_errors=True)


@dataclass
class Interrupted:
    """A journal left by a drill that died in the middle of a restore."""

    path: Path
    data: dict[str, Any]

    @property
    def pid(self) -> int:
        return int(self.data.get("pid", 0))

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(self.data.get("taken_at", 0))))
        return f"drill (pid {self.pid} on {self.data.get('host')}) was interrupted at {started} while restoring it"


def interrupted(backup_dir: Path, store: str) -> Interrupted | None:
    path = state_dir(backup_dir, store) / JOURNAL
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"the restore journal {path} of {store!r} cannot be read ({exc}); a drill was interrupted "
                         f"while restoring {store!r}: check the store by hand, then remove {path.parent}") from None
    found = Interrupted(path, data)
    if found.pid != os.getpid() and data.get("host") == socket.gethostname() and pid_alive(found.pid):
        raise StoreError(f"another drill (pid {found.pid}) is restoring {store!r} right now (journal {path}); "
                         f"wait for it to finish")
    return found


def repair(store: Store, found: Interrupted, progress: Progress = no_progress) -> dict[str, Any]:
    """Roll a half-restored store back from the safety copy the interrupted run kept (live stores)."""
    data = found.data
    copy_dir = found.path.parent
    artifact_data = data.get("artifact")
    if data.get("absent"):
        copy = SafetyCopy(store.name, store.kind, copy_dir, True, None, None, float(data["taken_at"]))
    else:
        if not artifact_data or not Path(artifact_data["path"]).exists():
            raise StoreError(f"{store.name!r} was left half-restored ({found.describe()}) and its safety copy is "
                             f"missing ({artifact_data['path'] if artifact_data else 'none recorded'}); restore it by "
                             f"hand from a known good backup, then remove {copy_dir}")
        artifact = BackupArtifact(
            id=artifact_data["id"], store=store.name, kind=store.kind, format=artifact_data["format"],
            path=Path(artifact_data["path"]), sha256=artifact_data["sha256"], size=artifact_data["size"],
            created_at=artifact_data["created_at"], consistent_at=artifact_data["consistent_at"])
        fingerprint = Fingerprint.from_dict(data["fingerprint"])
        artifact.fingerprint = fingerprint
        copy = SafetyCopy(store.name, store.kind, copy_dir, False, artifact, fingerprint, float(data["taken_at"]))
    store.require_destructive("repair (roll back) the half-restored")
    outcome = roll_back(store, copy, progress)
    finish(copy)
    return {**outcome, "interrupted": found.describe(), "outcome": "repaired"}


def forget(found: Interrupted) -> None:
    with contextlib.suppress(OSError):
        shutil.rmtree(found.path.parent)

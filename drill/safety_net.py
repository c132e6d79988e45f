"""The safety net of live stores: a live store ends every scenario as it began, or equal to the backup it
was restored from on purpose (DESIGN, safety invariant 1).

Before the first step that changes a live store (it is lost, restored in place, seeded, or SQL runs on
it) the net makes sure drill can put it back: it keeps a *reference* in the store's private folder
`<backup_dir>/.drill-safety/<store>/` (0700): a copy of the newest backup this scenario took of it
(checked as a backup, so a backup damaged later does not matter), or, when there is none, a safety
copy taken with the store's own backup. A journal next to it says which drill holds the store, what
was done to it and which restore targets (`into`) were made on its server.

At the end of the scenario, whether it passed, failed or was interrupted, `final_check` looks at each
live store the drill changed:
- lost or overwritten: it must exist and match (by fingerprint) the reference or a backup restored
  into it on purpose; otherwise drill restores the reference, verifies it, and the scenario fails
  saying what it did;
- only written to (seed, SQL: allowed by `allow_writes`): it is compared with the reference and the
  differences are reported; those writes were allowed, so they stay.
The journal and the reference are removed once the check passed and the clean-up (which drops the
restore targets) is done. A drill killed with SIGKILL leaves them: the next `drill run`, or `drill
repair`, finishes the job (drill.repair).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from drill import rollback
from drill.errors import DrillError, StoreError
from drill.fingerprint import Fingerprint, compare
from drill.provision.processes import pid_alive
from drill.redact import redact_text
from drill.results import LiveStoreCheck
from drill.stores.base import BackupArtifact, Progress, Store, no_progress
from drill.stores.capabilities import DropsRestoreTargets, KeepsTargetSettings

NET_DIRNAME = ".drill-safety"
JOURNAL = "journal.json"
JOURNAL_VERSION = 1

# LiveStoreCheck.outcome values
UNTOUCHED = "untouched"  # only restore targets were made on its server
AS_IT_BEGAN = "as it began"
MATCHES_BACKUP = "matches the backup restored into it"
WRITTEN = "written by the drill"  # seed/SQL with allow_writes: left as written
PUT_BACK = "put back"
NOT_PUT_BACK = "NOT put back"
OUTCOMES = (UNTOUCHED, AS_IT_BEGAN, MATCHES_BACKUP, WRITTEN, PUT_BACK, NOT_PUT_BACK)


def net_root(backup_dir: Path) -> Path:
    return backup_dir / NET_DIRNAME


def store_dir(backup_dir: Path, store: str) -> Path:
    return net_root(backup_dir) / store


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)  # a reference is a copy of live data: for this account's eyes only
    return path


@dataclass
class Held:
    """What the net holds for one live store of the running scenario."""

    store: str
    kind: str
    location: str
    directory: Path
    reference: BackupArtifact | None = None
    fingerprint: Fingerprint | None = None
    reference_source: str | None = None
    changes: list[str] = field(default_factory=list)
    damage: str = ""  # "" | written | lost | overwritten: the worst thing done to it so far
    restored_from: list[BackupArtifact] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)

    @property
    def journal(self) -> Path:
        return self.directory / JOURNAL

    def to_journal(self) -> dict[str, Any]:
        return {
            "version": JOURNAL_VERSION, "pid": os.getpid(), "host": socket.gethostname(), "started_at": self.started_at,
            "store": self.store, "kind": self.kind, "location": self.location, "changes": self.changes,
            "damage": self.damage, "targets": self.targets, "settings": self.settings,
            "reference_source": self.reference_source,
            "reference": _artifact_dict(self.reference, self.fingerprint) if self.reference else None,
            "restored_from": [_artifact_dict(a, a.fingerprint) for a in self.restored_from],
        }

    def write(self) -> None:
        _private_dir(self.directory)
        tmp = self.directory / (JOURNAL + ".tmp")
        tmp.write_text(json.dumps(self.to_journal(), indent=2, default=str))
        os.replace(tmp, self.journal)


def _artifact_dict(artifact: BackupArtifact, fingerprint: Fingerprint | None) -> dict[str, Any]:
    return {**artifact.evidence(), "kind": artifact.kind,
            "fingerprint": fingerprint.to_dict() if fingerprint else None}


def artifact_from(data: dict[str, Any]) -> BackupArtifact:
    fingerprint = Fingerprint.from_dict(data["fingerprint"]) if data.get("fingerprint") else None
    return BackupArtifact(id=data["id"], store=data["store"], kind=data["kind"], format=data["format"],
                          path=Path(data["path"]), sha256=data.get("sha256"), size=int(data.get("size") or 0),
                          created_at=float(data["created_at"]), consistent_at=float(data["consistent_at"]),
                          tool_versions=dict(data.get("tool_versions") or {}),
                          server_version=data.get("server_version"), fingerprint=fingerprint,
                          source=data.get("source", "drill"))


def read_journal(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"the safety-net journal {path} cannot be read ({exc}); check the store by hand, then "
                         f"remove {path.parent}") from None
    return data


def owner_alive(data: dict[str, Any]) -> bool:
    """Whether the drill that wrote a journal still runs (on this host; a journal from another host is not
    touched: that drill's fate cannot be seen from here)."""
    if data.get("host") != socket.gethostname():
        return True
    pid = int(data.get("pid") or 0)
    return pid == os.getpid() or (pid > 0 and pid_alive(pid))


class SafetyNet:
    """The net of one scenario: `arm` before a change, `final_check` at the end, `release` after clean-up."""

    def __init__(self, backup_dir: Path, progress: Progress = no_progress) -> None:
        self.backup_dir = backup_dir
        self.progress = progress
        self.held: dict[str, Held] = {}
        self.checked: list[LiveStoreCheck] | None = None

    def _hold(self, store: Store) -> Held:
        held = self.held.get(store.name)
        if held is not None:
            return held
        directory = store_dir(self.backup_dir, store.name)
        journal = directory / JOURNAL
        if journal.exists():
            data = read_journal(journal)
            if int(data.get("pid") or 0) == os.getpid() and data.get("host") == socket.gethostname():
                raise StoreError(f"an earlier scenario of this run could not put live store {store.name!r} back "
                                 f"(journal {journal}); see its error, then run `drill repair`")
            if owner_alive(data):
                raise StoreError(f"another drill (pid {data.get('pid')} on {data.get('host')}) holds live store "
                                 f"{store.name!r} right now (journal {journal}); wait for it to finish")
            raise StoreError(f"live store {store.name!r} was left by a drill that was killed (pid {data.get('pid')}, "
                             f"journal {journal}); run `drill repair` (or a new `drill run`, which repairs first)")
        location = store.describe().get("location", "")
        held = Held(store.name, store.kind, redact_text(location), directory)
        if isinstance(store, KeepsTargetSettings):
            held.settings = store.target_settings()
        self.held[store.name] = held
        return held

    # -- before a change -----------------------------------------------------------------------------------

    def arm(self, store: Store, action: str, backups: list[BackupArtifact]) -> Held | None:
        """Before `action` changes a live store: make sure there is a reference to put it back from."""
        if not store.config.is_live:
            return None
        held = self._hold(store)
        if held.reference is None:
            if isinstance(store, KeepsTargetSettings):
                held.settings = store.target_settings()
            held.reference, held.fingerprint, held.reference_source = self._reference(store, action, backups, held)
            self.progress(f"safety net for live store {store.name}: {held.reference_source}")
        held.write()
        return held

    def _reference(self, store: Store, action: str, backups: list[BackupArtifact],
                   held: Held) -> tuple[BackupArtifact, Fingerprint, str]:
        _private_dir(held.directory)
        drill_made = [b for b in backups if b.fingerprint is not None and b.store == store.name and b.path.exists()]
        if drill_made:
            backup = drill_made[-1]
            try:
                copy = _copy_into(backup, held.directory / "reference")
                store.verify_backup(copy)  # a copy that is not a whole, readable backup is no reference
                assert backup.fingerprint is not None
                return copy, backup.fingerprint, f"a copy of backup {backup.id} (taken in this scenario)"
            except (DrillError, OSError) as exc:
                shutil.rmtree(held.directory / "reference", ignore_errors=True)
                self.progress(f"backup {backup.id} of {store.name} cannot serve as the safety net "
                              f"({redact_text(str(exc))}); taking a safety copy instead")
        self.progress(f"taking a safety copy of live store {store.name} before it is {action}")
        artifact = store.backup(_private_dir(held.directory / "reference"), self.progress)
        fingerprint = artifact.fingerprint or store.fingerprint()
        artifact.fingerprint = fingerprint
        return artifact, fingerprint, f"a safety copy taken before it was {action}"

    def changed(self, store: Store, damage: str, event: str) -> None:
        """Record a change (before it is made, so that a journal left by a kill says it may have happened)."""
        held = self.held.get(store.name)
        if held is None:
            return
        held.changes.append(event)
        order = ("", "written", "lost", "overwritten")
        if order.index(damage) > order.index(held.damage):
            held.damage = damage
        held.write()

    def restored(self, store: Store, artifact: BackupArtifact) -> None:
        """An in-place restore succeeded: the store may now also equal that backup."""
        held = self.held.get(store.name)
        if held is None:
            return
        held.restored_from.append(artifact)
        held.write()

    def add_target(self, store: Store, target: str) -> None:
        """A restore into `target` on a live server: journaled first, so that a target a killed drill made is
        found and dropped. Only a target that does not exist yet: one that exists is not drill's to drop."""
        if not store.config.is_live or not isinstance(store, DropsRestoreTargets):
            return
        if store.restore_target_exists(target):
            return  # the store's restore refuses it, or (an empty bucket) uses it and leaves it
        held = self._hold(store)
        if target not in held.targets:
            held.targets.append(target)
        held.write()

    # -- at the end ---------------------------------------------------------------------------------------

    def final_check(self, stores: dict[str, Store]) -> list[LiveStoreCheck]:
        """Check (and if need be put back) every live store the scenario held; once per scenario."""
        if self.checked is not None:
            return self.checked
        self.checked = []
        for name, held in self.held.items():
            store = stores.get(name)
            if store is None:
                continue
            self.checked.append(check_store(store, held, self.progress))
        return self.checked

    def problems(self) -> list[str]:
        return [c.message for c in self.checked or [] if not c.ok]

    def release(self, keep: bool) -> None:
        """Remove each journal and reference whose store is as it should be now (it passed its check, or was put
        back and verified), unless `keep`: the clean-up failed, so a restore target may be left."""
        passed = {c.store for c in self.checked or [] if c.outcome != NOT_PUT_BACK}
        for name, held in self.held.items():
            if name in passed and not keep:
                shutil.rmtree(held.directory, ignore_errors=True)


def _copy_into(backup: BackupArtifact, folder: Path) -> BackupArtifact:
    _private_dir(folder)
    target = folder / backup.path.name
    if backup.path.is_dir():
        shutil.copytree(backup.path, target)
    else:
        shutil.copyfile(backup.path, target)
    return replace(backup, path=target)


def check_store(store: Store, held: Held, progress: Progress = no_progress) -> LiveStoreCheck:
    started = time.monotonic()
    check = LiveStoreCheck(store=held.store, kind=held.kind, location=held.location, changes=list(held.changes),
                           reference=held.reference_source)
    try:
        _check(store, held, check, progress)
    except Exception as exc:  # the check itself failed: say so; the journal stays for `drill repair`
        check.ok, check.outcome = False, NOT_PUT_BACK
        check.message = (f"live store {held.store!r}: its final check failed ({redact_text(str(exc))}); "
                         f"{_kept(held)}")
    check.seconds = time.monotonic() - started
    return check


def _kept(held: Held) -> str:
    if held.reference is None:
        return f"the journal is kept in {held.directory}"
    return (f"its reference ({held.reference_source}) and journal are kept in {held.directory}: run `drill repair` "
            f"to try again, or restore {held.reference.path} by hand")


def _check(store: Store, held: Held, check: LiveStoreCheck, progress: Progress) -> None:
    if not held.damage:
        check.outcome = UNTOUCHED
        return
    assert held.reference is not None and held.fingerprint is not None
    expected: list[tuple[str, Fingerprint]] = [(f"its state before the drill ({held.reference_source})",
                                                held.fingerprint)]
    expected += [(f"backup {a.id}, restored into it", a.fingerprint) for a in held.restored_from if a.fingerprint]
    absent = rollback.store_is_absent(store)
    if not absent:
        actual = store.fingerprint()
        for index in reversed(range(len(expected))):  # the latest restore first
            label, fingerprint = expected[index]
            if not compare(fingerprint, actual):
                check.verified, check.matched = True, label
                check.outcome = MATCHES_BACKUP if index > 0 else AS_IT_BEGAN
                return
        check.differences = [d.message for d in compare(expected[-1][1], actual)]
    if held.damage == "written":  # seed/SQL that allow_writes permits: reported, left as written
        check.outcome = WRITTEN
        check.message = f"live store {held.store!r} was written to by the drill ({', '.join(held.changes)})"
        return
    state = "did not exist" if absent else f"did not match {expected[-1][0]}"
    progress(f"live store {held.store} {state} at the end of the scenario: putting it back from "
             f"{held.reference_source}")
    copy = rollback.SafetyCopy(held.store, held.kind, held.directory, False, held.reference, held.fingerprint,
                               held.started_at)
    try:
        rollback.roll_back(store, copy, progress)
    except Exception as exc:
        check.ok, check.outcome = False, NOT_PUT_BACK
        check.message = (f"live store {held.store!r} {state} at the end of the scenario, and putting it back from "
                         f"{held.reference_source} FAILED: {redact_text(str(exc))}; {_kept(held)}")
        return
    check.ok, check.outcome, check.verified = False, PUT_BACK, True
    check.matched = expected[0][0]
    differences = "".join(f"\n  - {d}" for d in check.differences[:10])
    check.message = (f"live store {held.store!r} {state} at the end of the scenario ({', '.join(held.changes)})"
                     f"{differences}\ndrill put it back from {held.reference_source} and verified it: its "
                     f"fingerprint now matches its state before the drill")


def journals(backup_dir: Path) -> list[Path]:
    root = net_root(backup_dir)
    return sorted(root.glob(f"*/{JOURNAL}")) if root.is_dir() else []


def forget_rollback_journal(backup_dir: Path, store: str) -> None:
    """A restore journal (drill.rollback) of a store the net has put back is superseded: drop it."""
    with contextlib.suppress(StoreError):
        found = rollback.interrupted(backup_dir, store)
        if found is not None:
            rollback.forget(found)

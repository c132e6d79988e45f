"""Failures planted into a restore, to prove that rollback works when a restore really fails.

Each fault is real, not simulated in drill's own code path:
- corrupt: the restore is given a copy of the backup with bytes flipped in its middle (any kind);
- killed, full-disk: the server doing the restore is killed (SIGKILL), or the restore runs out of
  disk; planted by stores whose kind declares capabilities.ServerFaults (local PostgreSQL:
  drill/stores/postgres/faults.py);
- timeout: the restore is given a time limit it cannot meet, and is stopped when it expires.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import cast

from drill.errors import StoreError
from drill.stores import kinds
from drill.stores.base import BackupArtifact, Store
from drill.stores.capabilities import AbortsRestore, ServerFaults

CAUSES = {"the backup is corrupt": "corrupt", "the server is killed": "killed", "the disk is full": "full-disk",
          "it times out": "timeout"}
CAUSE_PATTERN = "|".join(CAUSES)
SERVER_FAULTS = ("killed", "full-disk")  # planted by the store itself (capabilities.ServerFaults)
TIMEOUT_FAULT_SECONDS = 0.05


class FaultError(StoreError):
    """The fault could not be planted: the drill cannot show what it meant to show."""


def cause_of(text: str | None) -> str:
    return CAUSES[text] if text else "corrupt"


def corrupt_copy(artifact: BackupArtifact, directory: Path) -> BackupArtifact:
    """A copy of the backup with bytes flipped half-way in (its recorded checksum stays the original's)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"corrupt-{artifact.path.name}"
    if artifact.path.is_dir():
        shutil.copytree(artifact.path, target)
        files = sorted(p for p in target.rglob("*") if p.is_file() and p.stat().st_size > 0)
        if not files:
            raise StoreError(f"backup {artifact.id} has no file to corrupt")
        victim = max(files, key=lambda p: p.stat().st_size)
    else:
        shutil.copyfile(artifact.path, target)
        victim = target
    size = victim.stat().st_size
    with victim.open("r+b") as handle:
        handle.seek(size // 2)
        chunk = handle.read(64)
        handle.seek(size // 2)
        handle.write(bytes(b ^ 0xFF for b in chunk))
    return replace(artifact, path=target, id=f"{artifact.id} (corrupted copy)")


def text_of(cause: str) -> str:
    return next((text for text, code in CAUSES.items() if code == cause), cause)


def plant(store: Store, cause: str, scratch: Path) -> AbstractContextManager[object]:
    """The context in which the next restore of `store` meets a server fault (killed, full-disk)."""
    if not isinstance(store, ServerFaults):
        owners = " and ".join(s.display_name for s in kinds.all_kinds().values() if s.has(ServerFaults))
        raise FaultError(f"the fault {text_of(cause)!r} is planted into local {owners or 'server'} stores only (drill "
                         f"kills or fills the disk of a server it runs); {store.name!r} is a "
                         f"{kinds.spec(store.kind).display_name} store")
    return store.plant_fault(cause, scratch)


def run_with_timeout(action: Callable[[], Store], seconds: float, abort: Callable[[], None],
                     what: str) -> Store:
    """Run the restore in a worker; past its time limit, stop it (abort) and fail with a clear message."""
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["store"] = action()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="drill-restore", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        deadline = time.monotonic() + 120
        while worker.is_alive() and time.monotonic() < deadline:
            abort()
            worker.join(0.1)
        raise StoreError(f"{what} did not finish within its time limit of {seconds:g} seconds and was stopped")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return cast(Store, outcome["store"])


def abort(store: Store) -> Callable[[], None]:
    """How to stop a restore of `store` that ran past its time limit (nothing, for a kind that cannot)."""
    if isinstance(store, AbortsRestore):
        return store.abort_restore
    return lambda: None

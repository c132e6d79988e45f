"""The repository as a local directory: where each backup lives, locking, listing, and the steps of a backup's life.

Writing (drill.repository.writing), trust (trust), and reading back (reading) are done by their own
modules; this class keeps the layout and the hooks a repository elsewhere overrides (GcsRepository:
`_fetch`, `_publish`, `_record`, listing, locking and deletion).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from drill import crypto, safe_paths
from drill.errors import BackupError
from drill.lock import store_lock
from drill.repository import reading, trust, writing
from drill.repository.manifest import MANIFEST, VERIFIED, Entry, Manifest
from drill.results import iso
from drill.stores.base import BackupArtifact


class Repository:
    """A local directory. Subclasses (GcsRepository) keep the same layout elsewhere and use `root` as a
    local working area, overriding the hooks `_fetch`, `_publish`, `_record`, listing and deletion."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    # -- where ------------------------------------------------------------------------------------------

    def store_dir(self, store: str) -> Path:
        return safe_paths.not_a_symlink(self.root / safe_paths.store_name(store))

    def lock(self, store: str, action: str) -> contextlib.AbstractContextManager[Path]:
        return store_lock(self.root / ".locks", store, action)

    @contextlib.contextmanager
    def staging(self, store: str) -> Iterator[Path]:
        """A `.partial-*` directory for a backup being made; removed unless it was committed."""
        directory = self.store_dir(store) / f".partial-{uuid.uuid4().hex[:12]}"
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=0o700)
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def sweep_partials(self, store: str) -> list[Path]:
        """Remove what crashed runs left behind (call only under the store's lock)."""
        removed = []
        directory = self.store_dir(store)
        for stale in sorted(directory.glob(".partial-*")) + sorted(directory.glob(".deleting-*")):
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
        return removed

    # -- write ------------------------------------------------------------------------------------------

    def commit(self, staging: Path, artifact: BackupArtifact, key: crypto.Key | None) -> Entry:
        """Move (unencrypted) or encrypt the artifact's file into `staging`, write the manifest, rename into place.

        With a key the plaintext must live outside the repository (a private temp folder): it is read
        once, encrypted while streaming into `staging`, and removed; only ciphertext reaches the repository.
        """
        manifest = writing.write_backup(staging, artifact, key)
        final = self.store_dir(artifact.store) / artifact.id
        writing.move_into_place(staging, final, artifact.id)
        committed = Entry(manifest, final)
        self._publish(committed)
        return committed

    def _publish(self, entry: Entry) -> None:
        """Make a committed backup exist where the repository lives (local: it already does)."""

    def _fetch(self, entry: Entry) -> None:
        """Bring the backup's files next to its manifest (local: they are there)."""

    # -- read -------------------------------------------------------------------------------------------

    def stores(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))

    def entries(self, store: str | None = None) -> list[Entry]:
        """Complete backups (a directory with a readable manifest), oldest first."""
        found: list[Entry] = []
        for name in [store] if store else self.stores():
            directory = self.store_dir(name)
            if not directory.is_dir():
                continue
            for candidate in directory.iterdir():
                if candidate.name.startswith(".") or not (candidate / MANIFEST).exists():
                    continue
                safe_paths.not_a_symlink(candidate)
                try:
                    manifest = Manifest.from_dict(json.loads(safe_paths.read_text(candidate / MANIFEST)))
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    raise BackupError(f"unreadable manifest {candidate / MANIFEST}: {exc}") from None
                except BackupError as exc:
                    raise BackupError(f"refusing the manifest {candidate / MANIFEST}: {exc}") from None
                found.append(Entry(manifest, candidate))
        return sorted(found, key=lambda e: (e.manifest.created_at, e.id))

    def get(self, store: str, backup_id: str) -> Entry:
        safe_paths.store_name(store)
        if backup_id != "latest":
            safe_paths.backup_id(backup_id)
        entries = self.entries(store)
        if backup_id == "latest":
            if not entries:
                raise BackupError(f"no backup of {store!r} in the repository {self.location}: take one with "
                                  f"`drill backup {store}`")
            for entry in entries:  # which one is newest means nothing while one sits in another's place
                trust.check_binding(entry)
            return entries[-1]
        for entry in entries:
            if entry.id == backup_id:
                return entry
        listed = ", ".join(e.id for e in entries[-5:]) or "none"
        raise BackupError(f"no backup {backup_id!r} of {store!r} in {self.location} (newest: {listed}); "
                          f"see `drill backups list {store}`")

    # -- check ------------------------------------------------------------------------------------------

    def authenticate(self, entry: Entry, key: crypto.Key | None) -> str:
        """Whether the key vouches for the manifest: AUTHENTICATED, UNAUTHENTICATED (no key) or LEGACY
        (drill.repository.trust.authenticate)."""
        return trust.authenticate(entry, key)

    def verify(self, entry: Entry, key: crypto.Key | None) -> str:
        """The manifest authenticated, every stored file's sha256, and (encrypted) every chunk decrypted and the
        plaintext's sha256 compared; returns what authenticate() said.

        Records the outcome in verified.json; raises BackupError naming what is wrong. A wrong or
        missing key (ConfigError) is a configuration problem, not a bad backup: nothing is recorded.
        """
        try:
            verdict = self.authenticate(entry, key)
            self._fetch(entry)
            for item in entry.manifest.files:
                reading.check_stored(entry, item)
                if entry.manifest.encryption is not None:
                    plain = reading.check_decrypts(entry, item, trust.key_for(entry, key))
                    if plain != item.plain_sha256:
                        raise BackupError(f"backup {entry.id}: decrypted {item.name} has sha256 {plain}, "
                                          f"the manifest says {item.plain_sha256}")
        except BackupError as exc:
            self._record(entry, "failed", str(exc))
            raise
        self._record(entry, "ok", "")
        return verdict

    def materialize(self, entry: Entry, key: crypto.Key | None, workdir: Path) -> BackupArtifact:
        """The backup as a plain file the store adapter can restore, fully checked first.

        The manifest is authenticated (with a key) and bound to its directory; encrypted backups are
        decrypted into `workdir` (a private temp folder) completely, every chunk authenticated and the
        plaintext's sha256 compared with the manifest, before this returns: nothing is restored from
        data that has not been proven whole.
        """
        if len(entry.manifest.files) != 1:
            raise BackupError(f"backup {entry.id} has {len(entry.manifest.files)} files; this drill restores "
                              f"single-file backups")
        self.authenticate(entry, key)
        item = entry.manifest.files[0]
        self._fetch(entry)
        reading.check_stored(entry, item)
        plain, sha256 = reading.plain_file(entry, item, key, workdir)
        return reading.as_artifact(entry, item, plain, sha256)

    def _record(self, entry: Entry, status: str, message: str) -> None:
        with contextlib.suppress(OSError, BackupError):
            safe_paths.write_json(safe_paths.not_a_symlink(entry.directory) / VERIFIED,
                                  {"status": status, "at": iso(time.time()), "message": message})

    # -- delete -----------------------------------------------------------------------------------------

    def delete(self, entry: Entry) -> None:
        safe_paths.not_a_symlink(entry.directory)
        doomed = entry.directory.with_name(f".deleting-{safe_paths.backup_id(entry.id)}")
        os.rename(entry.directory, doomed)  # gone from listings at once; the files follow
        shutil.rmtree(doomed)

"""The backup repository: one directory per backup with a manifest, written atomically.

Layout (a local directory; a GCS bucket prefix would implement the same `Repository` methods):

    <root>/<store>/<backup id>/manifest.json       what the backup is (see Manifest), written last
    <root>/<store>/<backup id>/<file>[.enc]        the backup's file(s), encrypted when a key is set
    <root>/<store>/<backup id>/verified.json       the outcome of the last verification
    <root>/<store>/.partial-<hex>/                 a backup being written (never listed)
    <root>/.locks/<store>.lock                     one run per store (drill.lock)

A backup is written into `.partial-<hex>/`, its files fsync'ed, its manifest written last, and the
directory renamed to its id in one step. A crash at any point leaves at most a `.partial-*`
directory, which no listing shows and the next run under the store's lock removes. Deletion is
the reverse: rename to `.deleting-*`, then remove.

Nothing in the repository is trusted unless the key vouches for it (restic's rule). With a key, each
file is encrypted with age and each manifest carries an HMAC-SHA256 (key: HKDF of the backup key)
over its store, id, times, file list, sizes, sha256s and fingerprint; `verify` and `restore` check
it, and check that the manifest sits in the directory of its own store and id, so a swapped,
replayed or renamed backup is refused. Without a key the metadata is unauthenticated, and `list` and
`verify` say so. Every name read from a manifest is a plain name (drill/safe_paths.py) and no
symlink inside the repository is followed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
import shutil
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drill import __version__, age_files, crypto, safe_paths
from drill.errors import BackupError, ConfigError
from drill.fingerprint import Fingerprint
from drill.lock import store_lock
from drill.results import iso
from drill.stores.base import BackupArtifact, sha256_file

if TYPE_CHECKING:
    from drill.config import Config
    from drill.scenario import DrillScenario

MANIFEST = "manifest.json"
VERIFIED = "verified.json"
SCHEMA_VERSION = 2  # 2: age encryption and an authenticated manifest (1: AES-GCM, unauthenticated; still read)
MAC_ALGORITHM = "HMAC-SHA256"
MAC_KDF = "HKDF-SHA256(backup key, info 'drill manifest hmac v1')"
AUTHENTICATED, UNAUTHENTICATED, LEGACY = "authenticated", "unauthenticated", "legacy"


@dataclass
class FileEntry:
    name: str  # as stored (with .enc when encrypted)
    size: int  # as stored
    sha256: str  # of the stored bytes: checked before anything else
    plain_sha256: str  # of the backup itself (after decryption): checked again after decryption
    plain_size: int


@dataclass
class Manifest:
    id: str
    store: str
    kind: str
    format: str
    created_at: float
    consistent_at: float
    size: int  # bytes stored, all files
    files: list[FileEntry]
    tool_versions: dict[str, str] = field(default_factory=dict)
    server_version: str | None = None
    drill_version: str = __version__
    encryption: dict[str, Any] | None = None  # algorithm, key id, chunk size: never the key
    fingerprint: dict[str, Any] | None = None  # the data's fingerprint in the backup's snapshot
    # A backup the store made as a directory (mongodump layout) is stored as one tar ("packed"); its
    # files are listed with their sha256 in "contents", and the store's own digest of it is kept.
    packed: str | None = None
    contents: list[dict[str, Any]] = field(default_factory=list)
    store_sha256: str | None = None
    schema_version: int = SCHEMA_VERSION
    mac: dict[str, Any] | None = None  # the HMAC over everything else (see body()); None without a key

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created"] = iso(self.created_at)
        data["consistent"] = iso(self.consistent_at)
        return data

    def body(self) -> bytes:
        """The canonical bytes the MAC covers: every field but the MAC itself."""
        data = {k: v for k, v in self.to_dict().items() if k != "mac"}
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """A manifest as read from the repository: every name in it checked before it can become a path."""
        files = [FileEntry(**f) for f in data["files"]]
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "files"}
        manifest = cls(files=files, **known)
        safe_paths.store_name(manifest.store)
        safe_paths.backup_id(manifest.id)
        for item in files:
            safe_paths.file_name(item.name)
        for content in manifest.contents:
            _check_relative(content.get("name"))
        return manifest


def _check_relative(name: object) -> None:
    """A path inside a packed directory backup: relative, and no part of it is `..` or empty."""
    parts = name.split("/") if isinstance(name, str) else []
    if not parts or any(p in ("", ".", "..") or "\0" in p for p in parts):  # a leading "/" makes an empty part
        raise BackupError(f"{name!r} is not a valid file name inside a backup (relative, no '..'): the manifest "
                          f"was altered")


@dataclass
class Entry:
    """One complete backup in the repository."""

    manifest: Manifest
    directory: Path

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def verification(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(safe_paths.read_text(self.directory / VERIFIED))
        except (OSError, ValueError, BackupError):
            return None
        return data if isinstance(data, dict) else None

    @property
    def authenticated(self) -> bool:
        return self.manifest.mac is not None

    @property
    def verified(self) -> bool:
        found = self.verification
        return bool(found and found.get("status") == "ok")


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
        source = artifact.path
        contents: list[dict[str, Any]] = []
        if source.is_dir():
            contents = [{"name": f.relative_to(source).as_posix(), "size": f.stat().st_size, "sha256": sha256_file(f)}
                        for f in sorted(source.rglob("*")) if f.is_file()]
            packed = source.parent / f"{source.name}.tar"
            with tarfile.open(packed, "w") as archive:
                archive.add(source, arcname=source.name)
            shutil.rmtree(source)
            source = packed
        plain_size = source.stat().st_size
        mac_key = key
        if key is not None:
            stored = safe_paths.inside(staging, safe_paths.file_name(f"{source.name}.age"))
            plain_sha = age_files.encrypt_file(source, stored, key)
            source.unlink()
            if not contents and artifact.sha256 and plain_sha != artifact.sha256:
                raise BackupError(f"backup {artifact.id} changed between the dump and its encryption (sha256 "
                                  f"{plain_sha}, the store recorded {artifact.sha256}); not kept")
            encryption: dict[str, Any] | None = age_files.parameters(key)
        else:
            plain_sha = sha256_file(source) if contents or not artifact.sha256 else artifact.sha256
            stored = safe_paths.inside(staging, safe_paths.file_name(source.name))
            os.replace(source, stored)
            encryption = None
        _fsync(stored)
        entry = FileEntry(stored.name, stored.stat().st_size, sha256_file(stored), plain_sha, plain_size)
        manifest = Manifest(
            id=safe_paths.backup_id(artifact.id), store=safe_paths.store_name(artifact.store), kind=artifact.kind,
            format=artifact.format, created_at=artifact.created_at, consistent_at=artifact.consistent_at,
            size=entry.size, files=[entry], tool_versions=dict(artifact.tool_versions),
            server_version=artifact.server_version, encryption=encryption,
            fingerprint=artifact.fingerprint.to_dict() if artifact.fingerprint else None,
            packed="tar" if contents else None, contents=contents, store_sha256=artifact.sha256)
        if mac_key is not None:
            manifest.mac = {"algorithm": MAC_ALGORITHM, "kdf": MAC_KDF, "key_id": mac_key.id,
                            "value": crypto.manifest_mac(mac_key, manifest.body())}
        safe_paths.write_json(staging / MANIFEST, manifest.to_dict())
        for leftover in staging.iterdir():  # e.g. the store's empty work directory
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
        final = self.store_dir(artifact.store) / artifact.id
        if final.exists() or final.is_symlink():
            raise BackupError(f"a backup with id {artifact.id} already exists in {final.parent}")
        os.rename(staging, final)  # the one step that makes the backup exist
        _fsync_dir(final.parent)
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
                _check_binding(entry)
            return entries[-1]
        for entry in entries:
            if entry.id == backup_id:
                return entry
        listed = ", ".join(e.id for e in entries[-5:]) or "none"
        raise BackupError(f"no backup {backup_id!r} of {store!r} in {self.location} (newest: {listed}); "
                          f"see `drill backups list {store}`")

    # -- check ------------------------------------------------------------------------------------------

    def authenticate(self, entry: Entry, key: crypto.Key | None) -> str:
        """Whether the key vouches for the manifest: AUTHENTICATED, UNAUTHENTICATED (no key) or LEGACY.

        Raises BackupError when the manifest was altered, or sits in another backup's directory
        (swapped, replayed or renamed); WrongKeyError/ConfigError when the key is wrong or missing.
        """
        m = entry.manifest
        _check_binding(entry)
        if m.mac is not None:
            if key is None:
                raise ConfigError(f"backup {m.id} is authenticated (and encrypted) with key id {m.mac.get('key_id')}; "
                                  f"set key_file under [repository] in drill.toml to the key it was made with")
            if m.mac.get("key_id") != key.id:
                raise crypto.WrongKeyError(
                    f"backup {m.id} was made with key id {m.mac.get('key_id')}; the key file {key.source} has key id "
                    f"{key.id}: wrong key (or the manifest's key id was edited)")
            if not crypto.mac_matches(key, m.body(), str(m.mac.get("value", ""))):
                raise BackupError(f"backup {m.id}: its manifest fails authentication (HMAC): its store, id, times, "
                                  f"file list, sizes, sha256s or fingerprint were changed after it was written; it "
                                  f"cannot be trusted")
            return AUTHENTICATED
        if m.encryption is not None:
            if m.encryption.get("algorithm") != crypto.ALGORITHM:
                raise BackupError(f"backup {m.id} is encrypted but its manifest carries no authentication code: it "
                                  f"was altered; it cannot be trusted")
            self._key_for(entry, key)
            return LEGACY  # made by drill before manifests were authenticated; its data is, by AES-GCM
        if key is not None:
            raise BackupError(f"backup {m.id} is neither encrypted nor authenticated, but this repository has a key: "
                              f"it was made before key_file was set, or its manifest was replaced. Refusing it; to "
                              f"use it anyway, run with key_file unset")
        return UNAUTHENTICATED

    def verify(self, entry: Entry, key: crypto.Key | None) -> str:
        """The manifest authenticated, every stored file's sha256, and (encrypted) every chunk decrypted and the
        plaintext's sha256 compared; returns what authenticate() said.

        Records the outcome in verified.json; raises BackupError naming what is wrong. A wrong or
        missing key (ConfigError) is a configuration problem, not a bad backup: nothing is recorded.
        """
        try:
            trust = self.authenticate(entry, key)
            self._fetch(entry)
            for item in entry.manifest.files:
                self._check_stored(entry, item)
                if entry.manifest.encryption is not None:
                    plain = self._check_decrypts(entry, item, self._key_for(entry, key))
                    if plain != item.plain_sha256:
                        raise BackupError(f"backup {entry.id}: decrypted {item.name} has sha256 {plain}, "
                                          f"the manifest says {item.plain_sha256}")
        except BackupError as exc:
            self._record(entry, "failed", str(exc))
            raise
        self._record(entry, "ok", "")
        return trust

    def _check_decrypts(self, entry: Entry, item: FileEntry, key: crypto.Key) -> str:
        path = safe_paths.inside(entry.directory, item.name)
        if _is_age(entry):
            return age_files.check_file(path, key)
        return crypto.check_file(path, key)

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
        self._check_stored(entry, item)
        stored = safe_paths.inside(entry.directory, item.name)
        if entry.manifest.encryption is not None:
            plain_name = item.name.removesuffix(".age").removesuffix(".enc")
            plain = safe_paths.inside(workdir, safe_paths.file_name(plain_name))
            if _is_age(entry):
                digest, _ = age_files.decrypt_file(stored, plain, self._key_for(entry, key))
            else:
                digest = crypto.decrypt_file(stored, plain, self._key_for(entry, key))
            if digest != item.plain_sha256:
                plain.unlink(missing_ok=True)
                raise BackupError(f"backup {entry.id}: decrypted data has sha256 {digest}, the manifest says "
                                  f"{item.plain_sha256}")
        else:
            plain = stored
        m = entry.manifest
        sha256: str | None = item.plain_sha256
        if m.packed == "tar":
            plain, sha256 = self._unpack(entry, plain, workdir), m.store_sha256
        return BackupArtifact(
            id=m.id, store=m.store, kind=m.kind, format=m.format, path=plain, sha256=sha256,
            size=item.plain_size, created_at=m.created_at, consistent_at=m.consistent_at,
            tool_versions=m.tool_versions, server_version=m.server_version,
            fingerprint=Fingerprint.from_dict(m.fingerprint) if m.fingerprint else None, source="repository")

    def _unpack(self, entry: Entry, archive_path: Path, workdir: Path) -> Path:
        """A directory backup out of its tar, every file checked against the manifest's contents."""
        target = workdir / "unpacked"
        with tarfile.open(archive_path, "r:") as archive:
            archive.extractall(target, filter="data")
        if archive_path.parent == workdir:
            archive_path.unlink()
        roots = [p for p in target.iterdir()]
        if len(roots) != 1 or not roots[0].is_dir():
            raise BackupError(f"backup {entry.id}: its tar does not hold one directory")
        found = {f.relative_to(roots[0]).as_posix(): f for f in roots[0].rglob("*") if f.is_file()}
        listed = {c["name"]: c for c in entry.manifest.contents}
        if set(found) != set(listed):
            raise BackupError(f"backup {entry.id}: files differ from its manifest: "
                              f"{sorted(set(found) ^ set(listed))[:5]}")
        for name, path in found.items():
            if sha256_file(path) != listed[name]["sha256"]:
                raise BackupError(f"backup {entry.id}: {name} does not match the sha256 in its manifest")
        return roots[0]

    def _check_stored(self, entry: Entry, item: FileEntry) -> None:
        path = safe_paths.not_a_symlink(safe_paths.inside(entry.directory, safe_paths.file_name(item.name)))
        if not path.is_file():
            raise BackupError(f"backup {entry.id}: file {item.name} is missing from {entry.directory}")
        size = path.stat().st_size
        if size != item.size:
            raise BackupError(f"backup {entry.id}: {item.name} is {size} bytes, the manifest says {item.size} "
                              f"(truncated or appended to)")
        digest = sha256_file(path)
        if digest != item.sha256:
            raise BackupError(f"backup {entry.id}: {item.name} is corrupt: sha256 {digest} does not match "
                              f"{item.sha256} in its manifest")

    def _key_for(self, entry: Entry, key: crypto.Key | None) -> crypto.Key:
        if key is None:
            wanted = (entry.manifest.encryption or {}).get("key_id")
            raise ConfigError(f"backup {entry.id} is encrypted (key id {wanted}); set key_file under [repository] "
                              f"in drill.toml to the key it was made with")
        return key

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


def open_repository(config: Config) -> Repository:
    """The repository [repository] names: a local directory, or a GCS bucket prefix."""
    if config.repository.gcs:
        from drill.repository_gcs import GcsRepository

        return GcsRepository(config.repository.gcs, config.repository_path)
    return Repository(config.repository_path)


def use_in_drill(drill: DrillScenario, name: str) -> BackupArtifact:
    """A drill's step: the newest repository backup of `name` (what production's cron made) becomes the
    store's latest backup, checked and decrypted now, with the fingerprint its manifest recorded."""
    drill.store(name)  # declared first, like every step that names a store
    repo = open_repository(drill.config)
    key_file = drill.config.repository.key_file
    entry = repo.get(name, "latest")
    workdir = safe_paths.private_temp("drill-repo-")
    drill.cleanup.push(f"remove the checked copy of backup {entry.id}", lambda: shutil.rmtree(workdir, True))
    with drill.clock.phase("fetch", name):
        artifact = repo.materialize(entry, crypto.load_key(key_file) if key_file else None, workdir)
    evidence = dataclasses.replace(artifact.as_evidence(), path=str(entry.directory),
                                   encryption=entry.manifest.encryption)
    drill.record_backup(artifact, evidence=evidence)
    drill.reporter.info(f"latest repository backup of {name}: {entry.id} (consistent at "
                        f"{iso(artifact.consistent_at)}, checked)", force=True)
    return artifact


def newest_matching(pattern: str, base: Path, zone: str = "UTC") -> tuple[Path, float]:
    """The newest file matching a glob (backups made outside drill), dated by its name (in `zone`) or its mtime."""
    full = os.path.normpath(pattern if os.path.isabs(pattern) else base / pattern)  # no dr/../backups in messages
    matches = [Path(p) for p in glob.glob(full) if Path(p).is_file()]
    if not matches:
        raise BackupError(f"no backup file matches {pattern!r} (searched {full})")
    dated = sorted(((date_of(p, zone), p) for p in matches), key=lambda pair: (pair[0], str(pair[1])))
    when, newest = dated[-1]
    return newest, when


def date_of(path: Path, zone: str = "UTC") -> float:
    """A backup's date from its name (runbook style: userdb_20240115_143000.sql.gz, in `zone`), else its mtime."""
    from drill.backup_dates import date_of as dated  # one rule for drills and for `drill restore`

    return dated(path, zone)


def _check_binding(entry: Entry) -> None:
    """A manifest is only valid in the directory of its own store and id (no swap, replay or rename)."""
    m = entry.manifest
    if entry.directory.name != m.id or entry.directory.parent.name != m.store:
        raise BackupError(f"the directory {entry.directory.parent.name}/{entry.directory.name} holds the manifest "
                          f"of backup {m.id} of store {m.store!r}: it was moved, renamed or copied from another "
                          f"backup; refusing it")


def _is_age(entry: Entry) -> bool:
    return (entry.manifest.encryption or {}).get("algorithm") == "age"


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

"""A folder of files as a store: tar.gz backups, restores with drill's tar rules, per-directory fingerprints.

Backups are what the runbook makes, `tar -czf NAME.tar.gz -C FOLDER .` (entries `./a/b`), written
as `.partial` and renamed when whole, with their sha256. A restore reads the archive through first
(drill.tar_safety: nothing outside the folder, no device, the gzip CRC), then empties the target
folder and extracts into it with Python's `data` filter. The fingerprint has one part per
top-level directory (`.` for the files at the top): the number of regular files and a hash over
every entry's path, type, mode, size and sha256 (a link: its target). drill's RPO markers are
empty files under `.drill-markers/`, left out of counts and fingerprints.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from drill import found_backups, safe_paths, tar_safety
from drill.config import StoreConfig
from drill.errors import BackupError, StoreError
from drill.fingerprint import Fingerprint, PartPrint
from drill.markers import marker_file_name, newest_marker
from drill.stores.base import BackupArtifact, Guarded, Marker, Progress, Store, check_backup_file, no_progress
from drill.stores.capabilities import PlantedChange
from drill.stores.files import KIND, FilesOptions, checks

PREFIX = "drill-files-"
ROOT_PART = "."
MARKER_DIR = ".drill-markers"
SCHEMA_LIMIT = 2000  # per-file entries kept in a fingerprint's schema (beyond: counts and content hash only)
CHUNK = 1 << 20


def _entries(root: Path) -> list[tuple[str, os.stat_result]]:
    """Every entry under `root` (relative POSIX path, lstat), markers left out, sorted by path."""
    found = []
    for directory, dirs, names in os.walk(root):
        base = Path(directory)
        for name in dirs + names:
            path = base / name
            relative = path.relative_to(root).as_posix()
            if relative == MARKER_DIR or relative.startswith(MARKER_DIR + "/"):
                continue
            found.append((relative, path.lstat()))
        dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
    return sorted(found)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _detail(root: Path, relative: str, info: os.stat_result) -> tuple[str, bool]:
    """How an entry is described in a fingerprint, and whether it is a regular file (what counts count)."""
    mode = f"mode {stat.S_IMODE(info.st_mode):04o}"
    path = root / relative
    if stat.S_ISLNK(info.st_mode):
        return f"symlink, -> {os.readlink(path)}", False
    if stat.S_ISDIR(info.st_mode):
        return f"dir, {mode}", False
    if stat.S_ISREG(info.st_mode):
        return f"file, {mode}, {info.st_size} bytes, sha256 {_sha256(path)[:16]}", True
    return f"special, {mode}", False


def folder_fingerprint(root: Path) -> Fingerprint:
    parts: dict[str, list[tuple[str, str]]] = {}
    files: dict[str, int] = {}
    entries = _entries(root) if root.is_dir() else []
    for relative, info in entries:
        detail, regular = _detail(root, relative, info)
        top = relative.split("/", 1)[0] if ("/" in relative or stat.S_ISDIR(info.st_mode)) else ROOT_PART
        parts.setdefault(top, []).append((relative, detail))
        files[top] = files.get(top, 0) + (1 if regular else 0)
    out: dict[str, PartPrint] = {}
    for top, listed in parts.items():
        content = hashlib.sha256("\n".join(f"{p}\t{d}" for p, d in listed).encode()).hexdigest()
        schema = dict(listed) if len(entries) <= SCHEMA_LIMIT else {}
        out[top] = PartPrint(count=files.get(top, 0), content=content, schema=schema)
    return KIND.fingerprint(out, taken_at=time.time())


def scratch_folder() -> Path:
    """A new empty folder for a throwaway store or a restore target: `files/` inside a private 0700 temporary
    folder (which also holds its owner's pid, so that a killed run's folders are swept by the next one)."""
    root = safe_paths.private_temp(PREFIX) / "files"
    root.mkdir(mode=0o700)
    return root


def _empty(root: Path) -> None:
    for child in list(root.iterdir()):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


@dataclass
class FilesStore(Guarded):
    """A folder: a throwaway one (local), an existing one (live, `path`), or a scratch copy restored `into`."""

    name: str
    config: StoreConfig
    root: Path
    kind: str = KIND.kind
    scratch: list[Path] = field(default_factory=list)  # folders this store made as restore targets: removed at close

    def describe(self) -> dict[str, str]:
        return {"kind": "files", "location": f"folder {self.root}", "server_version": "local file system",
                "provision": self.config.provision}

    # -- the files ----------------------------------------------------------------------------------------

    def file_path(self, name: str) -> Path:
        """`root/name`, refused when the name is absolute, has `..` or leads out of the folder through a link."""
        parts = PurePosixPath(name).parts
        if not name or name.startswith("/") or ".." in parts:
            raise StoreError(f"{name!r} is not a file name inside files store {self.name!r}: give a path relative "
                             f"to its folder, without '..'")
        path = self.root.joinpath(*parts)
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise StoreError(f"{name!r} in files store {self.name!r} leads outside its folder (a symbolic link)")
        return path

    def seed(self, count: int, progress: Progress = no_progress) -> None:
        """`count` deterministic configuration-like files under seed/ (modes 0644 and 0600, sizes 0..~2 KiB)."""
        self.require_writes("seed")
        if (self.root / "seed").exists():
            raise StoreError(f"cannot seed {self.name!r}: its folder {self.root} already holds seed/")
        for i in range(count):
            path = self.root / "seed" / f"d{i % 10:02d}" / f"setting-{i:05d}.{('conf', 'env', 'json')[i % 3]}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"key_{i}_{j} = värde {j} ✓\n" for j in range(i % 40)), encoding="utf-8")
            os.chmod(path, (0o644, 0o600)[i % 2])
        progress(f"seeded {count} files into {self.root}")

    def count(self, part: str | None = None) -> int:
        printed = self.fingerprint()
        if part is None:
            return printed.total
        found = printed.parts.get(part.strip("/") or ROOT_PART)
        if found is None:
            raise StoreError(f"files store {self.name!r} has no top-level directory {part!r}; it has: "
                             f"{', '.join(sorted(printed.parts)) or 'nothing'}")
        return found.count

    def fingerprint(self) -> Fingerprint:
        return folder_fingerprint(self.root)

    # -- richer counts and the self-test (checks.py) -----------------------------------------------------------

    def count_matching(self, pattern: str) -> int:
        return checks.count_matching(self, pattern)

    def plant_change(self) -> PlantedChange:
        return checks.plant_change(self, ROOT_PART)

    # -- backup and restore ---------------------------------------------------------------------------------

    def backup(self, directory: Path, progress: Progress = no_progress) -> BackupArtifact:
        directory.mkdir(parents=True, exist_ok=True)
        created = time.time()
        backup_id = f"{self.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(created))}-{uuid.uuid4().hex[:6]}"
        final = directory / f"{backup_id}.tar.gz"
        partial = final.with_name(f".{final.name}.partial")
        consistent_at = time.time()
        fingerprint = self.fingerprint()
        try:
            with partial.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
                    tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for relative, _info in _entries(self.root):
                    tar.add(self.root / relative, arcname=f"./{relative}", recursive=False)
            os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        if self.fingerprint().parts != fingerprint.parts:
            final.unlink(missing_ok=True)
            raise BackupError(f"the files of {self.name!r} changed while they were being backed up; try again")
        progress(f"backed up {fingerprint.total} files of {self.root} to {final}")
        return BackupArtifact(
            id=backup_id, store=self.name, kind="files", format="tar.gz", path=final,
            sha256=found_backups.digest(final)[0], size=final.stat().st_size, created_at=time.time(),
            consistent_at=consistent_at, tool_versions={"python tarfile": "PAX"}, fingerprint=fingerprint)

    def verify_backup(self, artifact: BackupArtifact) -> None:
        """A found archive: its sha256 as found and read through; drill's own: its sha256 and read through."""
        if found_backups.is_found(artifact):
            found_backups.check_found(artifact)
            return
        path = check_backup_file(artifact)
        tar_safety.read_through(path, what="tar.gz")

    def restore(self, artifact: BackupArtifact, into: str | None = None,
                progress: Progress = no_progress) -> Store:
        self.verify_backup(artifact)  # read through before the target is touched
        if into is None:
            self.require_destructive("overwrite")
            target, store = self.root, self
        else:
            target = scratch_folder()
            store = FilesStore(name=into, config=replace(self.config, name=into, destructive=True,
                                                          provision="local", options=FilesOptions()),
                               root=target, scratch=[target.parent])
        work = safe_paths.private_temp("drill-files-unpack-")
        try:
            progress(f"extracting {artifact.path.name} into a private folder")
            unpacked = work / "files"
            tar_safety.extract(artifact.path, unpacked, what="tar.gz")
            if into is None:
                progress(f"emptying {target}")
                _empty(target)
            for child in sorted(unpacked.iterdir()):
                shutil.move(str(child), str(target / child.name))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        progress(f"restored {artifact.path.name} into {target}")
        return store

    # -- disaster, markers, clean-up --------------------------------------------------------------------------

    def lose(self) -> None:
        self.require_destructive("lose")
        _empty(self.root)

    def exists(self) -> bool:
        return self.root.is_dir() and any(self.root.iterdir())

    def remove(self) -> None:
        _empty(self.root)

    def markers(self) -> FilesMarkerSink:
        return FilesMarkerSink(self)

    def keep_target(self, name: str) -> None:
        if name == self.name:
            self.scratch.clear()

    def close(self) -> None:
        while self.scratch:
            shutil.rmtree(self.scratch.pop(), ignore_errors=True)


class FilesMarkerSink:
    """RPO markers as empty files .drill-markers/<seq>-<epoch> in the folder (left out of fingerprints and counts)."""

    def __init__(self, store: FilesStore) -> None:
        self.store = store

    def prepare(self) -> None:
        self.store.require_writes("write RPO markers into")
        (self.store.root / MARKER_DIR).mkdir(exist_ok=True)

    def write(self, marker: Marker) -> None:
        (self.store.root / MARKER_DIR / marker_file_name(marker)).touch()

    def newest(self) -> Marker | None:
        folder = self.store.root / MARKER_DIR
        return newest_marker(path.name for path in folder.iterdir()) if folder.is_dir() else None

    def close(self) -> None:
        return None


"""Backups made outside drill, as first-class evidence: found by a glob, dated, hashed, read in their format.

Production's cron jobs write `userdb_20240115_143000.sql.gz`, `dump_*.rdb`, a mongodump folder, a
Firestore export folder... drill finds the newest match of a glob (a glob ending in `/` matches
folders, any other matches files), dates it by the date in its name or else its mtime, and records
it as evidence like its own backups: its sha256 and size, and for a folder the sha256 and size of
each of its files. A folder's sha256 is that of the lines `sha256sum` prints for its files
(`<sha256>  <path>`, paths relative to the folder, sorted by their bytes), so anyone can recompute it:

    cd FOLDER && find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum

The kind's reader (drill.stores.formats) says which of its formats the backup is, from its content:
a file of another kind behind the glob is refused here, in one line naming it. Before a restore the
store checks the backup again (check_found): the same sha256 as when it was found, and whole in its
format.
"""

from __future__ import annotations

import glob
import hashlib
import os
from pathlib import Path

from drill import backup_dates
from drill.backup_dates import BackupDate
from drill.errors import BackupError
from drill.evidence import FileEvidence
from drill.fingerprint import Fingerprint
from drill.stores import formats, kinds
from drill.stores.base import BackupArtifact, sha256_file

UNKNOWN_FORMAT = "external"  # a kind that declares no reader: its found backups are passed on as they are


def _full_pattern(pattern: str, base: Path) -> str:
    """`pattern` made absolute against `base` and normalized, so paths in messages and evidence read
    `backups/x`, not `drills/../backups/x` (a trailing `/` is kept: it selects folders)."""
    full = os.path.normpath(pattern if os.path.isabs(pattern) else base / pattern)
    return full + "/" if pattern.endswith("/") else full


def matches(pattern: str, base: Path) -> list[Path]:
    """Every file matching `pattern` (relative to `base` unless absolute); folders only when it ends in `/`."""
    folders = pattern.endswith("/")
    full = _full_pattern(pattern, base)
    found = [Path(p) for p in glob.glob(full.rstrip("/") if folders else full)]
    return sorted(p for p in found if (p.is_dir() if folders else p.is_file()) and not p.is_symlink())


def newest_dated(pattern: str, base: Path, what: str, zone: str = "UTC") -> tuple[Path, BackupDate]:
    """The newest match by the date in its name (read in `zone`), else its mtime, and that date; BackupError if
    none matches."""
    found = matches(pattern, base)
    if not found:
        full = _full_pattern(pattern, base)
        kind = "folder" if pattern.endswith("/") else "file"
        raise BackupError(f"no backup {kind} of {what} matches {pattern!r} (searched {full})")
    date, path = max(((backup_dates.backup_date(p, zone), p) for p in found), key=lambda pair: (pair[0].at,
                                                                                                  str(pair[1])))
    return path, date


def newest(pattern: str, base: Path, what: str, zone: str = "UTC") -> tuple[Path, float]:
    """newest_dated's match and its date as epoch seconds (one dating rule for drills, `drill restore` and
    `drill backups`: drill.backup_dates)."""
    path, date = newest_dated(pattern, base, what, zone)
    return path, date.at


def folder_files(folder: Path) -> list[FileEvidence]:
    """Every file under a folder with its size and sha256, sorted by path; a symbolic link inside is refused."""
    entries = []
    for root, dirs, names in os.walk(folder):
        for name in sorted(dirs + names):
            path = Path(root) / name
            if path.is_symlink():
                raise BackupError(f"backup folder {folder} holds a symbolic link {path.relative_to(folder)}; drill "
                                  f"follows no link inside a backup")
        for name in names:
            path = Path(root) / name
            entries.append(FileEvidence(path.relative_to(folder).as_posix(), path.stat().st_size, sha256_file(path)))
    return sorted(entries, key=lambda e: e.path.encode())


def folder_sha256(files: list[FileEvidence] | tuple[FileEvidence, ...]) -> str:
    """The sha256 of the `sha256sum` lines of a folder's files (see the module's docstring)."""
    return hashlib.sha256("".join(f"{f.sha256}  {f.path}\n" for f in files).encode()).hexdigest()


def digest(path: Path) -> tuple[str, int, tuple[FileEvidence, ...] | None]:
    """sha256 and size of a file, or of a folder with its files."""
    if path.is_dir():
        files = folder_files(path)
        return folder_sha256(files), sum(f.size for f in files), tuple(files)
    return sha256_file(path), path.stat().st_size, None


def found_backup(store: str, kind: str, path: Path, when: float, *,
                 fingerprint: Fingerprint | None = None) -> BackupArtifact:
    """A backup made outside drill as an artifact: its format (WrongFormat for another kind's), sha256, size."""
    spec = kinds.spec(kind)
    reader = formats.reader_of(spec)
    fmt = formats.identify(spec, reader, path).name if reader is not None else UNKNOWN_FORMAT
    sha256, size, files = digest(path)
    return BackupArtifact(id=path.name, store=store, kind=kind, format=fmt, path=path, sha256=sha256, size=size,
                          created_at=when, consistent_at=when, fingerprint=fingerprint, source="external", files=files)


def format_of(artifact: BackupArtifact) -> formats.BackupFormat:
    """The artifact's format as its kind's reader declares it."""
    reader = formats.reader_of(kinds.spec(artifact.kind))
    found = next((f for f in reader.formats if f.name == artifact.format), None) if reader else None
    if found is None:
        raise BackupError(f"backup {artifact.path} has the format {artifact.format!r}, which {artifact.kind} stores "
                          f"do not read")
    return found


def check_found(artifact: BackupArtifact) -> None:
    """Before a restore: the backup is still what was found (its sha256) and whole in its format."""
    path = artifact.path
    if not path.exists():
        raise BackupError(f"backup {path} of {artifact.store!r} is gone since it was found")
    if artifact.sha256 is not None:
        sha256, _, _ = digest(path)
        if sha256 != artifact.sha256:
            raise BackupError(f"backup {path} changed since it was found: sha256 {sha256}, was {artifact.sha256}")
    reader = formats.reader_of(kinds.spec(artifact.kind))
    if reader is not None:
        reader.check(path, format_of(artifact))


def is_found(artifact: BackupArtifact) -> bool:
    """A backup made outside drill, in a format its kind's reader knows (the store restores it by format)."""
    return artifact.source == "external" and artifact.format != UNKNOWN_FORMAT

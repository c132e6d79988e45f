"""Reading a backup back: its stored files checked against the manifest, decrypted and unpacked, proven whole.

Nothing is restored from data that has not been proven whole: sizes and sha256s of the stored bytes first,
then (encrypted) every chunk authenticated and the plaintext's sha256 compared, then (a directory backup)
every file of the tar against the manifest's list.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from drill import age_files, crypto, safe_paths
from drill.errors import BackupError
from drill.fingerprint import Fingerprint
from drill.repository.manifest import Entry, FileEntry
from drill.repository.trust import is_age, key_for
from drill.stores.base import BackupArtifact, sha256_file


def check_stored(entry: Entry, item: FileEntry) -> None:
    """The stored file is there, of the size and sha256 its manifest says."""
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


def check_decrypts(entry: Entry, item: FileEntry, key: crypto.Key) -> str:
    """Every chunk decrypted and authenticated, nothing written; the plaintext's sha256."""
    path = safe_paths.inside(entry.directory, item.name)
    if is_age(entry):
        return age_files.check_file(path, key)
    return crypto.check_file(path, key)


def plain_file(entry: Entry, item: FileEntry, key: crypto.Key | None, workdir: Path) -> tuple[Path, str | None]:
    """The backup's plaintext (decrypted into `workdir`, or the stored file itself) and the sha256 to record."""
    stored = safe_paths.inside(entry.directory, item.name)
    if entry.manifest.encryption is not None:
        plain_name = item.name.removesuffix(".age").removesuffix(".enc")
        plain = safe_paths.inside(workdir, safe_paths.file_name(plain_name))
        if is_age(entry):
            digest, _ = age_files.decrypt_file(stored, plain, key_for(entry, key))
        else:
            digest = crypto.decrypt_file(stored, plain, key_for(entry, key))
        if digest != item.plain_sha256:
            plain.unlink(missing_ok=True)
            raise BackupError(f"backup {entry.id}: decrypted data has sha256 {digest}, the manifest says "
                              f"{item.plain_sha256}")
    else:
        plain = stored
    if entry.manifest.packed == "tar":
        return unpack(entry, plain, workdir), entry.manifest.store_sha256
    return plain, item.plain_sha256


def unpack(entry: Entry, archive_path: Path, workdir: Path) -> Path:
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


def as_artifact(entry: Entry, item: FileEntry, plain: Path, sha256: str | None) -> BackupArtifact:
    """The checked plaintext as a backup a store adapter restores, with what its manifest recorded."""
    m = entry.manifest
    return BackupArtifact(
        id=m.id, store=m.store, kind=m.kind, format=m.format, path=plain, sha256=sha256,
        size=item.plain_size, created_at=m.created_at, consistent_at=m.consistent_at,
        tool_versions=m.tool_versions, server_version=m.server_version,
        fingerprint=Fingerprint.from_dict(m.fingerprint) if m.fingerprint else None, source="repository")

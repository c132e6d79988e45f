"""Writing a backup into the repository: packed, encrypted or moved into `.partial-*`, manifest last, one rename.

A directory backup (mongodump layout) is stored as one tar with its files' sha256s listed. With a key the
plaintext lives outside the repository (a private temp folder): it is read once, encrypted while streaming
into the staging directory, and removed; only ciphertext reaches the repository. Everything is fsync'ed
before the rename that makes the backup exist.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from drill import age_files, crypto, safe_paths
from drill.errors import BackupError
from drill.repository.manifest import MAC_ALGORITHM, MAC_KDF, MANIFEST, FileEntry, Manifest
from drill.stores.base import BackupArtifact, sha256_file


def write_backup(staging: Path, artifact: BackupArtifact, key: crypto.Key | None) -> Manifest:
    """The artifact's file moved (unencrypted) or encrypted into `staging`, and its manifest written there."""
    source, contents = _packed(artifact.path)
    plain_size = source.stat().st_size
    stored, plain_sha, encryption = _placed(source, staging, artifact, key, packed=bool(contents))
    _fsync(stored)
    entry = FileEntry(stored.name, stored.stat().st_size, sha256_file(stored), plain_sha, plain_size)
    manifest = Manifest(
        id=safe_paths.backup_id(artifact.id), store=safe_paths.store_name(artifact.store), kind=artifact.kind,
        format=artifact.format, created_at=artifact.created_at, consistent_at=artifact.consistent_at,
        size=entry.size, files=[entry], tool_versions=dict(artifact.tool_versions),
        server_version=artifact.server_version, encryption=encryption,
        fingerprint=artifact.fingerprint.to_dict() if artifact.fingerprint else None,
        packed="tar" if contents else None, contents=contents, store_sha256=artifact.sha256)
    if key is not None:
        manifest.mac = {"algorithm": MAC_ALGORITHM, "kdf": MAC_KDF, "key_id": key.id,
                        "value": crypto.manifest_mac(key, manifest.body())}
    safe_paths.write_json(staging / MANIFEST, manifest.to_dict())
    for leftover in staging.iterdir():  # e.g. the store's empty work directory
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
    return manifest


def move_into_place(staging: Path, final: Path, backup_id: str) -> None:
    """The one step that makes the backup exist: `.partial-*` renamed to its id (never over another backup)."""
    if final.exists() or final.is_symlink():
        raise BackupError(f"a backup with id {backup_id} already exists in {final.parent}")
    os.rename(staging, final)
    _fsync_dir(final.parent)


def _packed(source: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A directory backup as one tar beside it, with the list of its files; a file backup as it is."""
    if not source.is_dir():
        return source, []
    contents = [{"name": f.relative_to(source).as_posix(), "size": f.stat().st_size, "sha256": sha256_file(f)}
                for f in sorted(source.rglob("*")) if f.is_file()]
    packed = source.parent / f"{source.name}.tar"
    with tarfile.open(packed, "w") as archive:
        archive.add(source, arcname=source.name)
    shutil.rmtree(source)
    return packed, contents


def _placed(source: Path, staging: Path, artifact: BackupArtifact, key: crypto.Key | None,
            *, packed: bool) -> tuple[Path, str, dict[str, Any] | None]:
    """The file in `staging` (encrypted with a key), the sha256 of its plaintext, and the encryption parameters."""
    if key is not None:
        stored = safe_paths.inside(staging, safe_paths.file_name(f"{source.name}.age"))
        plain_sha = age_files.encrypt_file(source, stored, key)
        source.unlink()
        if not packed and artifact.sha256 and plain_sha != artifact.sha256:
            raise BackupError(f"backup {artifact.id} changed between the dump and its encryption (sha256 "
                              f"{plain_sha}, the store recorded {artifact.sha256}); not kept")
        return stored, plain_sha, age_files.parameters(key)
    plain_sha = sha256_file(source) if packed or not artifact.sha256 else artifact.sha256
    stored = safe_paths.inside(staging, safe_paths.file_name(source.name))
    os.replace(source, stored)
    return stored, plain_sha, None


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

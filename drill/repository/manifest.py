"""What a backup in the repository is: its manifest (files, sizes, sha256s, fingerprint, MAC) and its directory.

A manifest is data read from the repository: every name in it is checked (drill/safe_paths.py) before it
can become a path.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drill import __version__, safe_paths
from drill.errors import BackupError
from drill.results import iso

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

    @property
    def verification_failure(self) -> str | None:
        """Why its recorded verification failed (verified.json), or None: passed or never run."""
        found = self.verification
        if found is None or found.get("status") in (None, "ok"):
            return None
        when, why = found.get("at") or "an unknown time", found.get("message") or "no detail recorded"
        return f"verification {found.get('status')} at {when}: {why}"


"""Which documents and fields make a Firestore store differ from its backup (values are never shown)."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from drill.stores.base import BackupArtifact
from drill.stores.firestore.codec import (
    FORMAT,
    Document,
    encode,
    encoded_type,
    part_of,
    read_backup,
)

if TYPE_CHECKING:
    from drill.stores.firestore.store import FirestoreStore


def explain_differences(store: FirestoreStore, artifact: BackupArtifact, parts: set[str], limit: int = 10) -> list[str]:
    """Which documents and fields make the named parts differ from the backup (values are never shown).

        Called only after a fingerprint comparison failed: it reads the backup file and the store again,
        holding one small digest per field of each document of the differing collection paths (not flat in
        memory, unlike fingerprints; bounded by the size of those paths). Nothing for managed exports.
        """
    if artifact.format != FORMAT or not artifact.path.is_file() or not parts:
        return []
    expected: dict[str, dict[str, tuple[str, bytes]]] = {}
    _, documents, _ = read_backup(artifact.path)
    for path, fields in documents:
        if part_of(path) in parts:
            expected[path] = _field_digests(fields)
    found: list[str] = []
    more = 0
    client = store.client()
    for snapshot in store._walk(client, store._read_time()):
        path = snapshot.reference.path
        if part_of(path) not in parts:
            continue
        was = expected.pop(path, None)
        now = _field_digests(encode(snapshot.to_dict() or {}))
        lines = ([f"document {path}: present now but not at the backup"] if was is None
                 else _field_changes(path, was, now))
        for line in lines:
            if len(found) < limit:
                found.append(line)
            else:
                more += 1
    for path in expected:
        if len(found) < limit:
            found.append(f"document {path}: missing (it is in the backup)")
        else:
            more += 1
    if more:
        found.append(f"... and {more} more")
    return found


def _field_digests(fields: Document) -> dict[str, tuple[str, bytes]]:
    return {name: (encoded_type(value), hashlib.blake2b(json.dumps(value, sort_keys=True).encode(),
                                                          digest_size=8).digest())
            for name, value in fields.items()}


def _field_changes(path: str, was: dict[str, tuple[str, bytes]], now: dict[str, tuple[str, bytes]]) -> list[str]:
    out = []
    for name in sorted(was.keys() - now.keys()):
        out.append(f"document {path}: field {name} missing (was a {was[name][0]})")
    for name in sorted(now.keys() - was.keys()):
        out.append(f"document {path}: field {name} added (a {now[name][0]})")
    for name in sorted(was.keys() & now.keys()):
        (before_type, before), (after_type, after) = was[name], now[name]
        if before_type != after_type:
            out.append(f"document {path}: field {name} was a {before_type} at the backup, is a {after_type} now")
        elif before != after:
            out.append(f"document {path}: field {name} changed value (a {after_type})")
    return out

"""Whether the key vouches for a backup's manifest (restic's rule: nothing in the repository is trusted unless it does).

With a key each manifest carries an HMAC-SHA256 over its store, id, times, file list, sizes, sha256s and
fingerprint, and it is only valid in the directory of its own store and id: a swapped, replayed or renamed
backup is refused. Without a key the metadata is unauthenticated, and `list` and `verify` say so.
"""

from __future__ import annotations

from drill import crypto
from drill.errors import BackupError, ConfigError
from drill.repository.manifest import AUTHENTICATED, LEGACY, UNAUTHENTICATED, Entry


def authenticate(entry: Entry, key: crypto.Key | None) -> str:
    """Whether the key vouches for the manifest: AUTHENTICATED, UNAUTHENTICATED (no key) or LEGACY.

    Raises BackupError when the manifest was altered, or sits in another backup's directory
    (swapped, replayed or renamed); WrongKeyError/ConfigError when the key is wrong or missing.
    """
    m = entry.manifest
    check_binding(entry)
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
        key_for(entry, key)
        return LEGACY  # made by drill before manifests were authenticated; its data is, by AES-GCM
    if key is not None:
        raise BackupError(f"backup {m.id} is neither encrypted nor authenticated, but this repository has a key: "
                          f"it was made before key_file was set, or its manifest was replaced. Refusing it; to "
                          f"use it anyway, run with key_file unset")
    return UNAUTHENTICATED


def check_binding(entry: Entry) -> None:
    """A manifest is only valid in the directory of its own store and id (no swap, replay or rename)."""
    m = entry.manifest
    if entry.directory.name != m.id or entry.directory.parent.name != m.store:
        raise BackupError(f"the directory {entry.directory.parent.name}/{entry.directory.name} holds the manifest "
                          f"of backup {m.id} of store {m.store!r}: it was moved, renamed or copied from another "
                          f"backup; refusing it")


def key_for(entry: Entry, key: crypto.Key | None) -> crypto.Key:
    """The key an encrypted backup needs; a ConfigError naming its key id when there is none."""
    if key is None:
        wanted = (entry.manifest.encryption or {}).get("key_id")
        raise ConfigError(f"backup {entry.id} is encrypted (key id {wanted}); set key_file under [repository] "
                          f"in drill.toml to the key it was made with")
    return key


def is_age(entry: Entry) -> bool:
    """Encrypted with age (schema 2); the other encrypted backups are drill's older AES-GCM files."""
    return (entry.manifest.encryption or {}).get("algorithm") == "age"

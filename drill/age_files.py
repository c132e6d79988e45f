"""Backups encrypted in the standard age format (age-encryption.org/v1, X25519 recipient), streamed.

Why age: in a real disaster drill itself may be missing or broken; `age -d -i backup.key FILE` (Debian
and most distributions package `age`; `rage` is a second implementation) decrypts every backup.
age authenticates its payload in 64 KiB chunks (ChaCha20-Poly1305 STREAM) and its header with a
MAC, so a flipped byte, a cut file or another key fails decryption. age has no associated data: the
binding of a file to its store, backup id and name is the authenticated manifest's job (it lists
each file's name with the sha256 of its ciphertext and of its plaintext, under an HMAC from the key).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

from drill.crypto import DecryptionError, Key, WrongKeyError
from drill.errors import BackupError, ConfigError

MAGIC = b"age-encryption.org/v1\n"


def _pyrage() -> Any:
    try:
        import pyrage
    except ImportError:
        raise ConfigError("encrypted backups need the Python package 'pyrage' (age): pip install 'dr-drill[crypto]'") \
            from None
    return pyrage


def recipient(key: Key) -> str:
    """The public age recipient (age1...) of the key: what `age -r` would encrypt to."""
    return str(_pyrage().x25519.Identity.from_str(key.age_identity).to_public())


def parameters(key: Key) -> dict[str, object]:
    """What a manifest records about the encryption (never the key)."""
    return {"algorithm": "age", "format": "age-encryption.org/v1 (X25519)", "key_id": key.id,
            "recipient": recipient(key)}


def is_age(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


class _HashingReader(io.RawIOBase):
    """Reads a file while hashing what it hands on (the plaintext's sha256 comes free with encryption)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.handle.read(len(buffer))
        buffer[: len(data)] = data
        self.digest.update(data)
        return len(data)


class _HashingWriter(io.RawIOBase):
    """Hashes the plaintext and (optionally) writes it to a file descriptor."""

    def __init__(self, descriptor: int | None) -> None:
        self.descriptor = descriptor
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        block = bytes(data)
        self.digest.update(block)
        self.size += len(block)
        if self.descriptor is not None:
            view = memoryview(block)
            while view:
                view = view[os.write(self.descriptor, view):]
        return len(block)


def encrypt_file(source: Path, target: Path, key: Key) -> str:
    """Encrypt `source` into `target` (a new file: O_EXCL, O_NOFOLLOW, 0600), fsync'ed; returns the plaintext sha256."""
    pyrage = _pyrage()
    public = pyrage.x25519.Identity.from_str(key.age_identity).to_public()
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as out, source.open("rb") as plain:
        reader = _HashingReader(plain)
        pyrage.encrypt_io(io.BufferedReader(reader), out, [public])
        out.flush()
        os.fsync(out.fileno())
    return reader.digest.hexdigest()


def _decrypt(source: Path, key: Key, writer: _HashingWriter) -> None:
    pyrage = _pyrage()
    identity = pyrage.x25519.Identity.from_str(key.age_identity)
    with source.open("rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise DecryptionError(f"{source.name} is not an age-encrypted file (no age-encryption.org/v1 header)")
        handle.seek(0)
        try:
            pyrage.decrypt_io(handle, writer, [identity])
        except pyrage.DecryptError as exc:
            if "no matching keys" in str(exc).lower():
                raise WrongKeyError(f"{source.name} was not encrypted to the key in {key.source} (key id {key.id}): "
                                    f"wrong key") from None
            raise DecryptionError(f"{source.name} is corrupt: age decryption failed ({exc}); it cannot be trusted") \
                from None
        except OSError as exc:  # pyrage reports a failed chunk (flipped byte, cut file) as an I/O error
            raise DecryptionError(f"{source.name} is corrupt or truncated: age decryption failed ({exc}); it cannot "
                                  f"be trusted") from None


def decrypt_file(source: Path, target: Path, key: Key) -> tuple[str, int]:
    """Decrypt into `target`, a new file (O_EXCL, O_NOFOLLOW, 0600); returns the plaintext's sha256 and size.

    On any error only the file this call created is removed; an existing file at `target` is never touched.
    """
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise BackupError(f"cannot create {target} for the decrypted backup: {exc.strerror}") from None
    writer = _HashingWriter(descriptor)
    try:
        _decrypt(source, key, writer)
        os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        target.unlink(missing_ok=True)
        raise
    os.close(descriptor)
    return writer.digest.hexdigest(), writer.size


def check_file(source: Path, key: Key) -> str:
    """Authenticate and decrypt every chunk without writing the plaintext anywhere; returns its sha256."""
    writer = _HashingWriter(None)
    _decrypt(source, key, writer)
    return writer.digest.hexdigest()

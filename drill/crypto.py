"""Encryption at rest: streaming AES-256-GCM in chunks, with a key file.

File layout (all integers big-endian):

    header  = b"DRILLAE1" | version (1 byte) | chunk size (4) | key id (8) | nonce prefix (7)
    chunk i = AES-256-GCM(key, nonce = prefix | i (4 bytes) | final flag (1 byte), plaintext, aad = header)

Every chunk but the last holds exactly `chunk size` bytes of plaintext; the last (possibly
empty) one carries the final flag in its nonce. So a wrong key is named by the key id before
any decryption, one flipped byte anywhere fails the authentication of its chunk (the header is
authenticated as every chunk's associated data), a file cut at a chunk boundary ends on a chunk
that is not final, and bytes appended after the final chunk are found too. The key never leaves
the process; the key id (a hash of it) is what manifests record.

Needs the `cryptography` package: pip install 'drill[crypto]'.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from drill.errors import BackupError, ConfigError
from drill.redact import register_secret

MAGIC = b"DRILLAE1"
VERSION = 1
HEADER_SIZE = len(MAGIC) + 1 + 4 + 8 + 7
TAG_SIZE = 16
DEFAULT_CHUNK = 1 << 20
ALGORITHM = "AES-256-GCM"


class DecryptionError(BackupError):
    """An encrypted backup cannot be decrypted: wrong key, truncated, or altered."""


@dataclass(frozen=True)
class Key:
    material: bytes
    source: Path

    @property
    def id(self) -> str:
        return key_id(self.material).hex()

    def __repr__(self) -> str:  # never the material
        return f"Key(id={self.id}, source={self.source})"


def key_id(material: bytes) -> bytes:
    return hashlib.sha256(b"drill-key-id\0" + material).digest()[:8]


def _aesgcm(material: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise ConfigError("encrypted backups need the Python package 'cryptography': "
                          "pip install 'drill[crypto]'") from None
    return AESGCM(material)


def load_key(path: Path) -> Key:
    """A 256-bit key from a file: 32 raw bytes, or 64 hex digits, or base64 of 32 bytes (one line)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the encryption key file: {exc.strerror}; create one with "
                          f"`head -c 32 /dev/urandom > {path}` (and keep a copy away from the backups)",
                          path=path) from None
    material: bytes | None = raw if len(raw) == 32 else None
    if material is None:
        text = raw.strip()
        for decode in (binascii.unhexlify, lambda t: base64.b64decode(t, validate=True)):
            try:
                candidate = decode(text)
            except (binascii.Error, ValueError):
                continue
            if len(candidate) == 32:
                material = candidate
                break
        if material is not None:
            register_secret(text.decode("ascii", errors="replace"))
    if material is None:
        raise ConfigError(f"not a 256-bit key ({len(raw)} bytes): the key file must hold 32 raw bytes, 64 hex "
                          f"digits or base64 of 32 bytes; create one with `head -c 32 /dev/urandom > {path}`",
                          path=path)
    register_secret(material.hex())
    return Key(material, path)


def new_key_file(path: Path) -> Key:
    """Write a fresh random key (32 raw bytes, mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    return load_key(path)


def encrypt_stream(source: BinaryIO, target: BinaryIO, key: Key, chunk_size: int = DEFAULT_CHUNK) -> int:
    """Encrypt everything `source` yields into `target`; returns the bytes written."""
    header = MAGIC + bytes([VERSION]) + chunk_size.to_bytes(4, "big") + key_id(key.material) + secrets.token_bytes(7)
    aes = _aesgcm(key.material)
    target.write(header)
    written = len(header)
    index = 0
    block = source.read(chunk_size)
    while True:
        following = source.read(chunk_size) if len(block) == chunk_size else b""
        final = not following
        sealed = aes.encrypt(_nonce(header, index, final), block, header)
        target.write(sealed)
        written += len(sealed)
        if final:
            return written
        index += 1
        block = following


def decrypt_stream(source: BinaryIO, key: Key, sink: Callable[[bytes], object], name: str = "backup") -> int:
    """Authenticate and decrypt `source` chunk by chunk, handing plaintext to `sink`; returns its size.

    Raises DecryptionError naming what is wrong: another key, a truncated file, an altered chunk.
    A chunk reaches `sink` only after it authenticated, but a caller that must not act on partial
    data (a restore) should decrypt to a scratch file and act only when this returns.
    """
    header = source.read(HEADER_SIZE)
    if len(header) < HEADER_SIZE or not header.startswith(MAGIC):
        raise DecryptionError(f"{name} is not a drill-encrypted file (no {MAGIC.decode()} header)"
                              + (" or is truncated" if header.startswith(MAGIC[:len(header)]) else ""))
    if header[8] != VERSION:
        raise DecryptionError(f"{name} uses encryption format version {header[8]}; this drill reads {VERSION}")
    chunk_size = int.from_bytes(header[9:13], "big")
    recorded = header[13:21]
    if recorded != key_id(key.material):
        raise DecryptionError(f"{name} was encrypted with another key (key id {recorded.hex()}); the key file "
                              f"{key.source} has key id {key.id}: wrong key")
    aes = _aesgcm(key.material)
    from cryptography.exceptions import InvalidTag

    sealed_size = chunk_size + TAG_SIZE
    index = 0
    total = 0
    block = source.read(sealed_size)
    while True:
        following = source.read(sealed_size)
        final = not following
        try:
            plain = aes.decrypt(_nonce(header, index, final), block, header)
        except InvalidTag:
            raise DecryptionError(_diagnose(aes, header, index, block, final, name)) from None
        sink(plain)
        total += len(plain)
        if final:
            return total
        index += 1
        block = following


def _diagnose(aes: Any, header: bytes, index: int, block: bytes, final: bool, name: str) -> str:
    from cryptography.exceptions import InvalidTag

    with_other_flag = _nonce(header, index, not final)
    try:
        aes.decrypt(with_other_flag, block, header)
    except InvalidTag:
        if final and len(block) < TAG_SIZE:
            return f"{name} is truncated: it ends inside chunk {index} (no final chunk)"
        return (f"{name} is corrupt: chunk {index} fails authentication (a changed byte, or the file was cut "
                f"inside that chunk); it cannot be trusted")
    if final:
        return f"{name} is truncated: it ends after chunk {index}, which is not the final chunk"
    return f"{name} has data after its final chunk {index}: bytes were appended; it cannot be trusted"


def _nonce(header: bytes, index: int, final: bool) -> bytes:
    return header[21:28] + index.to_bytes(4, "big") + (b"\x01" if final else b"\x00")


def encrypt_file(source: Path, target: Path, key: Key, chunk_size: int = DEFAULT_CHUNK) -> int:
    with source.open("rb") as src, target.open("wb") as dst:
        written = encrypt_stream(src, dst, key, chunk_size)
        dst.flush()
        os.fsync(dst.fileno())
    return written


def decrypt_file(source: Path, target: Path, key: Key) -> str:
    """Decrypt into `target`; returns the plaintext sha256. On any error `target` is removed."""
    digest = hashlib.sha256()
    try:
        with source.open("rb") as src, target.open("wb") as dst:
            def sink(data: bytes) -> None:
                digest.update(data)
                dst.write(data)

            decrypt_stream(src, key, sink, name=str(source))
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def check_file(source: Path, key: Key) -> str:
    """Authenticate every chunk without writing the plaintext anywhere; returns the plaintext sha256."""
    digest = hashlib.sha256()
    with source.open("rb") as src:
        decrypt_stream(src, key, digest.update, name=str(source))
    return digest.hexdigest()


def is_encrypted(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def parameters(key: Key, chunk_size: int = DEFAULT_CHUNK) -> dict[str, object]:
    """What a manifest records about the encryption (never the key)."""
    return {"algorithm": ALGORITHM, "format": f"{MAGIC.decode()} v{VERSION}", "chunk_size": chunk_size,
            "key_id": key.id, "nonce": "7-byte random prefix per file | 4-byte chunk index | final flag"}

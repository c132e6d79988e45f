"""The backup key: loading and checking it, what is derived from it, and the legacy AES-GCM file format.

New backups are encrypted in the standard age format (drill/age_files.py), so that an operator can
decrypt them with the `age` command when drill itself is missing or broken. The key file is an
age identity (`drill keygen backup.key`, or `age-keygen -o backup.key`); an older key file of 32
raw bytes, 64 hex digits or base64 still works: its age identity is derived from it (HKDF, see
`legacy_age_identity` and the emergency procedure in docs/backups.md).

From the key, HKDF-SHA256 derives the key that authenticates every manifest (HMAC-SHA256): the
repository trusts no metadata that the key does not vouch for.

Legacy format (backups made before age; still read, never written by `drill backup`), integers big-endian:

    header  = b"DRILLAE1" | version (1 byte) | chunk size (4) | key id (8) | nonce prefix (7)
    chunk i = AES-256-GCM(key, nonce = prefix | i (4 bytes) | final flag (1 byte), plaintext, aad = header)

Every chunk but the last holds exactly `chunk size` bytes of plaintext; the last (possibly
empty) one carries the final flag in its nonce. So a wrong key is named by the key id before
any decryption, one flipped byte anywhere fails the authentication of its chunk (the header is
authenticated as every chunk's associated data), a file cut at a chunk boundary ends on a chunk
that is not final, and bytes appended after the final chunk are found too. The key never leaves
the process; the key id (a hash of it) is what manifests record.

Needs the `cryptography` and `pyrage` packages: pip install 'dr-drill[crypto]'.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
import string
import sys
import time
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
AGE_HRP = "AGE-SECRET-KEY-"
MAC_INFO = b"drill manifest hmac v1"
AGE_INFO = b"drill age x25519 identity v1"


class DecryptionError(BackupError):
    """An encrypted backup cannot be decrypted: wrong key, truncated, or altered."""


class WrongKeyError(ConfigError):
    """The configured key is not the one a backup was made with: a configuration error, not a bad backup."""


@dataclass(frozen=True)
class Key:
    material: bytes  # the secret as loaded: 32 bytes (legacy) or the age identity's text
    source: Path

    @property
    def id(self) -> str:
        return key_id(self.material).hex()

    @property
    def age_identity(self) -> str:
        """The age identity (AGE-SECRET-KEY-1...) that decrypts this key's backups."""
        text = self.material.decode("ascii", errors="replace")
        return text if text.startswith(AGE_HRP) else legacy_age_identity(self.material)

    def __repr__(self) -> str:  # never the material
        return f"Key(id={self.id}, source={self.source})"


def key_id(material: bytes) -> bytes:
    return hashlib.sha256(b"drill-key-id\0" + material).digest()[:8]


def hkdf(material: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869) with an empty salt: one independent key per purpose from the backup key."""
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError:
        raise ConfigError("encrypted backups need the Python package 'cryptography': "
                          "pip install 'dr-drill[crypto]'") from None
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(material)


def manifest_mac(key: Key, body: bytes) -> str:
    """HMAC-SHA256 of a manifest's canonical bytes, keyed by HKDF(backup key, "drill manifest hmac v1")."""
    return hmac.new(hkdf(key.material, MAC_INFO), body, hashlib.sha256).hexdigest()


def mac_matches(key: Key, body: bytes, recorded: str) -> bool:
    return hmac.compare_digest(manifest_mac(key, body), recorded)


# -- bech32 (BIP 173), only to write the age identity derived from a legacy key --------------------------

_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: list[int]) -> int:
    generator = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            check ^= generator[i] if (top >> i) & 1 else 0
    return check


def _bech32(hrp: str, data: bytes) -> str:
    bits = "".join(f"{byte:08b}" for byte in data)
    bits += "0" * (-len(bits) % 5)
    words = [int(bits[i:i + 5], 2) for i in range(0, len(bits), 5)]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = _polymod([*expanded, *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[w] for w in words + checksum)


def legacy_age_identity(material: bytes) -> str:
    """The age identity of a legacy 32-byte key: X25519 secret = HKDF-SHA256(key, "drill age x25519 identity v1")."""
    return _bech32(AGE_HRP.lower(), hkdf(material, AGE_INFO)).upper()


# -- key files ----------------------------------------------------------------------------------------------

def load_key(path: Path) -> Key:
    """The backup key from a file: an age identity, or (legacy) 32 raw bytes, 64 hex digits or base64 of 32 bytes.

    Warns on stderr when the file can be read by group or others.
    """
    try:
        raw = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read the encryption key file: {exc.strerror}; create one with "
                          f"`drill keygen {path}` (and keep a copy away from the backups)", path=path) from None
    if mode & 0o077:
        print(f"drill: warning: the key file {path} can be read by group or others (mode {stat.S_IMODE(mode):04o}); "
              f"run `chmod 600 {path}`", file=sys.stderr)
    identity = _age_identity_in(raw)
    if identity is not None:
        register_secret(identity)
        return Key(identity.encode("ascii"), path)
    text = raw.strip()
    if len(text) == 32 and all(chr(b) in string.hexdigits for b in text):
        raise ConfigError(f"the key file holds 32 hex digits (128 bits): that is not a 256-bit key. A hex key needs "
                          f"64 hex digits; create a new key with `drill keygen {path}`", path=path)
    material: bytes | None = raw if len(raw) == 32 else None
    if material is None:
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
        raise ConfigError(f"not a backup key ({len(raw)} bytes): the key file must hold an age identity "
                          f"(AGE-SECRET-KEY-1...), or 32 raw bytes, 64 hex digits or base64 of 32 bytes; create one "
                          f"with `drill keygen {path}`", path=path)
    register_secret(material.hex())
    register_secret(legacy_age_identity(material))
    return Key(material, path)


def _age_identity_in(raw: bytes) -> str | None:
    """The AGE-SECRET-KEY-1... line of an age identity file (age-keygen's format: comments start with #)."""
    try:
        lines = [line.strip() for line in raw.decode("ascii").splitlines()]
    except UnicodeDecodeError:
        return None
    keys = [line for line in lines if line and not line.startswith("#")]
    if len(keys) == 1 and keys[0].upper().startswith(AGE_HRP + "1"):
        return keys[0].upper()
    return None


def new_key_file(path: Path) -> Key:
    """Write a fresh age identity (age-keygen's file format, mode 0600); refuses to overwrite a file."""
    try:
        from pyrage import x25519
    except ImportError:
        raise ConfigError("making a backup key needs the Python package 'pyrage': "
                          "pip install 'dr-drill[crypto]'") from None
    identity = x25519.Identity.generate()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise ConfigError("the file exists; drill never overwrites a key (choose another path)", path=path) from None
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(f"# created: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} by drill keygen\n"
                     f"# public key: {identity.to_public()}\n{identity}\n")
    return load_key(path)


def new_legacy_key_file(path: Path) -> Key:
    """Write 32 random raw bytes (mode 0600): the key format of drill before age (tests of read-compatibility)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    return load_key(path)


def _aesgcm(material: bytes) -> Any:
    if len(material) != 32:
        raise DecryptionError("this backup is in drill's legacy AES-GCM format, which only a legacy 32-byte key "
                              "decrypts; set key_file to the key it was made with")
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise ConfigError("encrypted backups need the Python package 'cryptography': "
                          "pip install 'dr-drill[crypto]'") from None
    return AESGCM(material)


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
        raise WrongKeyError(f"{name} was encrypted with another key (key id {recorded.hex()}); the key file "
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
    """Decrypt into `target`, a new file (O_EXCL, O_NOFOLLOW, 0600); returns the plaintext sha256.

    The header is checked before `target` is created, and on any error only the file this call
    created is removed: an existing file at `target` (or a symlink there) is never truncated or deleted.
    """
    digest = hashlib.sha256()
    with source.open("rb") as src:
        header = src.read(HEADER_SIZE)
        src.seek(0)
        if not header.startswith(MAGIC):
            raise DecryptionError(f"{source} is not a drill-encrypted file (no {MAGIC.decode()} header)")
        try:
            descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise BackupError(f"cannot create {target} for the decrypted backup: {exc.strerror}") from None
        try:
            with os.fdopen(descriptor, "wb") as dst:
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

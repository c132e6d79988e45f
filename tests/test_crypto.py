"""Streaming AES-256-GCM: round trips of every size, and every kind of damage named before use."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from drill import crypto
from drill.errors import ConfigError
from drill.redact import redact_text

CHUNK = 64  # small chunks: many chunk boundaries in a small file


@pytest.fixture
def key(tmp_path: Path) -> crypto.Key:
    return crypto.new_key_file(tmp_path / "backup.key")


def _encrypt(data: bytes, key: crypto.Key) -> bytes:
    out = io.BytesIO()
    crypto.encrypt_stream(io.BytesIO(data), out, key, chunk_size=CHUNK)
    return out.getvalue()


def _decrypt(blob: bytes, key: crypto.Key) -> bytes:
    out = io.BytesIO()
    crypto.decrypt_stream(io.BytesIO(blob), key, out.write, name="b.enc")
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 17])
def test_round_trip_of_every_size(key: crypto.Key, size: int) -> None:
    data = os.urandom(size)
    blob = _encrypt(data, key)
    assert size < 16 or data[:16] not in blob  # no plaintext in the clear
    assert _decrypt(blob, key) == data


def test_files_round_trip_and_report_the_plaintext_sha256(key: crypto.Key, tmp_path: Path) -> None:
    import hashlib

    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(3 * (1 << 20) + 5))
    crypto.encrypt_file(plain, tmp_path / "enc", key)
    assert crypto.is_encrypted(tmp_path / "enc") and not crypto.is_encrypted(plain)
    digest = crypto.decrypt_file(tmp_path / "enc", tmp_path / "out", key)
    assert (tmp_path / "out").read_bytes() == plain.read_bytes()
    assert digest == hashlib.sha256(plain.read_bytes()).hexdigest() == crypto.check_file(tmp_path / "enc", key)


def test_a_wrong_key_is_named_as_such(key: crypto.Key, tmp_path: Path) -> None:
    other = crypto.new_key_file(tmp_path / "other.key")
    blob = _encrypt(b"x" * 300, key)
    with pytest.raises(crypto.DecryptionError, match=rf"another key \(key id {key.id}\).*{other.id}: wrong key"):
        _decrypt(blob, other)


def test_truncation_at_a_chunk_boundary_is_detected(key: crypto.Key) -> None:
    blob = _encrypt(os.urandom(5 * CHUNK + 10), key)
    cut = crypto.HEADER_SIZE + 3 * (CHUNK + crypto.TAG_SIZE)
    with pytest.raises(crypto.DecryptionError, match="truncated: it ends after chunk 2, which is not the final"):
        _decrypt(blob[:cut], key)


def test_truncation_inside_a_chunk_is_detected(key: crypto.Key) -> None:
    blob = _encrypt(os.urandom(5 * CHUNK + 10), key)
    with pytest.raises(crypto.DecryptionError, match="chunk 5 fails authentication"):
        _decrypt(blob[:-3], key)
    with pytest.raises(crypto.DecryptionError, match="truncated"):
        _decrypt(blob[: crypto.HEADER_SIZE - 4], key)


@pytest.mark.parametrize("where", ["header-nonce", "first-chunk", "middle", "tag-of-last"])
def test_one_flipped_byte_anywhere_is_detected(key: crypto.Key, where: str) -> None:
    blob = bytearray(_encrypt(os.urandom(4 * CHUNK + 9), key))
    offset = {"header-nonce": 23, "first-chunk": crypto.HEADER_SIZE + 2, "middle": len(blob) // 2,
              "tag-of-last": len(blob) - 1}[where]
    blob[offset] ^= 0x01
    with pytest.raises(crypto.DecryptionError, match=r"corrupt: chunk \d+ fails authentication"):
        _decrypt(bytes(blob), key)


def test_appended_bytes_are_detected(key: crypto.Key) -> None:
    blob = _encrypt(os.urandom(2 * CHUNK), key)
    with pytest.raises(crypto.DecryptionError):
        _decrypt(blob + os.urandom(CHUNK + crypto.TAG_SIZE), key)


def test_a_failed_decryption_leaves_no_plaintext_file(key: crypto.Key, tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(os.urandom(3 << 20))
    crypto.encrypt_file(tmp_path / "plain", tmp_path / "enc", key)
    data = (tmp_path / "enc").read_bytes()
    (tmp_path / "enc").write_bytes(data[: len(data) - 100])
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_file(tmp_path / "enc", tmp_path / "out", key)
    assert not (tmp_path / "out").exists()


def test_key_files_in_hex_and_base64_work_and_are_redacted(tmp_path: Path) -> None:
    import base64

    material = os.urandom(32)
    (tmp_path / "hex.key").write_text(material.hex() + "\n")
    (tmp_path / "b64.key").write_text(base64.b64encode(material).decode() + "\n")
    assert crypto.load_key(tmp_path / "hex.key").material == material
    assert crypto.load_key(tmp_path / "b64.key").material == material
    assert material.hex() not in redact_text(f"key {material.hex()}")
    assert material.hex() not in repr(crypto.load_key(tmp_path / "hex.key"))


def test_bad_key_files_say_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "short.key").write_text("not a key")
    with pytest.raises(ConfigError, match=r"short.key: not a 256-bit key .*head -c 32 /dev/urandom"):
        crypto.load_key(tmp_path / "short.key")
    with pytest.raises(ConfigError, match="cannot read the encryption key file"):
        crypto.load_key(tmp_path / "missing.key")

"""Keys (age identities and legacy keys, checked), the age files new backups use, and the legacy streaming
AES-256-GCM format (still read): round trips of every size, and every kind of damage named before use."""

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
    return crypto.new_legacy_key_file(tmp_path / "backup.key")  # the AES-GCM format needs a 32-byte key


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
    other = crypto.new_legacy_key_file(tmp_path / "other.key")
    blob = _encrypt(b"x" * 300, key)
    with pytest.raises(crypto.WrongKeyError, match=rf"another key \(key id {key.id}\).*{other.id}: wrong key"):
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
    with pytest.raises(ConfigError, match=r"short.key: not a backup key .*drill keygen"):
        crypto.load_key(tmp_path / "short.key")
    with pytest.raises(ConfigError, match="cannot read the encryption key file"):
        crypto.load_key(tmp_path / "missing.key")


def test_a_file_of_32_hex_digits_is_not_taken_for_a_raw_key(tmp_path: Path) -> None:
    for text in ("0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef\n"):
        (tmp_path / "hex32.key").write_text(text)
        with pytest.raises(ConfigError, match=r"holds 32 hex digits .* needs 64 hex digits"):
            crypto.load_key(tmp_path / "hex32.key")


def test_a_key_file_others_can_read_is_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = crypto.new_key_file(tmp_path / "private.key")
    assert (tmp_path / "private.key").stat().st_mode & 0o777 == 0o600
    crypto.load_key(tmp_path / "private.key")
    assert "warning" not in capsys.readouterr().err
    os.chmod(tmp_path / "private.key", 0o640)
    assert crypto.load_key(tmp_path / "private.key").id == key.id
    err = capsys.readouterr().err
    assert "can be read by group or others (mode 0640)" in err and "chmod 600" in err


def test_new_keys_are_age_identities_that_the_age_tool_reads(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from drill import age_files

    key = crypto.new_key_file(tmp_path / "backup.key")
    text = (tmp_path / "backup.key").read_text()
    assert key.age_identity in text and key.age_identity.startswith("AGE-SECRET-KEY-1")
    with pytest.raises(ConfigError, match="never overwrites a key"):
        crypto.new_key_file(tmp_path / "backup.key")
    age = shutil.which("age")
    assert age, "the age command is missing: apt-get install age"
    data = os.urandom(200_000)
    (tmp_path / "plain").write_bytes(data)
    age_files.encrypt_file(tmp_path / "plain", tmp_path / "plain.age", key)
    done = subprocess.run([age, "-d", "-i", str(tmp_path / "backup.key"), str(tmp_path / "plain.age")],
                          capture_output=True, check=True)
    assert done.stdout == data
    # A legacy key's derived identity, written out by hand, decrypts with age too.
    legacy = crypto.new_legacy_key_file(tmp_path / "legacy.key")
    age_files.encrypt_file(tmp_path / "plain", tmp_path / "legacy.age", legacy)
    (tmp_path / "legacy.identity").write_text(legacy.age_identity + "\n")
    done = subprocess.run([age, "-d", "-i", str(tmp_path / "legacy.identity"), str(tmp_path / "legacy.age")],
                          capture_output=True, check=True)
    assert done.stdout == data
    assert legacy.age_identity not in redact_text(f"identity {legacy.age_identity}")


def test_age_files_name_a_wrong_key_and_damage(tmp_path: Path) -> None:
    from drill import age_files

    key = crypto.new_key_file(tmp_path / "a.key")
    other = crypto.new_key_file(tmp_path / "b.key")
    (tmp_path / "plain").write_bytes(os.urandom(300_000))
    age_files.encrypt_file(tmp_path / "plain", tmp_path / "x.age", key)
    with pytest.raises(crypto.WrongKeyError, match="wrong key"):
        age_files.check_file(tmp_path / "x.age", other)
    blob = bytearray((tmp_path / "x.age").read_bytes())
    blob[len(blob) // 2] ^= 1
    (tmp_path / "bad.age").write_bytes(bytes(blob))
    with pytest.raises(crypto.DecryptionError, match="corrupt"):
        age_files.decrypt_file(tmp_path / "bad.age", tmp_path / "out", key)
    assert not (tmp_path / "out").exists()  # nothing half-decrypted left behind
    # An existing file at the target is neither truncated nor deleted.
    (tmp_path / "precious").write_text("keep me")
    with pytest.raises(crypto.BackupError, match="cannot create"):
        age_files.decrypt_file(tmp_path / "x.age", tmp_path / "precious", key)
    assert (tmp_path / "precious").read_text() == "keep me"

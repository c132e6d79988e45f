#!/usr/bin/env python3
"""Emergency tool for drill backups, with the Python standard library only (no drill, no packages).

    python3 legacy_age_identity.py KEY_FILE > identity.txt
        Prints the age identity that decrypts backups made with KEY_FILE. For a key made by
        `drill keygen` or `age-keygen` that is the key file itself; for an older drill key (32 raw
        bytes, 64 hex digits or base64) it is derived: X25519 secret = HKDF-SHA256(key, info
        "drill age x25519 identity v1"), written in age's Bech32 form. Then:
        age -d -i identity.txt -o FILE FILE.age

    python3 legacy_age_identity.py --check-manifest manifest.json KEY_FILE
        Checks the manifest's HMAC-SHA256 (key: HKDF-SHA256(key, info "drill manifest hmac v1")) over
        its canonical JSON without "mac": exit 0 "manifest authenticated", else exit 1.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import sys

AGE_HRP = "AGE-SECRET-KEY-"
CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def hkdf_sha256(material: bytes, info: bytes) -> bytes:
    """RFC 5869 with an empty salt, 32 bytes out (one block)."""
    prk = hmac.new(b"\0" * 32, material, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def bech32(hrp: str, data: bytes) -> str:
    bits = "".join(f"{byte:08b}" for byte in data)
    bits += "0" * (-len(bits) % 5)
    words = [int(bits[i:i + 5], 2) for i in range(0, len(bits), 5)]
    values = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp] + words + [0] * 6
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, g in enumerate((0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)):
            check ^= g if (top >> i) & 1 else 0
    check ^= 1
    return hrp + "1" + "".join(CHARSET[w] for w in words + [(check >> 5 * (5 - i)) & 31 for i in range(6)])


def key_material(path: str) -> bytes:
    with open(path, "rb") as handle:
        raw = handle.read()
    lines = [x.strip() for x in raw.decode("ascii", "replace").splitlines() if x.strip() and not x.startswith("#")]
    if len(lines) == 1 and lines[0].upper().startswith(AGE_HRP + "1"):
        return lines[0].upper().encode("ascii")
    if len(raw) == 32:
        return raw
    for decode in (binascii.unhexlify, lambda t: base64.b64decode(t, validate=True)):
        try:
            value = decode(raw.strip())
        except (binascii.Error, ValueError):
            continue
        if len(value) == 32:
            return value
    sys.exit(f"{path}: not a drill backup key")


def identity(material: bytes) -> str:
    text = material.decode("ascii", "replace")
    if text.startswith(AGE_HRP):
        return text
    return bech32(AGE_HRP.lower(), hkdf_sha256(material, b"drill age x25519 identity v1")).upper()


def check_manifest(manifest_path: str, key_path: str) -> int:
    with open(manifest_path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    mac = manifest.pop("mac", None)
    if not mac:
        print("manifest NOT authenticated: it carries no mac")
        return 1
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    expected = hmac.new(hkdf_sha256(key_material(key_path), b"drill manifest hmac v1"), body, hashlib.sha256)
    if hmac.compare_digest(expected.hexdigest(), str(mac.get("value"))):
        item = manifest["files"][0]
        print(f"manifest authenticated: backup {manifest['id']} of {manifest['store']}, consistent at "
              f"{manifest.get('consistent')}, file {item['name']} sha256 {item['sha256']}")
        return 0
    print("manifest NOT authenticated: wrong key, or the manifest was altered")
    return 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--check-manifest":
        sys.exit(check_manifest(sys.argv[2], sys.argv[3]))
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(identity(key_material(sys.argv[1])))

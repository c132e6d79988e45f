"""Signed drill results: ed25519 signatures of results.json and of the history chain head.

A sha256 inside a file only catches accidental edits: whoever rewrites a failed run as a passed
one recomputes it. With a signing key configured (`[drill] signing_key_file`, or the private key
itself in the environment variable DRILL_SIGNING_KEY; never in drill.toml), `drill run` writes

    reports/<run-id>/results.json.sig   {"algorithm": "ed25519", "key_id": <sha256 of the raw public key,
                                         first 16 hex>, "signature": <base64 of the ed25519 signature of the
                                         exact bytes of results.json>, "signed_sha256": <sha256 of those bytes>}

and signs each history entry's hash (the message `drill history entry <hash>`): the chain links every
entry to the one before, so the signed head vouches for the whole history up to it. Anyone with the
public key can check a run without drill: `openssl pkeyutl -verify -pubin -inkey public.pem -rawin
-in results.json -sigfile <(jq -r .signature results.json.sig | base64 -d)`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drill.errors import ConfigError
from drill.redact import register_secret

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from drill.config import Config

ENV_VAR = "DRILL_SIGNING_KEY"
ALGORITHM = "ed25519"
SIG_SUFFIX = ".sig"
HISTORY_MESSAGE = "drill history entry {hash}"
VALID, INVALID, UNSIGNED, UNCHECKED = "valid", "invalid", "unsigned", "unchecked"


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise ConfigError("signed results need the Python package 'cryptography': pip install 'dr-drill[crypto]'") \
            from None
    return ed25519


def public_key_id(public: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    source: str  # where it came from (a file path or the environment variable's name), for messages

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def id(self) -> str:
        return public_key_id(self.public)

    def __repr__(self) -> str:  # never the key
        return f"SigningKey(id={self.id}, source={self.source})"


def _private_from(data: bytes, source: str) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization

    ed25519 = _ed25519()
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{source}: not a readable PEM private key ({exc})") from None
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ConfigError(f"{source}: the private key is not an ed25519 key; make one with "
                              f"`drill keygen --signing FILE`")
        loaded: Ed25519PrivateKey = key
        return loaded
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{source}: not an ed25519 private key (PEM, or base64 of 32 bytes); make one with "
                          f"`drill keygen --signing FILE`")
    private: Ed25519PrivateKey = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
    return private


def load_signing_key(config: Config) -> SigningKey | None:
    """The private key from $DRILL_SIGNING_KEY (PEM or base64) or `[drill] signing_key_file`; None when neither."""
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        register_secret(from_env.strip())
        return SigningKey(_private_from(from_env.encode(), f"${ENV_VAR}"), f"${ENV_VAR}")
    path = config.signing_key_file
    if path is None:
        return None
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read the signing key: {exc.strerror}; make one with `drill keygen --signing "
                          f"{path}`", path=path, key="drill.signing_key_file") from None
    if mode & 0o077:
        import sys

        print(f"drill: warning: the signing key {path} can be read by group or others; run `chmod 600 {path}`",
              file=sys.stderr)
    register_secret(data.decode("ascii", errors="replace").strip())
    return SigningKey(_private_from(data, str(path)), str(path))


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An ed25519 public key file: PEM (SubjectPublicKeyInfo) or base64 of the 32 raw bytes."""
    from cryptography.hazmat.primitives import serialization

    ed25519 = _ed25519()
    try:
        data = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the public key: {exc.strerror}", path=path) from None
    if data.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise ConfigError(f"not a readable PEM public key ({exc})", path=path) from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise ConfigError("the public key is not an ed25519 key", path=path)
        found: Ed25519PublicKey = key
        return found
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError("not an ed25519 public key (PEM, or base64 of 32 bytes)", path=path)
    public: Ed25519PublicKey = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    return public


def signature_path(results: Path) -> Path:
    return results.with_name(results.name + SIG_SUFFIX)


def sign_results(results: Path, key: SigningKey) -> Path:
    """Write results.json.sig next to `results`: the signature of its exact bytes."""
    data = results.read_bytes()
    record = {"algorithm": ALGORITHM, "key_id": key.id,
              "signature": base64.b64encode(key.private.sign(data)).decode("ascii"),
              "signed_sha256": hashlib.sha256(data).hexdigest()}
    target = signature_path(results)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def sign_history_hash(entry_hash: str, key: SigningKey) -> dict[str, str]:
    signature = key.private.sign(HISTORY_MESSAGE.format(hash=entry_hash).encode("ascii"))
    return {"algorithm": ALGORITHM, "key_id": key.id, "signature": base64.b64encode(signature).decode("ascii")}


@dataclass(frozen=True)
class SignatureCheck:
    """What a report or `drill report --verify` says about a signature."""

    state: str  # VALID | INVALID | UNSIGNED | UNCHECKED (signed, but no public key given)
    key_id: str | None
    message: str

    @property
    def text(self) -> str:
        if self.state == VALID:
            return f"signed by key {self.key_id}: valid"
        if self.state == UNSIGNED:
            return "unsigned: checks accidental edits only"
        if self.state == UNCHECKED:
            return (f"signed by key {self.key_id}, not checked (no public key: give --public-key or [drill] "
                    f"signing_public_key): checks accidental edits only")
        return f"signature INVALID: {self.message}"


def _verify(public: Ed25519PublicKey, signature_b64: object, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        public.verify(base64.b64decode(str(signature_b64), validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def check_results(results: Path, public: Ed25519PublicKey | None) -> SignatureCheck:
    sig_file = signature_path(results)
    signature = sig_file.read_bytes() if sig_file.is_file() else None
    return check_results_bytes(results.read_bytes(), signature, public, results.name, sig_file.name)


def check_results_bytes(data: bytes, signature: bytes | None, public: Ed25519PublicKey | None,
                        name: str = "results.json", sig_name: str = "results.json.sig") -> SignatureCheck:
    """The signature (the bytes of a results.json.sig, or None) of the exact bytes `data` of a results.json.

    Shared by `drill report --verify` (files in a reports folder) and `drill report pack --verify` (members of a
    zip), so both judge a signature the same way.
    """
    if signature is None:
        if public is not None:
            return SignatureCheck(INVALID, public_key_id(public), f"{sig_name} is missing: the results are "
                                                                  f"unsigned, or their signature was removed")
        return SignatureCheck(UNSIGNED, None, "")
    try:
        record = json.loads(signature.decode("utf-8"))
        key_id = str(record["key_id"])
    except (ValueError, KeyError, TypeError) as exc:
        return SignatureCheck(INVALID, None, f"{sig_name} is not readable ({exc})")
    if public is None:
        return SignatureCheck(UNCHECKED, key_id, "")
    if key_id != public_key_id(public):
        return SignatureCheck(INVALID, key_id, f"signed by key {key_id}, not by the expected key "
                                               f"{public_key_id(public)}")
    if record.get("signed_sha256") != hashlib.sha256(data).hexdigest() or not _verify(public, record.get("signature"),
                                                                                        data):
        return SignatureCheck(INVALID, key_id, f"{name} was changed after it was signed (the signature does "
                                               f"not match its bytes)")
    return SignatureCheck(VALID, key_id, "")


def check_history_entry(entry_hash: str, signature: dict[str, Any] | None,
                        public: Ed25519PublicKey | None) -> SignatureCheck:
    if not signature:
        return SignatureCheck(UNSIGNED if public is None else INVALID, None, "the history entry carries no signature")
    key_id = str(signature.get("key_id"))
    if public is None:
        return SignatureCheck(UNCHECKED, key_id, "")
    if key_id != public_key_id(public):
        return SignatureCheck(INVALID, key_id, f"the history entry is signed by key {key_id}, not by the expected "
                                               f"key {public_key_id(public)}")
    if not _verify(public, signature.get("signature"), HISTORY_MESSAGE.format(hash=entry_hash).encode("ascii")):
        return SignatureCheck(INVALID, key_id, "the history entry's signature does not match its hash (the entry "
                                               "or the chain before it was rewritten)")
    return SignatureCheck(VALID, key_id, "")


def generate(private_path: Path, public_path: Path) -> str:
    """A new ed25519 key pair: the private key (PEM, PKCS8, 0600) and the public key (PEM); returns the key id."""
    from cryptography.hazmat.primitives import serialization

    private = _ed25519().Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError("the file exists; drill never overwrites a key (choose another path)", path=path)
    private_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public_path.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    return public_key_id(private.public_key())

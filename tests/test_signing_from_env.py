"""The signing key from the environment (DRILL_SIGNING_KEY, PEM or base64 of the 32 raw bytes), and signed merged
runs: every signature is checked here with `cryptography` directly against a public key this test made, never
with drill's code; and the private key is in no file drill wrote, nor in anything it printed."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tests.conftest import DrillRun, run_drill

FEATURE = '''Feature: caches
  Scenario: cache one
    Given the Redis store "cache"
    And "cache" is seeded with 50 keys
    And a backup of "cache" is taken
    When "cache" is lost
    And "cache" is restored from its latest backup
    Then "cache" matches its state at the backup

  Scenario: cache two
    Given the Redis store "cache"
    And "cache" is seeded with 20 keys
    And a backup of "cache" is taken
    When "cache" is lost
    And "cache" is restored from its latest backup
    Then "cache" holds 20 keys
'''


def _project(root: Path, toml: str = "") -> Path:
    (root / "features").mkdir(parents=True)
    (root / "features" / "caches.feature").write_text(FEATURE)
    if toml:
        (root / "drill.toml").write_text(toml)
    return root


def _key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes_raw()).hexdigest()[:16]


def _forms(private: Ed25519PrivateKey) -> dict[str, str]:
    """How the private key could be written down: PEM (its body too), base64 and hex of the raw bytes."""
    raw = private.private_bytes_raw()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    return {"pem": pem, "pem body": body, "base64": base64.b64encode(raw).decode(), "hex": raw.hex()}


def _assert_key_nowhere(private: Ed25519PrivateKey, roots: list[Path], printed: str) -> None:
    forms = _forms(private)
    raw = private.private_bytes_raw()
    files = [f for root in roots for f in root.rglob("*") if f.is_file()]
    assert len(files) > 3  # results, history, reports were written and are scanned
    for path in files:
        data = path.read_bytes()
        assert raw not in data, f"the raw private key is in {path}"
        for form, text in forms.items():
            assert text.encode() not in data, f"the private key ({form}) is in {path}"
    for form, text in forms.items():
        assert text not in printed, f"the private key ({form}) was printed"


def _check_signed_run(run_dir: Path, history: Path, public: Ed25519PublicKey, key_id: str) -> None:
    """results.json.sig and the newest history entry's signature, checked with cryptography."""
    results = run_dir / "results.json"
    record = json.loads((run_dir / "results.json.sig").read_text())
    assert record["algorithm"] == "ed25519" and record["key_id"] == key_id
    assert record["signed_sha256"] == hashlib.sha256(results.read_bytes()).hexdigest()
    public.verify(base64.b64decode(record["signature"]), results.read_bytes())  # raises InvalidSignature
    entry = json.loads(history.read_text().splitlines()[-1])
    assert entry["signature"]["key_id"] == key_id
    public.verify(base64.b64decode(entry["signature"]["signature"]), f"drill history entry {entry['hash']}".encode())


@pytest.mark.parametrize("form", ["pem", "base64"])
def test_a_run_is_signed_with_the_key_from_the_environment(tmp_path: Path, form: str) -> None:
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    project = _project(tmp_path / "p")
    done: DrillRun = run_drill(project, "run", env={"DRILL_SIGNING_KEY": _forms(private)[form]})
    assert done.code == 0 and done.results is not None, done.output
    run_dir = project / "reports" / done.results["run_id"]
    _check_signed_run(run_dir, project / "reports" / "history.jsonl", public, _key_id(public))
    # The check bites: the same signature does not verify one byte of results.json changed.
    from cryptography.exceptions import InvalidSignature

    record = json.loads((run_dir / "results.json.sig").read_text())
    changed = (run_dir / "results.json").read_bytes().replace(b'"passed"', b'"failed"', 1)
    with pytest.raises(InvalidSignature):
        public.verify(base64.b64decode(record["signature"]), changed)
    public_file = tmp_path / "signing.pub"
    public_file.write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    verified = run_drill(project, "report", "--verify", "--public-key", str(public_file))
    assert verified.code == 0 and f"signed by key {_key_id(public)}: valid" in verified.stdout, verified.output
    assert f"signed by key {_key_id(public)}: valid" in (run_dir / "report.html").read_text()
    _assert_key_nowhere(private, [project, tmp_path], done.output + verified.output)


def test_a_merged_run_and_its_history_entry_are_signed_with_the_configured_key(tmp_path: Path) -> None:
    """Two shares (`drill run --shard I/2`), merged by `drill report merge` with `[drill] signing_key_file`: the
    merged run's results.json.sig and its history entry (the only one: shares are not runs of their own) verify
    with the test's public key through cryptography; the other shares' outcomes are all in it."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    project = _project(tmp_path / "p", '[drill]\nsigning_key_file = "keys/signing.pem"\n')
    key_file = project / "keys" / "signing.pem"
    key_file.parent.mkdir()
    key_file.write_text(_forms(private)["pem"])
    key_file.chmod(0o600)
    printed = ""
    for index in (1, 2):
        share = run_drill(project, "run", "--quiet", "--shard", f"{index}/2", "--shard-by", "count",
                          "--output-dir", f"shares/{index}")
        assert share.code == 0 and share.results is not None, share.output
        printed += share.output
    history = project / "reports" / "history.jsonl"
    assert not history.exists() or history.read_text().strip() == ""  # shares wait for the merge
    merged = run_drill(project, "report", "merge", "shares", "-o", "merged")
    assert merged.code == 0, merged.output
    result = json.loads((project / "merged" / "results.json").read_text())
    assert sorted(s["name"] for s in result["scenarios"]) == ["cache one", "cache two"]
    assert len(result["merged_from"]) == 2
    run_dir = project / "reports" / result["run_id"]
    [entry] = [json.loads(line) for line in history.read_text().splitlines()]
    assert entry["run_id"] == result["run_id"]
    _check_signed_run(run_dir, history, public, _key_id(public))
    _assert_key_nowhere(private, [project / "reports", project / "merged", project / "shares"],
                        printed + merged.output)

"""Signed drill results and reports that stay well-formed whatever a store hands them.

One real `drill run` (a local PostgreSQL) with a signing key: its drill creates a table whose name
holds \\x01, an ANSI colour escape and HTML/Markdown markup, and then fails on that table (0/1 passed).
Every report format is read back with an independent parser. Then the run is rewritten as "1/1
passed" with every hash recomputed, as an attacker would: `drill report --verify` with the public key
names it; without a key it says the check covers accidental edits only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import drill_env, run_drill

EVIL = 'evil\x01<b>bold</b>\x1b[31m*red*`'  # a PostgreSQL identifier may hold all of this
FEATURE = f'''Feature: a drill with an unusual table
  Scenario: a table name with control characters
    Given the PostgreSQL store "odd"
    And "odd" is seeded with 20 rows
    And SQL is run on "odd":
      """
      CREATE TABLE "{EVIL}" (id int); INSERT INTO "{EVIL}" VALUES (1), (2)
      """
    And a backup of "odd" is taken
    When "odd" is lost
    And "odd" is restored from its latest backup
    And SQL is run on "odd":
      """
      DELETE FROM "{EVIL}" WHERE id = 2
      """
    Then "odd" matches its state at the backup
'''


@dataclass
class Signed:
    root: Path
    run_dir: Path
    public: Path
    key_id: str


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Signed:
    root = tmp_path_factory.mktemp("signed")
    (root / "features").mkdir()
    (root / "features" / "odd.feature").write_text(FEATURE, encoding="utf-8")
    keygen = run_drill(root, "keygen", "--signing", "keys/signing.pem")
    assert keygen.code == 0, keygen.output
    again = run_drill(root, "keygen", "--signing", "keys/signing.pem")
    assert again.code == 2 and "never overwrites a key" in again.stderr
    assert (root / "keys" / "signing.pem").stat().st_mode & 0o777 == 0o600
    (root / "drill.toml").write_text('[drill]\nsigning_key_file = "keys/signing.pem"\n')
    done = run_drill(root, "run")
    assert done.code == 1 and done.results is not None, done.output  # the drill fails, on purpose
    run_dir = root / "reports" / done.results["run_id"]
    key_id = keygen.stdout.split("key id ")[1].split(")")[0]
    return Signed(root, run_dir, root / "keys" / "signing.pem.pub", key_id)


def _drill(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drill", *args], cwd=cwd, capture_output=True, text=True,
                          env=drill_env(), timeout=300)


def _no_control_characters(text: str) -> None:
    assert not [c for c in text if (ord(c) < 32 and c not in "\n\t") or c == "\x7f"], "control characters left"


def test_the_run_is_signed_next_to_its_results(signed: Signed) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    results = signed.run_dir / "results.json"
    record = json.loads((signed.run_dir / "results.json.sig").read_text())
    assert record["algorithm"] == "ed25519" and record["key_id"] == signed.key_id
    assert record["signed_sha256"] == hashlib.sha256(results.read_bytes()).hexdigest()
    public = load_pem_public_key(signed.public.read_bytes())
    public.verify(base64.b64decode(record["signature"]), results.read_bytes())  # type: ignore[union-attr,call-arg]
    raw = public.public_bytes_raw()  # type: ignore[union-attr]
    assert hashlib.sha256(raw).hexdigest()[:16] == signed.key_id
    [entry] = [json.loads(line) for line in (signed.root / "reports" / "history.jsonl").read_text().splitlines()]
    public.verify(base64.b64decode(entry["signature"]["signature"]),  # type: ignore[union-attr,call-arg]
                  f"drill history entry {entry['hash']}".encode())
    done = _drill(signed.root, "report", "--verify", "--public-key", str(signed.public))
    assert done.returncode == 0, done.stderr
    assert f"signed by key {signed.key_id}: valid" in done.stdout
    unkeyed = _drill(signed.root, "report", "--verify")
    assert unkeyed.returncode == 0 and "not checked" in unkeyed.stdout and "accidental edits only" in unkeyed.stdout
    html = (signed.run_dir / "report.html").read_text()
    assert f"signed by key {signed.key_id}: valid" in html  # the key was at hand when the run wrote its report


def _rewrite_as_passed(reports: Path, run_dir: Path) -> None:
    """What an attacker with write access does: flip the verdict, recompute every hash drill keeps."""
    from drill.report.history import HistoryEntry, _parse
    from drill.report.integrity import seal

    path = run_dir / "results.json"
    data = json.loads(path.read_text())
    data["status"] = "passed"
    for scenario in data["scenarios"]:
        scenario["status"], scenario["errors"] = "passed", []
        for step in scenario["steps"]:
            step["status"], step["error"] = "passed", None
    sealed = seal(data)
    path.write_text(json.dumps(sealed, indent=2) + "\n")
    history = reports / "history.jsonl"
    lines = history.read_text().splitlines()
    prev = "0" * 64
    rewritten = []
    for number, line in enumerate(lines, 1):
        entry: HistoryEntry = _parse(line, number, history)
        entry.prev, entry.status, entry.results_sha256 = prev, "passed", sealed["content_sha256"]
        for point in entry.scenarios:
            point.status = "passed"
        entry.hash = entry.compute_hash()
        prev = entry.hash
        raw: dict[str, Any] = {**entry.body(), "hash": entry.hash}
        if entry.signature:
            raw["signature"] = entry.signature  # the old signature kept: the attacker cannot make a new one
        rewritten.append(json.dumps(raw, separators=(",", ":")))
    history.write_text("\n".join(rewritten) + "\n")


def test_a_failed_run_rewritten_as_passed_is_caught_by_the_signature(signed: Signed, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(signed.root, copy)
    run_dir = copy / "reports" / signed.run_dir.name
    _rewrite_as_passed(copy / "reports", run_dir)
    plain = _drill(copy, "report", "--verify")  # hashes alone: the rewrite is consistent, so they pass...
    assert plain.returncode == 0 and "accidental edits only" in plain.stdout  # ...and say what that is worth
    keyed = _drill(copy, "report", "--verify", "--public-key", str(signed.public))
    assert keyed.returncode == 1
    assert "results.json was changed after it was signed" in keyed.stderr
    assert "the history entry's signature does not match its hash" in keyed.stderr
    # Removing the signatures does not help: with the public key an unsigned run fails.
    (run_dir / "results.json.sig").unlink()
    history = copy / "reports" / "history.jsonl"
    history.write_text("\n".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "signature"},
                                            separators=(",", ":")) for line in history.read_text().splitlines()) + "\n")
    stripped = _drill(copy, "report", "--verify", "--public-key", str(signed.public))
    assert stripped.returncode == 1 and "results.json.sig is missing" in stripped.stderr
    assert "carries no signature" in stripped.stderr
    # The HTML report says which applies.
    rendered = _drill(copy, "report", str(run_dir), "--format", "html", "--public-key", str(signed.public))
    assert rendered.returncode == 0, rendered.stderr
    assert "signature INVALID" in (run_dir / "report.html").read_text()
    unkeyed = _drill(copy, "report", str(run_dir), "--format", "html")
    assert unkeyed.returncode == 0 and "unsigned: checks accidental edits only" in (run_dir / "report.html").read_text()


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.inside: list[tuple[str, str]] = []  # (the element a piece of text sits in, the text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        self.inside.append((self.tags[-1] if self.tags else "", data))


def test_control_characters_in_a_table_name_leave_every_format_well_formed(signed: Signed) -> None:
    from markdown_it import MarkdownIt

    results = json.loads((signed.run_dir / "results.json").read_text())
    assert EVIL in results["scenarios"][0]["errors"][0]["message"]  # the raw evidence keeps the real name
    visible = "evil<b>bold</b>*red*`"  # the name without its control characters

    junit = (signed.run_dir / "junit.xml").read_text()
    root = ET.fromstring(junit.encode())  # an XML parser: junit.xml must be well-formed XML
    failure = next(root.iter("failure"))
    assert visible in (failure.text or "") + (failure.get("message") or "")
    _no_control_characters(junit)

    cucumber_text = (signed.run_dir / "cucumber.json").read_text()
    cucumber = json.loads(cucumber_text)
    messages = [s["result"].get("error_message", "") for s in cucumber[0]["elements"][0]["steps"]]
    assert any(visible in m for m in messages)
    _no_control_characters(json.dumps(cucumber, ensure_ascii=False))

    html = (signed.run_dir / "report.html").read_text()
    parser = _Tags()
    parser.feed(html)
    assert ("b", "bold") not in parser.inside and "<b>bold</b>" not in html  # the name's <b> is text, not markup
    assert any(visible in t for t in parser.text)
    _no_control_characters(html)

    markdown = (signed.run_dir / "summary.md").read_text()
    _no_control_characters(markdown)
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)  # an independent CommonMark renderer
    tags = _Tags()
    tags.feed(rendered)
    assert ("b", "bold") not in tags.inside and "em" not in tags.tags  # neither HTML nor *emphasis* got through
    assert any("<b>bold</b>*red*" in t for t in tags.text)


def test_an_evidence_pack_of_a_signed_run_is_checked_with_the_public_key(signed: Signed, tmp_path: Path) -> None:
    """`drill report pack --verify --public-key` checks the signature inside the pack: a run rewritten as passed,
    with its seal, history and the pack's own index all recomputed, still fails there."""
    genuine = tmp_path / "genuine.zip"
    built = _drill(signed.root, "report", "pack", str(signed.run_dir), "-o", str(genuine), "--no-pdf")
    assert built.returncode == 0, built.stderr
    checked = _drill(signed.root, "report", "pack", "--verify", str(genuine), "--public-key", str(signed.public))
    assert checked.returncode == 0, checked.stderr
    assert f"signed by key {signed.key_id}: valid" in checked.stdout
    unkeyed = _drill(signed.root, "report", "pack", "--verify", str(genuine))
    assert unkeyed.returncode == 0 and "not checked (no public key" in unkeyed.stdout

    copy = tmp_path / "copy"
    shutil.copytree(signed.root, copy)
    run_dir = copy / "reports" / signed.run_dir.name
    _rewrite_as_passed(copy / "reports", run_dir)
    forged = tmp_path / "forged.zip"
    built = _drill(copy, "report", "pack", str(run_dir), "-o", str(forged), "--no-pdf")
    assert built.returncode == 0, built.stderr  # the forgery is self-consistent: the pack index agrees with it
    caught = _drill(copy, "report", "pack", "--verify", str(forged), "--public-key", str(signed.public))
    assert caught.returncode == 1
    assert "member results.json.sig: signature INVALID: results.json was changed after it was signed" in caught.stderr

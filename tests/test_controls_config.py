"""Controls in drill.toml and in tags: what is accepted, what `drill check` flags, and the history they join.

Nothing here runs a store: `drill check` reads features and configuration only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from drill.config import load_config
from drill.errors import ConfigError
from tests.conftest import run_drill

FEATURE = '''@control:SOC2-CC7.5
Feature: audited
  @tier:critical {tag}
  Scenario: userdb restores
    Given the PostgreSQL store "userdb"
    And a backup of "userdb" is taken
    When "userdb" is lost
    And "userdb" is restored from its latest backup
    Then "userdb" matches its state at the backup
'''

CONTROLS = '''[controls."SOC2-CC7.5"]
title = "Recovery plans are tested"
every = "90 days"

[controls."ISO27001-A.8.13"]
title = "Backups are restored and tested"
every = "1 day"
'''


def test_controls_are_read_with_their_frequency_in_days(tmp_path: Path) -> None:
    path = tmp_path / "drill.toml"
    path.write_text(CONTROLS)
    config = load_config(path)
    soc2, iso = config.controls["SOC2-CC7.5"], config.controls["ISO27001-A.8.13"]
    assert (soc2.title, soc2.every, soc2.line) == ("Recovery plans are tested", 90 * 86400, 1)
    assert (iso.every, iso.line) == (86400, 5)
    without = tmp_path / "plain.toml"
    without.write_text("[drill]\n")
    assert load_config(without).digest() != config.digest()  # the controls are part of the configuration


@pytest.mark.parametrize("toml, where, message", [
    ('[controls.SOC2-CC7.5]\ntitle = "x"\nevery = "1 day"\n', ":1: [controls.SOC2-CC7]",
     'a control id with a dot must be quoted: write [controls."SOC2-CC7.5"]'),
    ('[controls.backup]\ntitle = "x"\n', ":1: [controls.backup.every]", "missing; a control needs a title and every"),
    ('\n[controls."A.1"]\ntitle = "x"\nevery = "3 fortnights"\n', ':4: [controls."A.1".every]',
     "unknown unit 'fortnights'"),
    ('[controls.backup]\ntitle = ""\nevery = "1d"\n', ":2: [controls.backup.title]", "must be a non-empty string"),
    ('[controls.backup]\ntitle = "x"\nevery = "1d"\nowner = "me"\n', ":4: [controls.backup.owner]",
     "unknown key 'owner'; allowed here: every, title"),
    ('[controls."a b"]\ntitle = "x"\nevery = "1d"\n', ':1: [controls."a b"]', "a control id is letters, digits"),
    ('[controls.backup]\ntitle = "x"\nevery = "0 days"\n', ":3: [controls.backup.every]", "above zero"),
])
def test_bad_controls_name_file_line_and_what_to_do(tmp_path: Path, toml: str, where: str, message: str) -> None:
    path = tmp_path / "drill.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}{where} " in str(caught.value) and message in str(caught.value), str(caught.value)


def _project(root: Path, tag: str, controls: str = CONTROLS) -> None:
    (root / "features").mkdir(exist_ok=True)
    (root / "features" / "audited.feature").write_text(FEATURE.format(tag=tag))
    (root / "drill.toml").write_text(controls)


def test_check_passes_when_every_control_is_evidenced(drill_dir: Path) -> None:
    _project(drill_dir, "@control:ISO27001-A.8.13")
    done = run_drill(drill_dir, "check")
    assert done.code == 0, done.output
    listed = json.loads(run_drill(drill_dir, "list", "--json").stdout)
    assert sorted(listed[0]["tags"]) == ["control:ISO27001-A.8.13", "control:SOC2-CC7.5", "tier:critical"]


def test_check_flags_a_control_with_no_scenario(drill_dir: Path) -> None:
    _project(drill_dir, "")
    done = run_drill(drill_dir, "check")
    assert done.code == 2
    assert (f"drill: error: {drill_dir / 'drill.toml'}:5: control ISO27001-A.8.13 (Backups are restored and tested) "
            f"has no scenario: tag the drills that evidence it with @control:ISO27001-A.8.13") in done.stderr
    assert "SOC2-CC7.5 (" not in done.stderr  # the feature's tag evidences it for every scenario
    assert "1 problem(s) found" in done.stderr


def test_check_and_run_refuse_a_tag_naming_an_undeclared_control(drill_dir: Path) -> None:
    _project(drill_dir, "@control:ISO27001-A.8.13 @control:PCI-DSS-12.10")
    for command in ("check", "run"):
        done = run_drill(drill_dir, command)
        assert done.code == 2, done.output
        assert ("audited.feature:4: @control:PCI-DSS-12.10 names a control that drill.toml does not declare "
                '(controls: ISO27001-A.8.13, SOC2-CC7.5); add [controls."PCI-DSS-12.10"]') in done.stderr
    assert not (drill_dir / "reports").exists()  # nothing was run
    (drill_dir / "drill.toml").unlink()  # no drill.toml: no control is declared, so every control tag is refused
    done = run_drill(drill_dir, "check")
    assert done.code == 2 and "(controls: none declared)" in done.stderr


def test_history_entries_without_controls_keep_their_hashes(tmp_path: Path) -> None:
    """Entries written before scenarios carried controls hash as they did: the chain of an older history holds."""
    from drill.report.history import GENESIS, read_history, verify

    point = {"id": "f::s", "name": "s", "status": "passed", "rto_seconds": 1.0, "rpo_seconds": 2.0,
             "rto_target": 1800.0, "rpo_target": 3600.0}
    results = {"run_id": "r1", "started_at": "2026-01-01T00:00:00+00:00", "status": "passed", "scenarios": []}
    body = {"seq": 1, "run_id": "r1", "results": "r1/results.json", "results_sha256": "", "started_at":
            results["started_at"], "status": "passed", "prev": GENESIS, "scenarios": [point]}
    from drill.report.integrity import seal

    sealed = seal(results)
    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "results.json").write_text(json.dumps(sealed))
    body["results_sha256"] = sealed["content_sha256"]
    # The hash as the older code computed it: sha256 of the canonical JSON (sorted keys, no spaces).
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                            .encode()).hexdigest()
    (tmp_path / "history.jsonl").write_text(json.dumps({**body, "hash": digest}) + "\n")
    [entry] = read_history(tmp_path)
    assert entry.scenarios[0].controls == [] and entry.compute_hash() == digest
    assert verify(tmp_path) == []

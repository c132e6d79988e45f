"""A store kind from another package: tests/kinds/drill-sqlite-kind is its own distribution, found through the
`drill.stores` entry-point group, and drilled end to end with no change to drill's code.

The distribution is installed with `pip install --target` into a folder of this test's own, which only the
drill subprocesses see (PYTHONPATH): the test environment is not changed. The live SQLite database is made
and read back here with Python's sqlite3, never through drill.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import REPO, DrillRun, plugin_env, plugin_project, run_drill

KIND_SOURCE = REPO / "tests" / "kinds" / "drill-sqlite-kind"

FEATURE = '''Feature: a store kind from another package
  Scenario: a throwaway SQLite database is recovered
    Given the SQLite store "scratchpad"
    And "scratchpad" is seeded with 500 rows
    And writes to "scratchpad" are recorded every 100 milliseconds
    And 1 second passes
    And a backup of "scratchpad" is taken
    When "scratchpad" is lost
    And "scratchpad" is restored from its latest backup
    Then "scratchpad" matches its state at the backup
    And "scratchpad" holds 500 rows
    And "scratchpad" holds 500 rows in "entries"
    And "scratchpad" passes SQLite's integrity check
    And the query "SELECT count(*) FROM entries" on "scratchpad" returns "500"
    And the recovery time is within 5 minutes
    And the data loss is at most 1 minute

  Scenario: the live ledger is recovered in place
    Given the SQLite store "ledger"
    And a backup of "ledger" is taken
    When "ledger" is lost
    And "ledger" is restored from its latest backup
    Then "ledger" matches its state at the backup
    And "ledger" holds 300 rows in "invoices"

  Scenario: a row changed behind drill is caught
    Given the SQLite store "scratchpad"
    And "scratchpad" is seeded with 50 rows
    And a backup of "scratchpad" is taken
    When "scratchpad" is lost
    And "scratchpad" is restored from its latest backup
    And a row of "scratchpad" is changed behind drill
    Then "scratchpad" matches its state at the backup

  Scenario: a corrupt backup is refused before the store is touched
    Given the SQLite store "scratchpad"
    And "scratchpad" is seeded with 50 rows
    And a backup of "scratchpad" is taken
    When the restore of "scratchpad" fails
    Then "scratchpad" holds 50 rows
'''

# The planted fault: a step of the project's own, changing one row with sqlite3 after the restore.
PLUGIN = '''
import sqlite3
from contextlib import closing

from pytest_bdd import parsers, when


@when(parsers.parse('a row of "{store}" is changed behind drill'))
def change_a_row(drill, store):
    with closing(sqlite3.connect(drill.store(store).path)) as conn, conn:
        conn.execute("UPDATE entries SET cents = cents + 1 WHERE id = 7")
'''

TOML = '''
[stores.ledger]
kind = "sqlite"
provision = "live"
url_env = "LEDGER_URL"
destructive = true
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kind's distribution, built from a copy of its source and installed into a folder of its own."""
    root = tmp_path_factory.mktemp("third-party-kind")
    source = shutil.copytree(KIND_SOURCE, root / "source")  # pip builds in the source tree: not in the repository
    target = root / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(source)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    [dist_info] = target.glob("drill_sqlite_kind-*.dist-info")
    assert "sqlite = drill_sqlite:KIND" in (dist_info / "entry_points.txt").read_text()
    return target


def _ledger(path: Path) -> list[tuple[int, str, int]]:
    with closing(sqlite3.connect(path)) as conn:
        return [tuple(row) for row in conn.execute("SELECT id, customer, cents FROM invoices ORDER BY id")]


def _with_kind(root: Path, site: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = plugin_env(root, extra)
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}:{site}"
    return env


@pytest.fixture(scope="module")
def drilled(site: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[DrillRun, Path, list[tuple[int, str, int]]]:
    root = plugin_project(tmp_path_factory.mktemp("sqlite-drill"), FEATURE, PLUGIN, name="sqlite.feature", toml=TOML)
    ledger = root / "ledger.sqlite"
    with closing(sqlite3.connect(ledger)) as conn, conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer TEXT, cents INTEGER)")
        conn.executemany("INSERT INTO invoices VALUES (?, ?, ?)",
                         ((i, f"customer {i} Łukasz", i * 1013 % 9973) for i in range(300)))
    before = _ledger(ledger)
    run = run_drill(root, "run", env=_with_kind(root, site, {"LEDGER_URL": f"sqlite:///{ledger}"}))
    return run, ledger, before


def test_the_kind_is_drilled_end_to_end(drilled: tuple[DrillRun, Path, list[tuple[int, str, int]]]) -> None:
    run, _, _ = drilled
    scenario = run.scenario("a throwaway SQLite database is recovered")
    assert scenario["status"] == "passed", run.output
    assert scenario["evidence"]["stores"]["scratchpad"]["kind"] == "sqlite"
    fingerprints = scenario["evidence"]["fingerprints"]["scratchpad"]
    assert fingerprints["before"]["unit"] == "rows" and fingerprints["before"]["part_label"] == "table"
    assert fingerprints["before"]["parts"]["entries"]["count"] == 500
    assert fingerprints["differences"] == []
    assert scenario["rpo_method"] == "markers" and scenario["rto_seconds"] is not None
    assert [t["met"] for t in scenario["targets"]] == [True, True]


def test_the_live_database_holds_what_it_held_before(drilled: tuple[DrillRun, Path, list[tuple[int, str, int]]]
                                                     ) -> None:
    run, ledger, before = drilled
    assert run.scenario("the live ledger is recovered in place")["status"] == "passed", run.output
    assert _ledger(ledger) == before  # read with sqlite3, not through drill


def test_a_planted_change_is_caught(drilled: tuple[DrillRun, Path, list[tuple[int, str, int]]]) -> None:
    run, _, _ = drilled
    run.failed_verification("a row changed behind drill is caught", "scratchpad",
                            "table entries: content differs with the same count (50 rows)")


def test_a_corrupt_backup_is_refused_and_the_store_keeps_its_data(
        drilled: tuple[DrillRun, Path, list[tuple[int, str, int]]]) -> None:
    run, _, _ = drilled
    scenario = run.scenario("a corrupt backup is refused before the store is touched")
    assert scenario["status"] == "passed", run.output
    planted = scenario["evidence"]["planted_failures"]["scratchpad"]
    assert planted["fault"] == "corrupt" and "is corrupt: sha256" in planted["error"]


def test_drill_check_knows_the_kind_its_keys_and_its_abilities(site: Path, tmp_path: Path) -> None:
    feature = FEATURE.replace('    And "scratchpad" is seeded with 500 rows\n',
                              '    When "scratchpad" is restored to the point in time "2026-01-01T10:00:00Z"\n', 1)
    root = plugin_project(tmp_path, feature, PLUGIN, name="sqlite.feature",
                          toml=TOML + 'journal_mode = "sideways"\n')
    refused = run_drill(root, "check", env=_with_kind(root, site))
    assert refused.code == 2
    assert "drill.toml:9: [stores.ledger.journal_mode] must be one of SQLite's journal modes" in refused.stderr
    (root / "drill.toml").write_text('[drill]\nplugins = ["faults"]\n' + TOML, encoding="utf-8")
    # The live store's URL is set: an unset `url_env` is a problem `drill check` reports of its own (issue 12).
    live = {"LEDGER_URL": f"sqlite:///{root / 'ledger.sqlite'}"}
    checked = run_drill(root, "check", env=_with_kind(root, site, live))
    assert checked.code == 2
    assert ("features/sqlite.feature:4: `When \"scratchpad\" is restored to the point in time "
            "\"2026-01-01T10:00:00Z\"` needs a store that supports point-in-time recovery; 'scratchpad' is a "
            "SQLite store") in checked.stderr
    assert "1 problem(s) found" in checked.stderr  # the kind's own sentence and the rest are known


def test_without_the_package_the_kind_is_unknown(tmp_path: Path) -> None:
    root = plugin_project(tmp_path, FEATURE, PLUGIN, name="sqlite.feature")
    run = run_drill(root, "check", env=plugin_env(root))
    assert run.code == 2
    assert 'undefined step: Given the SQLite store "scratchpad"' in run.stderr

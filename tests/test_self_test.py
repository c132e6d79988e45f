"""self_test = true: after a drill passed, a changed row, key, document, object or file planted in each restored
copy must make its check fail naming where it is; drill removes it and the check passes again. Shown for every
kind drill ships, in the report ("checks proven to bite"); on a scratch copy of a live PostgreSQL database the
planted change is seen with psql while drill waits, and gone afterwards; a live store is never planted in; a
check that does not read content (a fingerprint of counts only, planted by a plugin) fails the self-test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import plugin_env, plugin_project, run_drill, start_paused_drill
from tests.docker_engine import HELPER_IMAGE
from tests.live_servers import LivePostgres
from tests.oracles import pg_state, pg_tables

SCENARIO = '''
  Scenario: {kind} bites
    Given the {kind} store "{store}"
    And "{store}" is seeded with {count} {unit}
    And a backup of "{store}" is taken
    When "{store}" is lost
    And "{store}" is restored from its latest backup
    Then "{store}" matches its state at the backup
    And "{store}" holds {count} {unit}
'''
# kind in sentences, store, seed count, unit, the part label drill's messages use
KINDS = {"PostgreSQL": ("userdb", 300, "rows", "table"), "MongoDB": ("notifydb", 120, "documents", "collection"),
         "Redis": ("cache", 200, "keys", "key-space"), "GCS": ("models", 60, "objects", "prefix"),
         "Firestore": ("appdb", 80, "documents", "collection"), "files": ("configs", 40, "files", "directory")}


def _scenarios(kinds: dict[str, tuple[str, int, str, str]]) -> str:
    return "Feature: every kind's checks bite\n" + "".join(
        SCENARIO.format(kind=kind, store=store, count=count, unit=unit)
        for kind, (store, count, unit, _) in kinds.items())


def _check_proven(scenario: dict[str, Any], kind: tuple[str, int, str, str]) -> dict[str, Any]:
    store, count, unit, label = kind
    assert scenario["status"] == "passed", scenario["errors"]
    proof = scenario["evidence"]["self_test"][store]
    assert proof["status"] == "proven" and proof["removed"] is True, proof
    assert proof["check"] == "matches its state at the backup"
    assert proof["fault"].startswith("changed ") and proof["part"], proof
    # The failure the fault caused names where it is, as a failed `matches` step would.
    assert f"{label} {proof['part']}: content differs with the same count" in proof["message"], proof
    assert proof["passed"] == ["matches its state at the backup", f"holds {count} {unit}"]
    return dict(proof)


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("self-test")
    (root / "features").mkdir()
    (root / "features" / "bite.feature").write_text(_scenarios(KINDS), encoding="utf-8")
    (root / "drill.toml").write_text("[drill]\nself_test = true\n", encoding="utf-8")
    return root, run_drill(root, "run", timeout=900)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_planted_fault_is_caught_and_removed_for_every_kind(every_kind: Any, kind: str) -> None:
    _root, run = every_kind
    proof = _check_proven(run.scenario(f"{kind} bites"), KINDS[kind])
    if kind in ("GCS", "Firestore"):  # kinds that can say which item differs name the changed object or document
        assert proof["fault"].split(" ", 2)[1] in ("object", "document"), proof


def test_the_reports_show_the_checks_proven_to_bite(every_kind: Any) -> None:
    root, run = every_kind
    assert run.code == 0, run.output
    folder = next(p.parent for p in (root / "reports").glob("*/results.json"))
    summary = (folder / "summary.md").read_text()
    assert "### Checks proven to bite" in summary
    for store, *_ in KINDS.values():
        assert any(line.startswith("|") and f"| {store} |" in line and "✅ caught" in line
                   for line in summary.splitlines()), summary
    html = (folder / "report.html").read_text()
    assert "Checks proven to bite" in html and html.count('<span class="ok">caught</span>') == len(KINDS)
    junit = (folder / "junit.xml").read_text()
    assert junit.count('value="proven"') == len(KINDS)


def test_a_docker_volume_drill_proves_its_check_bites(tmp_path: Path, docker_engine: dict[str, str]) -> None:
    kinds = {"Docker volume": ("appdata", 40, "files", "directory")}
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "bite.feature").write_text(_scenarios(kinds), encoding="utf-8")
    (tmp_path / "drill.toml").write_text(f'[drill]\nself_test = true\n\n[stores.appdata]\nkind = "volume"\n'
                                         f'provision = "container"\nimage = "{HELPER_IMAGE}"\n', encoding="utf-8")
    run = run_drill(tmp_path, "run", "--report-format", "none", timeout=900)
    proof = _check_proven(run.scenario("Docker volume bites"), kinds["Docker volume"])
    assert proof["fault"].startswith("changed file seed/"), proof


def test_without_self_test_nothing_is_planted(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "bite.feature").write_text(
        _scenarios({"Redis": KINDS["Redis"]}), encoding="utf-8")
    run = run_drill(tmp_path, "run", "--report-format", "none")
    scenario = run.scenario("Redis bites")
    assert scenario["status"] == "passed" and "self_test" not in scenario["evidence"], run.output


# -- a check that does not bite ------------------------------------------------------------------------------

BLIND_PLUGIN = '''
"""Plants a blind check: PostgreSQL fingerprints that see counts only, as a careless store kind might."""
import dataclasses

from drill.fingerprint import PartPrint
from drill.stores.postgres import store

_real = store.fingerprint_in  # what backups and checks fingerprint PostgreSQL with


def _counts_only(conn):
    printed = _real(conn)
    return dataclasses.replace(printed, parts={name: PartPrint(p.count, "blind", p.schema)
                                               for name, p in printed.parts.items()})


store.fingerprint_in = _counts_only
'''


def test_a_check_that_cannot_see_a_changed_row_fails_the_self_test(tmp_path: Path) -> None:
    plugin_project(tmp_path, _scenarios({"PostgreSQL": KINDS["PostgreSQL"]}), BLIND_PLUGIN)
    (tmp_path / "drill.toml").write_text('[drill]\nplugins = ["faults"]\nself_test = true\n', encoding="utf-8")
    run = run_drill(tmp_path, "run", "--report-format", "none", env=plugin_env(tmp_path))
    scenario = run.scenario("PostgreSQL bites")
    assert scenario["status"] == "failed" and run.code == 1, run.output
    assert all(step["status"] == "passed" for step in scenario["steps"])  # the drill itself was green
    message = " ".join(e["message"] for e in scenario["errors"])
    assert "self-test failed (self_test = true): 'userdb': the changed column" in message, message
    assert "was not caught by matches its state at the backup: it found no difference at all" in message
    proof = scenario["evidence"]["self_test"]["userdb"]
    assert proof["status"] == "not-caught" and proof["removed"] is True


# -- live stores: never planted in; a scratch copy is, and the change is real ----------------------------------

LIVE_FEATURE = '''Feature: a live database and its scratch copy
  Scenario: the copy is proven, the live database is left alone
    Given the PostgreSQL store "ledger"
    And a backup of "ledger" is taken
    When "ledger" is restored from its latest backup into "ledger_copy"
    Then "ledger_copy" matches the state of "ledger" at the backup
    And "ledger" holds at least 500 rows in "entries"
'''


@pytest.fixture(scope="module")
def live_pg() -> Iterator[LivePostgres]:
    with LivePostgres() as server:
        server.create_database("ledger")
        server.seed_ledger("ledger", rows=500)
        yield server


def test_a_live_store_is_never_planted_in_and_its_scratch_copy_holds_a_real_change(
        tmp_path: Path, live_pg: LivePostgres) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "live.feature").write_text(LIVE_FEATURE, encoding="utf-8")
    (tmp_path / "drill.toml").write_text('[drill]\nself_test = true\n\n[stores.ledger]\nkind = "postgres"\n'
                                         'provision = "live"\nurl_env = "LEDGER_URL"\n', encoding="utf-8")
    before = pg_state(live_pg, "ledger")
    paused = start_paused_drill(tmp_path, "self-test:ledger_copy", "run", "--report-format", "none",
                                env={"LEDGER_URL": live_pg.url("ledger")})
    try:
        # While drill waits with its fault planted: the copy differs from the live database in one table's
        # content, with the same counts, as psql reads them.
        copy = next(d for d in live_pg.databases() if d.startswith("ledger_copy"))
        original, changed = pg_tables(live_pg, "ledger"), pg_tables(live_pg, copy)
        differing = [t for t in original if original[t] != changed[t]]
        assert len(differing) == 1 and original[differing[0]][0] == changed[differing[0]][0], (original, changed)
    except BaseException:
        paused.kill()
        raise
    output = paused.finish()
    assert paused.proc.returncode == 0, output
    results = json.loads(sorted((tmp_path / "reports").glob("*/results.json"))[-1].read_text())
    scenario = results["scenarios"][0]
    assert scenario["evidence"]["self_test"]["ledger"]["status"] == "skipped"
    assert "a live store: drill never plants a fault in one" in scenario["evidence"]["self_test"]["ledger"]["message"]
    proof = scenario["evidence"]["self_test"]["ledger_copy"]
    assert proof["status"] == "proven" and proof["part"] == differing[0] and proof["removed"] is True, proof
    assert pg_state(live_pg, "ledger") == before  # the live database: exactly as it was
    assert not [d for d in live_pg.databases() if d.startswith("ledger_copy")]  # the scratch copy is gone

"""A truncated or bit-flipped backup is rejected by `drill run` itself, before the restore touches its target.

`drill restore` is tested with damaged files in test_backup_cli.py; here the damage is done inside a
real drill, to the very file drill's own backup step wrote, by a step plugin. The store is a live
PostgreSQL the test started itself (tests/live_servers.py, a password and a non-superuser owner), so
the test can check with psql, not through drill, that the restore target was never created and the
source is exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import oracles
from tests.conftest import plugin_env, plugin_project, run_drill
from tests.live_servers import LivePostgres

DAMAGE_PLUGIN = '''
from pytest_bdd import parsers, given

from drill.scenario import DrillScenario


@given(parsers.parse('the latest backup of "{store}" is {damage}'))
def damage(drill: DrillScenario, store: str, damage: str) -> None:
    path = drill.latest_backup(store).path
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        del data[-200:]
    elif damage == "bit-flipped":
        data[len(data) // 2] ^= 0x01
    else:
        raise AssertionError(f"unknown damage {damage!r}")
    path.write_bytes(bytes(data))
'''

SCENARIO = '''
  Scenario: a {damage} backup
    Given the PostgreSQL store "ledger"
    And a backup of "ledger" is taken
    And the latest backup of "ledger" is {damage}
    When "ledger" is restored from its latest backup into "ledger_copy"
    Then "ledger_copy" matches the state of "ledger" at the backup
'''

CONFIG = '''
[stores.ledger]
kind = "postgres"
provision = "live"
url_env = "LEDGER_URL"
'''

DAMAGES = ("truncated", "bit-flipped")


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_backup_fails_the_drill_before_the_target_is_touched(tmp_path: Path, damage: str) -> None:
    with LivePostgres() as pg:
        pg.create_database("ledger")
        pg.seed_ledger("ledger", rows=300)
        before, databases = oracles.pg_state(pg, "ledger"), pg.databases()
        root = plugin_project(tmp_path, "Feature: damaged backups\n" + SCENARIO.format(damage=damage),
                              DAMAGE_PLUGIN, toml=CONFIG)
        run = run_drill(root, "run", env=plugin_env(root, {"LEDGER_URL": pg.url("ledger")}))

        assert run.code == 1, run.output
        scenario = run.scenario(f"a {damage} backup")
        steps = {s["text"]: s["status"] for s in scenario["steps"]}
        assert steps['"ledger" is restored from its latest backup into "ledger_copy"'] == "failed", steps
        assert steps['"ledger_copy" matches the state of "ledger" at the backup'] == "not_run", steps
        message = " ".join(e["message"] for e in scenario["errors"])
        [backup] = scenario["evidence"]["backups"]
        assert f"backup {backup['id']} of 'ledger' is corrupt: sha256" in message, message
        assert backup["sha256"] in message  # the digest recorded when it was taken, against the one found now
        # Checked by the server's own psql: no restore target was created, the source is as it was.
        assert pg.databases() == databases
        assert oracles.pg_state(pg, "ledger") == before

"""`drill status`: a store's "last verified backup" is one a passed scenario restored and checked, never one it
only found and dated, nor one whose restore failed as planted.

Run 1 passes two scenarios that each hold a backup in their evidence without proving it restores: a dump made
by the test's own Redis server (found by glob, then only dated by a freshness step), and a backup drill took
whose planted restore failed. Run 2 restores each (the dump checked by a count the test knows, the backup by
fingerprint). The oracle is the runs' own results.json (evidence.backups, the phases) and what the test wrote.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import drill_env, run_drill
from tests.live_servers import LiveRedis

KEYS = 40

RUN_1 = '''Feature: backups held, none restored
  Scenario: the cache's dump is found and fresh
    Given the Redis store "cache"
    And the latest backup of "cache" in "dumps/cache_*.rdb"
    Then the latest backup of "cache" is at most 1 hour old

  Scenario: a corrupt copy of the sessions backup does not restore
    Given the Redis store "sessions"
    And "sessions" is seeded with 30 keys
    And a backup of "sessions" is taken
    When the restore of "sessions" fails
'''

RUN_2 = f'''Feature: backups restored and checked
  Scenario: the cache's dump restores
    Given the Redis store "cache"
    And the latest backup of "cache" in "dumps/cache_*.rdb"
    When "cache" is restored from its latest backup
    Then "cache" holds {KEYS} keys

  Scenario: the sessions restore
    Given the Redis store "sessions"
    And "sessions" is seeded with 30 keys
    And a backup of "sessions" is taken
    When "sessions" is lost
    And "sessions" is restored from its latest backup
    Then "sessions" matches its state at the backup
'''


def _status(project: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "drill", "status", "--json"], cwd=project, capture_output=True,
                          text=True, env=drill_env(None), timeout=300)
    assert done.returncode == 0, done.stderr
    stores: dict[str, Any] = json.loads(done.stdout)["stores"]
    return stores


def _scenario(results: dict[str, Any] | None, name: str) -> dict[str, Any]:
    assert results is not None
    [found] = [s for s in results["scenarios"] if s["name"] == name]
    return found


def _restored(scenario: dict[str, Any], store: str) -> bool:
    return any(p["name"] == "restore" and p["store"] == store and p["status"] == "passed" for p in scenario["phases"])


def test_only_a_restored_and_checked_backup_is_the_last_verified_one(tmp_path: Path) -> None:
    project = tmp_path / "p"
    (project / "features").mkdir(parents=True)
    (project / "dumps").mkdir()
    with LiveRedis() as server:  # the dump production's cron would have made, by the test's own server
        client: Any = server.client()
        for n in range(KEYS):
            client.set(f"key:{n}", n)
        client.save()
        assert client.dbsize() == KEYS
        shutil.copyfile(server.root / "dump.rdb", project / "dumps" / "cache_latest.rdb")
        client.close()

    (project / "features" / "held.feature").write_text(RUN_1)
    first = run_drill(project, "run", "--report-format", "none")
    assert first.code == 0, first.output
    found = _scenario(first.results, "the cache's dump is found and fresh")
    planted = _scenario(first.results, "a corrupt copy of the sessions backup does not restore")
    # Each passed holding a backup in its evidence, and neither restored it.
    assert [b["id"] for b in found["evidence"]["backups"]] == ["cache_latest.rdb"]
    assert found["evidence"]["freshness"]["cache"]["fresh"] is True and not _restored(found, "cache")
    [planted_backup] = planted["evidence"]["backups"]
    assert "sessions" in planted["evidence"]["planted_failures"] and not _restored(planted, "sessions")
    assert found["status"] == planted["status"] == "passed"
    stores = _status(project)
    assert stores["cache"]["last_result"]["status"] == "passed"
    assert stores["cache"]["last_verified_backup"] is None, stores["cache"]
    assert stores["sessions"]["last_verified_backup"] is None, stores["sessions"]

    (project / "features" / "held.feature").write_text(RUN_2)
    second = run_drill(project, "run", "--report-format", "none")
    assert second.code == 0, second.output
    assert second.results is not None
    restored_dump = _scenario(second.results, "the cache's dump restores")
    restored = _scenario(second.results, "the sessions restore")
    assert _restored(restored_dump, "cache") and _restored(restored, "sessions")
    [dump] = restored_dump["evidence"]["backups"]
    [backup] = restored["evidence"]["backups"]
    assert backup["id"] != planted_backup["id"]
    stores = _status(project)
    cache = stores["cache"]["last_verified_backup"]
    assert cache is not None and cache["id"] == "cache_latest.rdb" and cache["sha256"] == dump["sha256"], cache
    assert cache["run_id"] == second.results["run_id"] and cache["scenario"] == "the cache's dump restores"
    sessions = stores["sessions"]["last_verified_backup"]
    assert sessions is not None and sessions["id"] == backup["id"] and sessions["sha256"] == backup["sha256"]
    assert sessions["run_id"] == second.results["run_id"]

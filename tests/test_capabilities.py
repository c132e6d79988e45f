"""Optional abilities are declared by each kind, checked with isinstance, and reported by `drill check`."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from drill.stores import capabilities, kinds
from drill.stores.capabilities import (
    CountsExpiring,
    CountsMatching,
    ExplainsDifferences,
    ObjectStore,
    ObjectVersions,
    PlantsChanges,
    PointInTime,
    Removable,
    RunsSql,
    ScratchTargets,
    ServerFaults,
)
from tests.conftest import run_drill

# Each kind's adapter class, named here (not by drill) so that the declaration is held to the code.
ADAPTERS = {"postgres": "drill.stores.postgres.store:PostgresStore", "mongodb": "drill.stores.mongodb.store:MongoStore",
            "redis": "drill.stores.redis.store:RedisStore", "volume": "drill.stores.volume.store:VolumeStore",
            "gcs": "drill.stores.gcs.store:GcsStore", "firestore": "drill.stores.firestore.store:FirestoreStore",
            "files": "drill.stores.files.store:FilesStore"}


def _adapter(kind: str) -> type:
    module, _, name = ADAPTERS[kind].partition(":")
    adapter: type = getattr(importlib.import_module(module), name)
    return adapter


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_a_kind_declares_exactly_the_abilities_its_store_has(kind: str) -> None:
    adapter = _adapter(kind)
    declared = set(kinds.spec(kind).capabilities)
    implemented = {ability for ability in capabilities.ABILITIES if issubclass(adapter, ability)}
    assert implemented == declared & set(capabilities.ABILITIES), kind
    assert all(issubclass(adapter, own) for own in declared), kind  # a kind's own abilities (files: HoldsFiles)


def test_the_abilities_the_drills_rely_on() -> None:
    """What the documented sentences need (docs/reference/vocabulary.md): a change here changes what drills can say."""
    has = {kind: set(spec.capabilities) for kind, spec in kinds.all_kinds().items()}
    assert {RunsSql, PointInTime, Removable, ServerFaults} <= has["postgres"]
    assert {ObjectStore, ObjectVersions, ExplainsDifferences} <= has["gcs"]
    assert {ExplainsDifferences, ScratchTargets} <= has["firestore"]
    assert {Removable, ScratchTargets} <= has["mongodb"]
    assert has["redis"] == {CountsExpiring, CountsMatching, PlantsChanges}
    assert has["volume"] == {CountsMatching, PlantsChanges}
    assert all(PlantsChanges in has[kind] for kind in ADAPTERS), "every kind of drill's own proves its checks bite"


FEATURE = '''Feature: abilities
  Scenario: asked of a Redis store
    Given the Redis store "cache"
    And "cache" is seeded with 10 keys
    And a backup of "cache" is taken
    When "cache" is restored to the point in time "2026-01-01T10:00:00Z"
    And the restore of "cache" fails because the server is killed
    And the restore of "cache" fails
    And SQL is run on "cache":
      """
      SELECT 1
      """
    Then the query "SELECT 1" on "cache" returns "1"

  Scenario: asked of a PostgreSQL store
    Given the PostgreSQL store "userdb"
    And a base backup of "userdb" is taken
    When SQL is run on "userdb":
      """
      SELECT 1
      """
'''


def test_drill_check_names_the_sentence_the_ability_and_the_store(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    feature = tmp_path / "features" / "abilities.feature"
    feature.write_text(FEATURE, encoding="utf-8")
    run = run_drill(tmp_path, "check")
    assert run.code == 2, run.output
    lines = [line for line in run.stderr.splitlines() if line.startswith("drill: error: ")]
    where = "features/abilities.feature"
    expected = [
        (6, '`When "cache" is restored to the point in time "2026-01-01T10:00:00Z"` needs a store that supports '
            "point-in-time recovery; 'cache' is a Redis store"),
        (7, '`And the restore of "cache" fails because the server is killed` needs a store that runs on a server '
            "drill can kill or starve of disk during a restore; 'cache' is a Redis store"),
        (9, "`And SQL is run on \"cache\":` needs a store that runs SQL; 'cache' is a Redis store"),
        (13, '`Then the query "SELECT 1" on "cache" returns "1"` needs a store that runs SQL; \'cache\' is a '
             "Redis store"),
    ]
    assert len(lines) == len(expected), run.stderr  # the corrupt-backup fault and the PostgreSQL steps are fine
    for line, (number, message) in zip(lines, expected, strict=True):
        assert f"{where}:{number}: {message}" in line, line


def test_drill_run_warns_and_the_scenario_fails_at_that_step(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "sql.feature").write_text('''Feature: sql on redis
  Scenario: redis asked for SQL
    Given the Redis store "cache"
    When SQL is run on "cache":
      """
      SELECT 1
      """
''', encoding="utf-8")
    run = run_drill(tmp_path, "run")
    assert run.code == 1, run.output
    assert "drill: warning: " in run.stderr and "needs a store that runs SQL" in run.stderr
    scenario = run.scenario("redis asked for SQL")
    assert scenario["status"] == "failed"
    [error] = scenario["errors"]
    assert error["step"] == 'When SQL is run on "cache":'
    assert "running SQL needs a store that runs SQL; 'cache' is a Redis store" in error["message"]

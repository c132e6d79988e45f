"""A restore `into` a name that is the live store's OWN database, project or bucket is refused (DESIGN, invariant 1).

A restore `into` a name is a copy next to the store: it skips the in-place guards (the consent check, the safety
net's copy, the journal). Into the store's own target it used to overwrite the live store anyway: PostgreSQL
dropped the database `WITH (FORCE)` and ran pg_restore with nothing to put it back from. Now drill refuses it in the
scenario, in `drill restore --into` and in the adapter's own restore, before anything is read or touched.

Every server is started here, outside drill, with `destructive = true` in drill.toml (so that only the new guard
stands between the step and the data); the oracles (tests/oracles.py: psql, pymongo, the Firestore and GCS clients)
read the live data before and after. A restore into a new name still works, next to the untouched original.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import SafetyError
from drill.provision.factory import provision
from drill.stores import capabilities
from tests.conftest import run_drill
from tests.live_servers import LiveFirestore, LiveGcs, LiveMongo, LivePostgres
from tests.oracles import firestore_state, gcs_state, mongo_state, pg_state, pg_tables

FEATURE = '''Feature: restores into a name
  Scenario: restored into its own {what}
    Given the {kind} store "{store}"
    And a backup of "{store}" is taken
    When "{store}" is restored from its latest backup into "{own}"

  Scenario: restored into a new {what}
    Given the {kind} store "{store}"
    And a backup of "{store}" is taken
    When "{store}" is restored from its latest backup into "{new}"
    Then "{new}" matches the state of "{store}" at the backup
'''


def _drill(root: Path, kind: str, store: str, what: str, own: str, new: str, toml: str,
           env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Run both scenarios against the live store; the refused one and the one that worked, by name."""
    (root / "features").mkdir()
    (root / "features" / "into.feature").write_text(FEATURE.format(kind=kind, store=store, what=what, own=own,
                                                                   new=new))
    (root / "drill.toml").write_text(f"[stores.{store}]\n{toml}provision = \"live\"\ndestructive = true\n")
    run = run_drill(root, "run", env=env)
    assert run.code != 0, run.output  # the refused scenario fails the run
    refused, worked = run.scenario(f"restored into its own {what}"), run.scenario(f"restored into a new {what}")
    assert worked["status"] == "passed", worked["errors"]
    assert refused["status"] == "failed"
    # Refused before the clock started or anything was restored: no restore phase, no safety net engaged.
    assert refused["rto_seconds"] is None, refused
    assert "restore" not in [phase["name"] for phase in refused["phases"]]
    assert refused["live_stores"] == []
    assert not (root / "backups" / ".drill-safety" / store).exists()
    return {"refused": refused, "worked": worked}


def _message(scenario: dict[str, Any]) -> str:
    [error] = scenario["errors"]
    return str(error["message"])


# -- PostgreSQL --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[LivePostgres]:
    with LivePostgres() as server:
        yield server


def _app(pg: LivePostgres, name: str) -> dict[str, Any]:
    """The live database `name`, owned by the test's non-superuser role and seeded; its state by psql."""
    pg.create_database(name)
    pg.seed_ledger(name, rows=300)
    state = pg_state(pg, name)
    assert state["tables"]["public.entries"][0] == 300  # the oracle reads real rows
    return state


def test_a_live_postgres_restore_into_its_own_database_is_refused_and_the_database_is_untouched(
        pg: LivePostgres, tmp_path: Path) -> None:
    before = _app(pg, "app")
    databases = pg.databases()
    results = _drill(tmp_path, "PostgreSQL", "userdb", "database", "app", "app_copy",
                     'kind = "postgres"\nurl_env = "USERDB_URL"\n', {"USERDB_URL": pg.url("app")})
    message = _message(results["refused"])
    assert "cannot restore 'userdb' into 'app': 'app' names the database of 'userdb' itself" in message
    assert 'When "userdb" is restored from its latest backup`, with `destructive = true`' in message
    assert 'into "userdb_restored"' in message
    # Row counts and md5(string_agg) of every table, and the catalog: the same before and after.
    assert pg_state(pg, "app") == before
    assert pg.databases() == databases  # app kept; the new database of the second scenario dropped again


def test_drill_restore_into_the_live_database_itself_is_refused_and_into_a_new_one_is_kept(
        pg: LivePostgres, tmp_path: Path) -> None:
    before = _app(pg, "app_cli")
    (tmp_path / "drill.toml").write_text('[repository]\npath = "repo"\n\n[stores.userdb]\nkind = "postgres"\n'
                                         'provision = "live"\nurl_env = "USERDB_URL"\ndestructive = true\n')
    env = {"USERDB_URL": pg.url("app_cli")}
    assert run_drill(tmp_path, "backup", "userdb", env=env).code == 0
    refused = run_drill(tmp_path, "restore", "userdb", "--into", "app_cli", env=env)
    assert refused.code != 0
    assert "'app_cli' names the database of 'userdb' itself" in refused.output
    assert "`drill restore userdb` without --into" in refused.output
    assert pg_state(pg, "app_cli") == before
    kept = run_drill(tmp_path, "restore", "userdb", "--into", "app_cli_copy", env=env)
    assert kept.code == 0, kept.output
    assert pg_tables(pg, "app_cli_copy") == before["tables"]  # the copy holds the backup, read by psql
    assert pg_state(pg, "app_cli") == before


def test_the_postgres_adapter_itself_refuses_a_restore_into_its_own_database(
        pg: LivePostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below the scenario and the CLI: whoever calls restore(artifact, into=<own database>) gets a refusal, not a
    DROP DATABASE (the guard in PgTransfers.restore)."""
    before = _app(pg, "app_adapter")
    monkeypatch.setenv("USERDB_URL", pg.url("app_adapter"))
    config = StoreConfig(name="userdb", kind="postgres", provision="live", url_env="USERDB_URL", destructive=True)
    cleanup = CleanupStack()
    try:
        store = provision(config, cleanup)
        artifact = store.backup(tmp_path)
        with pytest.raises(SafetyError, match="'app_adapter' names the database of 'userdb' itself"):
            store.restore(artifact, "app_adapter")
    finally:
        cleanup.run()
    assert pg_state(pg, "app_adapter") == before


# -- MongoDB (nx-27017), Firestore (the official emulator), GCS (fake-gcs-server) ----------------------------


def test_a_live_mongodb_restore_into_its_own_database_is_refused_and_the_database_is_untouched(
        tmp_path: Path) -> None:
    with LiveMongo() as live:
        client: Any = live.client()
        db = client["app"]
        db.messages.insert_many([{"n": i, "text": f"message {i}", "score": i / 3} for i in range(200)])
        db.messages.create_index("n", unique=True)
        db.users.insert_many([{"_id": f"user-{i}", "age": i} for i in range(40)])
        before = mongo_state(client, "app")
        assert before["messages"][0] == 200
        results = _drill(tmp_path, "MongoDB", "notify", "database", "app", "app_copy",
                         'kind = "mongodb"\nurl_env = "NOTIFY_URL"\n', {"NOTIFY_URL": live.url("app")})
        assert "'app' names the database of 'notify' itself" in _message(results["refused"])
        assert mongo_state(client, "app") == before


def test_a_live_firestore_restore_into_its_own_project_is_refused_and_the_project_is_untouched(
        tmp_path: Path) -> None:
    with LiveFirestore(project="live-project") as live:
        client: Any = live.client()
        for i in range(30):
            client.collection("users").document(f"u{i}").set({"n": i, "ratio": i / 7, "tags": ["x", i]})
        client.collection("users").document("u1").collection("orders").document("o1").set({"total": 12.5})
        before = firestore_state(client)
        assert len(before) == 31
        # `live_project` is the project id `live-project`: the name a restore into it would use.
        results = _drill(tmp_path, "Firestore", "prod", "project", "live_project", "prod-copy",
                         'kind = "firestore"\nurl_env = "PROD_FS"\n', {"PROD_FS": f"http://{live.host}/live-project"})
        assert "'live_project' names the project of 'prod' itself" in _message(results["refused"])
        assert firestore_state(client) == before


def test_a_live_gcs_restore_into_its_own_bucket_is_refused_and_the_bucket_is_untouched(tmp_path: Path) -> None:
    with LiveGcs() as live:
        client: Any = live.client()
        bucket = client.create_bucket("prod-assets")
        for i in range(20):
            bucket.blob(f"images/{i:03d}.bin").upload_from_string(bytes([i]) * (50 + i))
        before = gcs_state(client, "prod-assets")
        assert len(before) == 20
        results = _drill(tmp_path, "GCS", "assets", "bucket", "prod-assets", "prod-assets-copy",
                         'kind = "gcs"\nurl_env = "ASSETS_GCS"\nbucket = "prod-assets"\n',
                         {"ASSETS_GCS": f"{live.endpoint}?project=test-project"})
        assert "'prod-assets' names the bucket of 'assets' itself" in _message(results["refused"])
        assert gcs_state(client, "prod-assets") == before


# -- every kind that restores into a name on its own server says which name is its own -----------------------


NAMED_TARGETS = {"postgres": "drill.stores.postgres.store:PostgresStore",
                 "mongodb": "drill.stores.mongodb.store:MongoStore", "gcs": "drill.stores.gcs.store:GcsStore",
                 "firestore": "drill.stores.firestore.store:FirestoreStore",
                 "volume": "drill.stores.volume.store:VolumeStore"}


@pytest.mark.parametrize("adapter", sorted(NAMED_TARGETS.values()))
def test_each_kind_that_restores_into_a_named_target_on_its_server_knows_its_own(adapter: str) -> None:
    """Redis restores `into` a new local server (a live one refuses `into`) and files into a fresh scratch folder:
    neither can name itself. Each other kind must answer, or the guard passes it by (Docker volumes: no engine in
    these tests, so this and VolumeTransfers.restore's guard are what hold them)."""
    module, _, name = adapter.partition(":")
    assert issubclass(getattr(importlib.import_module(module), name), capabilities.KnowsOwnTarget)

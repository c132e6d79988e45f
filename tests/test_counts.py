"""Lower bounds and richer counts, on live servers the test starts and fills itself with the servers' own clients:
`holds at least N`, `… in "PART"` for every kind's part, Redis keys with a TTL, names matching a pattern, and
`the query … returns at least N`. The expected figures come from what the test wrote (and psql read), never from
drill; every kind of check also fails once, with a message that says what was found and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DrillRun, run_drill
from tests.live_servers import LiveFirestore, LiveGcs, LiveMongo, LivePostgres, LiveRedis


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    with LivePostgres() as pg, LiveRedis() as redis, LiveMongo() as mongo, LiveGcs() as gcs, \
            LiveFirestore() as firestore:
        pg.create_database("shop")
        pg.seed_ledger("shop", rows=600)  # 50 accounts, 600 entries
        r: Any = redis.client()
        for i in range(300):
            r.set(f"session:{i}", "x", ex=3600 if i % 3 == 0 else None)  # 100 with a TTL
        for i in range(50):
            r.hset(f"profile:{i}", mapping={"n": i})
        m: Any = mongo.client()
        m["notify"]["notifications"].insert_many([{"n": i, "to": f"user-{i % 7}"} for i in range(150)])
        m["notify"]["users"].insert_many([{"n": i} for i in range(20)])
        g: Any = gcs.client()
        bucket = g.create_bucket("assets")
        for i in range(40):  # 30 models/<v>/model-<i>.pb, 10 models/<v>/labels-<i>.txt
            name = f"models/v{i % 4}/model-{i}.pb" if i < 30 else f"models/v{i % 4}/labels-{i}.txt"
            bucket.blob(name).upload_from_string(f"weights {i}".encode())
        for i in range(10):
            bucket.blob(f"data/export-{i}.csv").upload_from_string(b"a,b\n")
        f: Any = firestore.client()
        for i in range(25):
            f.collection("notifications").document(f"n{i}").set({"n": i})
        for u in range(5):
            f.collection("users").document(f"u{u}").set({"name": f"user {u}"})
            for s in range(2):
                f.collection("users").document(f"u{u}").collection("sessions").document(f"s{s}").set({"s": s})
        yield {"pg": pg, "redis": redis, "mongo": mongo, "gcs": gcs, "firestore": firestore}


TOML = '''
[stores.shop]
kind = "postgres"
provision = "live"
url_env = "SHOP_URL"

[stores.cache]
kind = "redis"
provision = "live"
url_env = "CACHE_URL"

[stores.notify]
kind = "mongodb"
provision = "live"
url_env = "NOTIFY_URL"

[stores.assets]
kind = "gcs"
provision = "live"
url_env = "ASSETS_URL"

[stores.app]
kind = "firestore"
provision = "live"
url_env = "APP_URL"
project = "live-project"
'''

FEATURE = '''Feature: lower bounds and richer counts
  Scenario: PostgreSQL
    Given the PostgreSQL store "shop"
    Then "shop" holds at least {pg_total} rows
    And "shop" holds at least 600 rows in "entries"
    And "shop" holds 50 rows in "accounts"
    And the query "SELECT count(*) FROM entries WHERE note IS NOT NULL" on "shop" returns at least {pg_notes}

  Scenario: PostgreSQL below its lower bound
    Given the PostgreSQL store "shop"
    Then "shop" holds at least {pg_total_plus_one} rows

  Scenario: a query below its lower bound
    Given the PostgreSQL store "shop"
    Then the query "SELECT count(*) FROM entries WHERE note IS NOT NULL" on "shop" returns at least 10,000

  Scenario: a query that returns no number
    Given the PostgreSQL store "shop"
    Then the query "SELECT 'many'" on "shop" returns at least 1

  Scenario: Redis
    Given the Redis store "cache"
    Then "cache" holds 100 keys with a TTL
    And "cache" holds at least 90 keys with a TTL
    And "cache" holds 300 keys matching "session:*"
    And "cache" holds at least 50 keys matching "profile:*"
    And "cache" holds 350 keys in "db0"

  Scenario: Redis with one key too few with a TTL
    Given the Redis store "cache"
    Then "cache" holds 101 keys with a TTL

  Scenario: Redis with fewer keys matching than expected
    Given the Redis store "cache"
    Then "cache" holds at least 301 keys matching "session:*"

  Scenario: MongoDB
    Given the MongoDB store "notify"
    Then "notify" holds 150 documents in "notifications"
    And "notify" holds at least 170 documents
    And "notify" holds at least 20 documents in "users"

  Scenario: MongoDB below its lower bound in a collection
    Given the MongoDB store "notify"
    Then "notify" holds at least 151 documents in "notifications"

  Scenario: GCS
    Given the GCS store "assets"
    Then "assets" holds 40 objects in "models/"
    And "assets" holds at least 10 objects in "data/"
    And "assets" holds 30 objects matching "models/*/*.pb"
    And "assets" holds 0 objects matching "models/*.pb"
    And "assets" holds 40 objects matching "models/**"

  Scenario: GCS below its lower bound under a prefix
    Given the GCS store "assets"
    Then "assets" holds at least 41 objects in "models/"

  Scenario: Firestore
    Given the Firestore store "app"
    Then "app" holds 25 documents in "notifications"
    And "app" holds 10 documents in "users/*/sessions"
    And "app" holds 5 documents matching "users/*"
    And "app" holds 10 documents matching "users/*/sessions/*"
    And "app" holds at least 40 documents

  Scenario: Firestore with one document too few
    Given the Firestore store "app"
    Then "app" holds 26 documents in "notifications"
'''


@pytest.fixture(scope="module")
def counted(servers: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[DrillRun, dict[str, int]]:
    pg: LivePostgres = servers["pg"]
    # The oracle: what psql counts, not what drill does.
    figures = {"pg_total": int(pg.psql("SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM entries)",
                                       "shop")),
               "pg_notes": int(pg.psql("SELECT count(*) FROM entries WHERE note IS NOT NULL", "shop"))}
    figures["pg_total_plus_one"] = figures["pg_total"] + 1
    root = tmp_path_factory.mktemp("counts")
    (root / "features").mkdir()
    (root / "features" / "counts.feature").write_text(FEATURE.format(**figures), encoding="utf-8")
    (root / "drill.toml").write_text(TOML, encoding="utf-8")
    env = {"SHOP_URL": pg.url("shop"), "CACHE_URL": servers["redis"].url(),
           "NOTIFY_URL": servers["mongo"].url("notify"), "ASSETS_URL": f"{servers['gcs'].endpoint}?project=p",
           "APP_URL": f"http://{servers['firestore'].host}/x"}
    return run_drill(root, "run", "--report-format", "none", env=env, timeout=600), figures


@pytest.mark.parametrize("kind", ["PostgreSQL", "Redis", "MongoDB", "GCS", "Firestore"])
def test_every_kind_counts_in_its_unit_parts_and_names(counted: tuple[DrillRun, dict[str, int]], kind: str) -> None:
    run, _ = counted
    scenario = run.scenario(kind)
    assert scenario["status"] == "passed", run.output
    counts = scenario["evidence"]["counts"]
    assert any(c["at_least"] for c in counts.values()) and any(not c["at_least"] for c in counts.values())


def test_a_lower_bound_is_recorded_with_what_was_found(counted: tuple[DrillRun, dict[str, int]]) -> None:
    run, figures = counted
    counts = run.scenario("PostgreSQL")["evidence"]["counts"]
    # A live store's figures are never scaled by seed_scale: the evidence says so (scaled_from null).
    assert counts["shop"] == {"expected": figures["pg_total"], "actual": figures["pg_total"], "at_least": True,
                              "scaled_from": None}
    assert counts["shop in 'entries'"] == {"expected": 600, "actual": 600, "at_least": True, "scaled_from": None}
    health = run.scenario("PostgreSQL")["evidence"]["health"]
    assert health[0]["actual"] == str(figures["pg_notes"]) and health[0]["at_least"] == figures["pg_notes"]


FAILURES = {
    "PostgreSQL below its lower bound": "'shop' holds {pg_total} rows, expected at least {pg_total_plus_one}",
    "a query below its lower bound": "the query 'SELECT count(*) FROM entries WHERE note IS NOT NULL' on 'shop' "
                                     "returned {pg_notes}, expected at least 10000",
    "a query that returns no number": "the query \"SELECT 'many'\" on 'shop' returned 'many', not a number",
    "Redis with one key too few with a TTL": "'cache' holds 100 keys with a TTL, expected 101",
    "Redis with fewer keys matching than expected": "'cache' holds 300 keys matching 'session:*', expected at "
                                                    "least 301",
    "MongoDB below its lower bound in a collection": "'notify' holds 150 documents in 'notifications', expected at "
                                                     "least 151",
    "GCS below its lower bound under a prefix": "'assets' holds 40 objects in 'models/', expected at least 41",
    "Firestore with one document too few": "'app' holds 25 documents in 'notifications', expected 26",
}


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_a_count_that_is_not_met_fails_saying_what_was_found(counted: tuple[DrillRun, dict[str, int]],
                                                             name: str) -> None:
    run, figures = counted
    scenario = run.scenario(name)
    assert scenario["status"] == "failed", run.output
    message = " ".join(e["message"] for e in scenario["errors"])
    assert FAILURES[name].format(**figures) in message, message
    assert [s["status"] for s in scenario["steps"]] == ["passed", "failed"]


def test_a_count_a_kind_cannot_make_is_reported_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "f.feature").write_text('''Feature: f
  Scenario: s
    Given the MongoDB store "notify"
    Then "notify" holds 5 documents matching "n*"
    And "notify" holds 5 documents with a TTL
''', encoding="utf-8")
    run = run_drill(tmp_path, "check")
    assert run.code == 2
    assert "needs a store that can count items whose names match a pattern; 'notify' is a MongoDB store" in run.stderr
    assert "needs a store that can count what expires on its own (keys with a TTL); 'notify' is a MongoDB store" \
        in run.stderr

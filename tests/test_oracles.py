"""The test harness judges itself: each live server starts outside drill, and each oracle sees a planted change.

If an oracle could not tell two states apart, every live-store test built on it would be hollow,
so each one is shown here to change when one value, one constraint or one expiry changes.
"""

from __future__ import annotations

import datetime as dt

from tests import oracles
from tests.live_servers import LiveFirestore, LiveGcs, LiveMongo, LivePostgres, LiveRedis


def test_postgres_oracle_sees_a_changed_row_and_a_dropped_constraint() -> None:
    with LivePostgres() as pg:
        pg.create_database("ledger")
        pg.seed_ledger("ledger", rows=200)
        assert pg.database_info("ledger")["owner"] == LivePostgres.OWNER
        before = oracles.pg_state(pg, "ledger")
        assert before["tables"]["public.entries"][0] == 200
        assert oracles.pg_state(pg, "ledger") == before  # stable when nothing changes

        pg.psql("UPDATE entries SET note = 'changed' WHERE id = 17", "ledger")
        changed = oracles.pg_state(pg, "ledger")
        assert changed["tables"]["public.entries"] != before["tables"]["public.entries"]
        assert changed["catalog"] == before["catalog"]

        pg.psql("ALTER TABLE accounts DROP CONSTRAINT accounts_balance_check", "ledger")
        assert oracles.pg_catalog(pg, "ledger")["constraints"] != before["catalog"]["constraints"]


def test_postgres_password_is_required() -> None:
    with LivePostgres() as pg:
        import psycopg

        url = pg.url("postgres")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (LivePostgres.OWNER,)
        wrong = url.replace(LivePostgres.OWNER_PASSWORD, "wrong")
        try:
            psycopg.connect(wrong).close()
        except psycopg.OperationalError as exc:
            assert "password authentication failed" in str(exc)
        else:
            raise AssertionError("the live server accepted a wrong password")


def test_redis_oracle_sees_a_changed_value_an_expiry_and_db1() -> None:
    with LiveRedis() as server:
        main, other = server.client(0), server.client(1)
        main.set("s", "v")
        main.set("ttl", "x", ex=3600)
        main.rpush("l", "a", "b")
        main.hset("h", mapping={"f": "1"})
        main.zadd("z", {"m": 1.5})
        main.sadd("set", "x", "y")
        other.set("in-db1", "1")
        before = oracles.redis_state(server.client)
        digest = oracles.debug_digest(main)
        assert set(before) == {0, 1}
        assert before[0][b"ttl"][2] > 0 and before[0][b"s"][2] == -1

        other.set("in-db1", "2")
        assert oracles.redis_state(server.client)[1] != before[1]
        assert oracles.debug_digest(main) != digest
        other.set("in-db1", "1")
        assert oracles.debug_digest(main) == digest

        main.pexpireat("ttl", before[0][b"ttl"][2] + 5000)
        assert oracles.redis_state(server.client)[0][b"ttl"] != before[0][b"ttl"]


def test_mongo_oracle_tells_3_from_3_point_0() -> None:
    with LiveMongo() as server:
        client = server.client()
        client["notifydb"]["n"].insert_many([{"_id": 1, "v": 3}, {"_id": 2, "v": "x"}])
        before = oracles.mongo_state(client, "notifydb")
        assert before["n"][0] == 2
        client["notifydb"]["n"].update_one({"_id": 1}, {"$set": {"v": 3.0}})
        assert oracles.mongo_state(client, "notifydb") != before


def test_gcs_oracle_sees_changed_metadata() -> None:
    with LiveGcs() as server:
        client = server.client()
        bucket = client.create_bucket("assets")
        blob = bucket.blob("a/b.txt")
        blob.metadata = {"k": "v"}
        blob.upload_from_string(b"hello", content_type="text/plain")
        before = oracles.gcs_state(client, "assets")
        assert before["a/b.txt"][0] == 5
        blob = bucket.get_blob("a/b.txt")
        blob.metadata = {"k": "w"}
        blob.patch()
        assert oracles.gcs_state(client, "assets") != before


def test_firestore_oracle_sees_types_and_subcollections() -> None:
    with LiveFirestore() as server:
        client = server.client()
        user = client.collection("users").document("u1")
        user.set({"n": 3, "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "m": {"x": [1, "a"]}})
        user.collection("sessions").document("s1").set({"ok": True})
        before = oracles.firestore_state(client)
        assert set(before) == {"users/u1", "users/u1/sessions/s1"}
        user.update({"n": 3.0})
        assert oracles.firestore_state(client) != before

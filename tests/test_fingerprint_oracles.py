"""drill's fingerprints judged by the independent oracles (tests/oracles.py), for every store kind.

Each test starts a live server outside drill (tests/live_servers.py), points a drill store at it
(provision = "live", by URL, as production does), and makes a series of changes with the server's own
client. Before and after each one, the fingerprint's verdict (compare() finds a difference or not) must
be the oracle's verdict (its state read by psql / redis-py / pymongo / the google clients differs or
not): both see every change, and both call equal what is equal, including rewrites that change nothing
a restore must bring back (rows rewritten with the same values, objects uploaded again). A fingerprint
that missed a change, or flagged an equal state, would disagree with the oracle here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.fingerprint import compare
from drill.provision.factory import provision
from drill.stores.base import Store
from tests import oracles
from tests.live_servers import LiveFirestore, LiveGcs, LiveMongo, LivePostgres, LiveRedis

Change = tuple[str, Callable[[], None], bool]  # (what, how, does it change what a restore must bring back?)


@contextmanager
def _live_store(monkeypatch: pytest.MonkeyPatch, kind: str, url: str, **options: Any) -> Iterator[Store]:
    monkeypatch.setenv("LIVE_URL", url)
    cleanup = CleanupStack()
    try:
        yield provision(StoreConfig(name="live", kind=kind, provision="live", url_env="LIVE_URL", **options),
                        cleanup)
    finally:
        assert cleanup.run() == []


def _agree(store: Store, oracle: Callable[[], Any], changes: list[Change]) -> None:
    """For each change: the fingerprint and the oracle agree on whether the state moved."""
    for what, change, moves in changes:
        before_print, before_state = store.fingerprint(), oracle()
        assert compare(before_print, store.fingerprint()) == [] and oracle() == before_state, \
            f"unstable with nothing changed (before {what!r})"
        change()
        differences, state = compare(before_print, store.fingerprint()), oracle()
        assert (state != before_state) is moves, f"the oracle is wrong about {what!r}"
        assert bool(differences) is moves, f"the fingerprint disagrees with the oracle on {what!r}: {differences}"


def test_postgres_fingerprint_agrees_with_psql(monkeypatch: pytest.MonkeyPatch) -> None:
    with LivePostgres() as pg:
        pg.create_database("ledger")
        pg.seed_ledger("ledger", rows=400)

        def sql(text: str) -> Callable[[], None]:
            def run() -> None:
                pg.psql(f"SET ROLE {LivePostgres.OWNER}; {text}", "ledger")
            return run

        changes: list[Change] = [
            ("rows rewritten with the same values", sql("UPDATE entries SET note = note"), False),
            ("a changed value", sql("UPDATE entries SET amount = amount + 0.01 WHERE id = 17"), True),
            ("a deleted row", sql("DELETE FROM entries WHERE id = 18"), True),
            ("a NULL that was text", sql("UPDATE entries SET note = NULL WHERE id = 19"), True),
            ("a jsonb value", sql("""UPDATE entries SET tags = '{"n": 20, "even": false}' WHERE id = 20"""), True),
            ("a dropped constraint", sql("ALTER TABLE accounts DROP CONSTRAINT accounts_balance_check"), True),
            ("a changed constraint", sql("ALTER TABLE accounts ADD CONSTRAINT accounts_balance_check "
                                         "CHECK (balance >= -1)"), True),
            ("an added column", sql("ALTER TABLE accounts ADD COLUMN nickname text"), True),
            ("a retyped column", sql("ALTER TABLE entries ALTER COLUMN note TYPE varchar(400)"), True),
            ("a dropped index", sql("DROP INDEX entries_by_account"), True),
            ("an extra table", sql("CREATE TABLE audit (id int)"), True),
            ("a moved sequence", sql("SELECT setval('entries_id_seq', 9000)"), True),
        ]
        with _live_store(monkeypatch, "postgres", pg.url("ledger")) as store:
            _agree(store, lambda: oracles.pg_state(pg, "ledger"), changes)


def test_redis_fingerprint_agrees_with_redis_py(monkeypatch: pytest.MonkeyPatch) -> None:
    with LiveRedis() as server:
        main, other = server.client(0), server.client(1)
        main.set("s", "v")
        main.set("ttl", "x", ex=3600)
        main.rpush("l", "a", "b")
        main.hset("h", mapping={"f": "1", "g": "2"})
        main.zadd("z", {"m": 1.5})
        main.sadd("set", "x", "y")
        other.set("in-db1", "1")
        expiry = int(main.execute_command("PEXPIRETIME", "ttl"))

        def state() -> Any:
            return oracles.redis_state(server.client), oracles.debug_digest(main)

        changes: list[Change] = [
            ("a value set to itself", lambda: main.set("s", "v", keepttl=True), False),
            ("a hash written in another order", lambda: main.hset("h", mapping={"g": "2", "f": "1"}), False),
            ("a changed string", lambda: main.set("s", "w"), True),
            ("a moved expiry", lambda: main.pexpireat("ttl", expiry + 60_000), True),
            ("a lost expiry", lambda: main.persist("ttl"), True),
            ("a changed list element", lambda: main.lset("l", 0, "z"), True),
            ("a changed score", lambda: main.zadd("z", {"m": 2.5}), True),
            ("a value in db1", lambda: other.set("in-db1", "2"), True),
            ("a new key in db1", lambda: other.set("also-db1", "1"), True),
            ("a deleted key", lambda: main.delete("set"), True),
        ]
        with _live_store(monkeypatch, "redis", server.url(0), allow_writes=True) as store:
            _agree(store, state, changes)


def test_mongodb_fingerprint_agrees_with_raw_bson(monkeypatch: pytest.MonkeyPatch) -> None:
    with LiveMongo() as server:
        client: Any = server.client()
        notes = client["notifydb"]["notes"]
        notes.insert_many([{"_id": i, "v": i, "tags": ["a", str(i)], "nested": {"x": i, "y": [1, 2]}}
                           for i in range(50)])
        notes.create_index("v", unique=True)
        client["notifydb"]["users"].insert_many([{"_id": f"u{i}", "name": f"user {i}"} for i in range(10)])

        changes: list[Change] = [
            ("a document rewritten as it was", lambda: notes.replace_one({"_id": 4}, notes.find_one({"_id": 4})),
             False),
            ("3 turned into 3.0", lambda: notes.update_one({"_id": 3}, {"$set": {"v": 3.0}}), True),
            ("a changed nested value", lambda: notes.update_one({"_id": 5}, {"$set": {"nested.x": 55}}), True),
            ("an array reordered", lambda: notes.update_one({"_id": 6}, {"$set": {"tags": ["6", "a"]}}), True),
            ("a deleted document", lambda: notes.delete_one({"_id": 7}), True),
            ("a dropped index", lambda: notes.drop_index("v_1"), True),
            ("a new collection", lambda: client["notifydb"]["extra"].insert_one({"_id": 1}), True),
        ]
        with _live_store(monkeypatch, "mongodb", server.url("notifydb")) as store:
            _agree(store, lambda: oracles.mongo_state(client, "notifydb"), changes)


def test_gcs_fingerprint_agrees_with_the_storage_client(monkeypatch: pytest.MonkeyPatch) -> None:
    with LiveGcs() as server:
        client: Any = server.client(project="p")
        bucket = client.create_bucket("assets")
        for i in range(20):
            blob = bucket.blob(f"dir/{i:03d}.txt")
            blob.metadata = {"n": str(i)}
            blob.upload_from_string(f"object {i}".encode(), content_type="text/plain")

        def upload(name: str, data: bytes, content_type: str = "text/plain",
                   metadata: dict[str, str] | None = None) -> Callable[[], None]:
            def run() -> None:
                blob = bucket.blob(name)
                blob.metadata = metadata
                blob.upload_from_string(data, content_type=content_type)
            return run

        def patch_metadata() -> None:
            blob = bucket.get_blob("dir/002.txt")
            blob.metadata = {"n": "two"}
            blob.patch()

        changes: list[Change] = [
            ("an object uploaded again, the same", upload("dir/001.txt", b"object 1", metadata={"n": "1"}), False),
            ("changed content", upload("dir/003.txt", b"object 3!", metadata={"n": "3"}), True),
            ("changed metadata", patch_metadata, True),
            ("a changed content type", upload("dir/004.txt", b"object 4", "application/json", {"n": "4"}), True),
            ("a deleted object", lambda: bucket.blob("dir/005.txt").delete(), True),
            ("a new object", upload("new.txt", b"new"), True),
        ]
        with _live_store(monkeypatch, "gcs", f"{server.endpoint}?project=p", bucket="assets") as store:
            _agree(store, lambda: oracles.gcs_state(client, "assets"), changes)


def test_firestore_fingerprint_agrees_with_the_firestore_client(monkeypatch: pytest.MonkeyPatch) -> None:
    with LiveFirestore(project="prod-app") as server:
        client: Any = server.client()
        users = client.collection("users")
        for i in range(10):
            user = users.document(f"u{i}")
            user.set({"n": i, "name": f"user {i}", "at": dt.datetime(2026, 1, 1, i, tzinfo=dt.UTC),
                      "m": {"x": [i, "a"]}})
            user.collection("sessions").document("s1").set({"ok": True, "seen": i})

        changes: list[Change] = [
            ("a document set to the same fields", lambda: users.document("u1").set(
                {"n": 1, "name": "user 1", "at": dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC), "m": {"x": [1, "a"]}}),
             False),
            ("3 turned into 3.0", lambda: users.document("u3").update({"n": 3.0}), True),
            ("a timestamp turned into a string", lambda: users.document("u4").update({"at": "2026-01-01T04:00:00Z"}),
             True),
            ("a changed map element", lambda: users.document("u5").update({"m": {"x": [5, "b"]}}), True),
            ("a changed subcollection document",
             lambda: users.document("u6").collection("sessions").document("s1").update({"seen": 60}), True),
            ("a deleted document", lambda: users.document("u7").delete(), True),
        ]
        with _live_store(monkeypatch, "firestore", f"http://{server.host}/ignored", project="prod-app") as store:
            _agree(store, lambda: oracles.firestore_state(client), changes)

"""Redis stores against real redis-server processes: drills that pass, planted faults that fail by name.

Every drill runs `drill run` as a subprocess. Faults are planted through a step plugin the test
writes into the drill's project (faults.py, named by drill.toml's `[drill] plugins`), which runs
a Redis command on the restored store through RedisStore.execute_command.

Without redis-server these tests fail (./dev test installs it); they never skip.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from drill.config import StoreConfig
from drill.errors import BackupError, SafetyError, StoreError
from drill.fingerprint import Fingerprint, compare
from drill.provision.local_redis import (
    LocalRedisServer,
    redis_server_binary,
    redis_server_version,
    sweep_stale_servers,
)
from drill.provision.processes import OWNER_FILE, pid_alive, read_pid
from drill.stores.redis import MARKER_KEY, RedisServer, RedisStore
from tests import oracles
from tests.conftest import assert_rpo_between, location_port, plugin_env, plugin_project, port_open, run_drill
from tests.live_servers import LiveRedis


def _require_redis_server() -> None:
    if shutil.which("redis-server") is None and not os.environ.get("DRILL_REDIS_SERVER"):
        pytest.fail("redis-server is not installed (apt-get install -y redis-server; ./dev test does it)")


@pytest.fixture(autouse=True)
def _redis_server_installed() -> None:
    _require_redis_server()


FAULTS_PLUGIN = '''
from pytest_bdd import parsers, step

from drill.scenario import DrillScenario


@step(parsers.parse('the Redis command "{command}" is run on "{store}" in db {db:d}'))
def run_redis_command_in(drill: DrillScenario, command: str, store: str, db: int) -> None:
    drill.store(store).execute_command(*command.split(), db=db)


@step(parsers.re('the Redis command "(?P<command>[^"]*)" is run on "(?P<store>[^"]*)"$'))
def run_redis_command(drill: DrillScenario, command: str, store: str) -> None:
    drill.store(store).execute_command(*command.split())
'''

SCENARIO = '''
  Scenario: {name}
    Given the Redis store "cache"
    And "cache" is seeded with 600 keys
    And a backup of "cache" is taken
    When "cache" is lost
    And "cache" is restored from its latest backup
    And the Redis command "{command}" is run on "cache"
    Then "cache" matches its state at the backup
'''

# name -> (planted fault, what the failure message must say). Key i of the seed has type i % 6
# (string, hash, list, set, zset, stream); every key with i % 7 == 3 has a TTL.
FAULTS = {
    "faithful restore": ("PING", None),
    "a changed value": ("SET seed:string:00000006 Mallory",
                        "key-space db0: content differs with the same count (600 keys): at least one changed"),
    "a missing key": ("DEL seed:hash:00000007",
                      "key-space db0: 600 keys at the backup, 599 now (1 missing)"),
    "a lost TTL": ("PERSIST seed:string:00000024",
                   "key-space db0: keys with a TTL changed (was: 86; now: 85)"),
    "a changed list element": ("LSET seed:list:00000008 0 changed",
                               "key-space db0: content differs with the same count (600 keys)"),
    "a moved expiry": ("EXPIRE seed:set:00000003 99999",
                       "key-space db0: content differs with the same count (600 keys)"),
}


# A fault in a logical database other than db0: db1 holds two keys at the backup; one is changed after the restore.
DB1 = '''
  Scenario: a fault in db1
    Given the Redis store "cache"
    And "cache" is seeded with 600 keys
    And the Redis command "SET tenant:7 blue" is run on "cache" in db 1
    And the Redis command "SET tenant:8 green" is run on "cache" in db 1
    And a backup of "cache" is taken
    When "cache" is lost
    And "cache" is restored from its latest backup
    And the Redis command "SET tenant:7 red" is run on "cache" in db 1
    Then "cache" matches its state at the backup
'''


def _project(root: Path, feature: str) -> Path:
    return plugin_project(root, feature, FAULTS_PLUGIN, name="redis.feature")


def _port_closed(location: str) -> bool:
    return not port_open(location_port(location))


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    _require_redis_server()
    root = _project(tmp_path_factory.mktemp("redis-faults"), "Feature: planted Redis faults\n" + "".join(
        SCENARIO.format(name=name, command=command) for name, (command, _) in FAULTS.items()) + DB1)
    return run_drill(root, "run", env=plugin_env(root))


def test_drill_check_accepts_the_plugin_step(tmp_path: Path) -> None:
    root = _project(tmp_path, "Feature: f\n" + SCENARIO.format(name="x", command="PING"))
    run = run_drill(root, "check", env=plugin_env(root))
    assert run.code == 0, run.output


def test_faithful_restore_passes(fault_run: Any) -> None:
    scenario = fault_run.scenario("faithful restore")
    assert scenario["status"] == "passed", fault_run.output
    prints = scenario["evidence"]["fingerprints"]["cache"]
    assert prints["differences"] == []
    assert prints["before"]["parts"] == prints["after"]["parts"]
    assert prints["before"]["total"] == 600
    assert prints["before"]["parts"]["db0"]["schema"]["types"] == \
        "hash:100 list:100 set:100 stream:100 string:100 zset:100"
    [backup] = scenario["evidence"]["backups"]
    assert backup["format"] == "redis-rdb" and len(backup["sha256"]) == 64


@pytest.mark.parametrize("name", [n for n, (_, msg) in FAULTS.items() if msg])
def test_planted_fault_fails_with_a_message_naming_it(fault_run: Any, name: str) -> None:
    expected = FAULTS[name][1]
    assert expected is not None
    scenario = fault_run.failed_verification(name, "cache", expected)
    differences = scenario["evidence"]["fingerprints"]["cache"]["differences"]
    assert any(expected in d["message"] for d in differences)


def test_a_fault_in_db1_fails_naming_db1_only(fault_run: Any) -> None:
    expected = "key-space db1: content differs with the same count (2 keys): at least one changed"
    scenario = fault_run.failed_verification("a fault in db1", "cache", expected)
    prints = scenario["evidence"]["fingerprints"]["cache"]
    assert [d["message"] for d in prints["differences"]] == [expected]
    assert set(prints["before"]["parts"]) == {"db0", "db1"}
    assert prints["before"]["parts"]["db0"] == prints["after"]["parts"]["db0"]


def test_every_throwaway_server_is_gone_after_the_run(fault_run: Any) -> None:
    assert fault_run.code == 1
    for scenario in fault_run.results["scenarios"]:
        assert _port_closed(scenario["evidence"]["stores"]["cache"]["location"])


BUNDLED_LIKE = '''Feature: Redis drills
  @tier:important
  Scenario: in place, with markers
    Given the Redis store "cache"
    And "cache" is seeded with 1200 keys
    And writes to "cache" are recorded every 0.2 seconds
    And a backup of "cache" is taken
    And 1 second passes
    When "cache" is lost
    And "cache" is restored from its latest backup
    Then "cache" matches its state at the backup
    And "cache" holds 1200 keys
    And "cache" holds 1200 keys in "db0"
    And the recovery time is within 2 hours
    And the data loss is at most 1 hour

  @tier:important
  Scenario: into a second server
    Given the Redis store "cache"
    And "cache" is seeded with 300 keys
    And a backup of "cache" is taken
    When "cache" is restored from its latest backup into "cache_copy"
    Then "cache_copy" matches the state of "cache" at the backup
    And "cache_copy" holds 300 keys
    And "cache" holds 300 keys
'''


def test_a_redis_drill_passes_with_rto_and_rpo_measured(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "redis.feature").write_text(BUNDLED_LIKE, encoding="utf-8")
    run = run_drill(tmp_path, "run")
    assert run.code == 0, run.output
    in_place = run.scenario("in place, with markers")
    assert in_place["status"] == "passed"
    assert in_place["rto_seconds"] is not None and in_place["rto_seconds"] > 0
    markers = in_place["evidence"]["markers"]["cache"]
    assert markers["method"] == "markers", markers
    # The backup holds the markers written before it, not the ones written during the second after it.
    assert markers["lost"] >= 3, markers
    assert_rpo_between(run, in_place, 1.0, 0.2, backup_in_gap="cache")  # writes every 0.2 s, 1 s passes
    copy = run.scenario("into a second server")
    assert copy["status"] == "passed"
    assert copy["evidence"]["fingerprints"]["cache_copy"]["differences"] == []
    for scenario in run.results["scenarios"]:  # type: ignore[index]
        assert _port_closed(scenario["evidence"]["stores"]["cache"]["location"])


def test_the_bundled_redis_feature_passes(tmp_path: Path) -> None:
    feature = Path(__file__).resolve().parent.parent / "features" / "redis_restore.feature"
    run = run_drill(tmp_path, "run", str(feature))
    assert run.code == 0, run.output


LIVE = '''Feature: live Redis
  @tier:important
  Scenario: a live server restored in place by replaying the backup
    Given the Redis store "cache"
    And "cache" is seeded with 700 keys
    And writes to "cache" are recorded every 0.2 seconds
    And a backup of "cache" is taken
    When "cache" is lost
    And "cache" is restored from its latest backup
    Then "cache" matches its state at the backup
    And "cache" holds 700 keys in "db0"
    And "cache" holds 701 keys
    And the data loss is at most 1 hour
'''


def test_a_live_store_is_restored_by_dump_restore_replay_with_ttls(tmp_path: Path) -> None:
    with LiveRedis() as live:  # started by the test, outside drill, with a password
        client: Any = live.client(2)
        client.set("elsewhere", "ünïcode", px=50_000_000)  # another logical db, with a TTL
        expires = int(client.execute_command("PEXPIRETIME", "elsewhere"))
        (tmp_path / "features").mkdir()
        (tmp_path / "features" / "live.feature").write_text(LIVE, encoding="utf-8")
        (tmp_path / "drill.toml").write_text(
            '[stores.cache]\nkind = "redis"\nprovision = "live"\nurl_env = "CACHE_URL"\ndestructive = true\n',
            encoding="utf-8")
        run = run_drill(tmp_path, "run", env={"CACHE_URL": live.url(0)})
        assert run.code == 0, run.output
        scenario = run.scenario("a live server restored in place by replaying the backup")
        assert scenario["evidence"]["markers"]["cache"]["method"] == "markers"
        # The oracle: the live server now holds exactly what the backup file holds, key by key, with the same
        # absolute expiry times, read with redis-py from a server the test starts on that file.
        [backup] = scenario["evidence"]["backups"]
        restored = oracles.redis_state(live.client)
        with LiveRedis(rdb=Path(backup["path"])) as from_backup:
            assert restored == oracles.redis_state(from_backup.client)
        assert set(restored) == {0, 2} and len(restored[0]) == 701  # 700 seeded keys and drill's marker key
        assert restored[2] == {b"elsewhere": ("string", "ünïcode".encode(), expires)}
        assert sum(1 for _, _, expiry in restored[0].values() if expiry > 0) == 100  # the seed's TTLs (i % 7 == 3)


# -- the store in-process, on a real server --------------------------------------------------------------


@pytest.fixture
def store() -> Iterator[RedisStore]:
    binary = redis_server_binary()
    local = LocalRedisServer(binary, version=redis_server_version(binary))
    local.start()
    try:
        server = RedisServer(host="127.0.0.1", port=local.port, local=local, description="test")
        yield RedisStore(name="cache", config=StoreConfig(name="cache", kind="redis"), server=server,
                         closers=[local.stop])
    finally:
        local.stop()


def test_logical_databases_are_parts_and_markers_are_left_out(store: RedisStore) -> None:
    store.seed(60)
    store.execute_command("SET", "other", "välue", db=1)
    store.execute_command("ZADD", MARKER_KEY, 1, "1:1.0")
    before = store.fingerprint()
    assert set(before.parts) == {"db0", "db1"}
    assert (before.parts["db0"].count, before.parts["db1"].count) == (60, 1)
    assert store.count() == 61 and store.count("db0") == 60 and store.count("db1") == 1
    with pytest.raises(StoreError, match="no key-space 'users'"):
        store.count("users")
    store.execute_command("ZADD", MARKER_KEY, 2, "2:2.0")  # marker writes do not change the fingerprint
    assert store.fingerprint().parts == before.parts
    marker = store.markers().newest()
    assert marker is not None and (marker.seq, marker.written_at) == (2, 2.0)


def test_backup_restore_in_place_and_into_a_copy(store: RedisStore, tmp_path: Path) -> None:
    store.seed(120)
    artifact = store.backup(tmp_path / "backups")
    assert artifact.fingerprint is not None and artifact.fingerprint.total == 120
    assert not list((tmp_path / "backups").glob("*.partial"))
    store.lose()
    assert store.count() == 0
    assert store.restore(artifact) is store
    assert store.fingerprint().parts == artifact.fingerprint.parts
    copy = store.restore(artifact, into="copy")
    try:
        assert isinstance(copy, RedisStore) and copy.server.port != store.server.port
        assert copy.fingerprint().parts == artifact.fingerprint.parts
    finally:
        copy.close()
    assert copy.server.local is not None and copy.server.local.root is None  # its server is gone


def test_a_corrupt_or_foreign_backup_is_refused_before_anything_is_touched(store: RedisStore, tmp_path: Path) -> None:
    store.seed(30)
    artifact = store.backup(tmp_path)
    with artifact.path.open("r+b") as handle:
        handle.seek(20)
        handle.write(b"\x00corrupt")
    with pytest.raises(BackupError, match="is corrupt: sha256"):
        store.restore(artifact)
    assert store.count() == 30
    foreign = tmp_path / "not.rdb"
    foreign.write_bytes(b"PGDMP...")
    with pytest.raises(BackupError, match="not a Redis RDB file"):
        store.verify_backup(replace(artifact, path=foreign, sha256=None))


def test_a_live_store_is_not_lost_without_permission(store: RedisStore) -> None:
    live = replace(store, config=StoreConfig(name="cache", kind="redis", provision="live", url_env="X"),
                   closers=[])
    with pytest.raises(SafetyError, match="refusing to lose live store"):
        live.require_destructive("lose")
    with pytest.raises(SafetyError, match="does not allow writes"):
        live.seed(10)


@pytest.fixture
def aof_store() -> Iterator[RedisStore]:
    binary = redis_server_binary()
    local = LocalRedisServer(binary, version=redis_server_version(binary), appendonly=True)
    local.start()
    try:
        server = RedisServer(host="127.0.0.1", port=local.port, local=local, description="test")
        yield RedisStore(name="cache", config=StoreConfig(name="cache", kind="redis", appendonly=True),
                         server=server, closers=[local.stop])
    finally:
        local.stop()


def _aof_enabled(store: RedisStore) -> int:
    info: Any = store._call(lambda c: c.info("persistence"))
    return int(info["aof_enabled"])


def test_an_aof_store_is_backed_up_with_its_aof_folder_and_restored_from_it(aof_store: RedisStore,
                                                                              tmp_path: Path) -> None:
    aof_store.seed(150)
    artifact = aof_store.backup(tmp_path)
    assert artifact.format == "redis-rdb+aof" and artifact.path.name.endswith(".rdb-aof.tar")
    with tarfile.open(artifact.path) as tar:
        names = set(tar.getnames())
    assert "dump.rdb" in names and "appendonlydir/appendonly.aof.manifest" in names
    assert any(n.endswith(".base.rdb") for n in names) and any(n.endswith(".incr.aof") for n in names)
    assert artifact.fingerprint is not None
    aof_store.lose()
    aof_store.restore(artifact)
    assert _aof_enabled(aof_store) == 1  # the restored server runs on the AOF it was given
    assert aof_store.fingerprint().parts == artifact.fingerprint.parts
    copy = aof_store.restore(artifact, into="copy")
    try:
        assert isinstance(copy, RedisStore) and _aof_enabled(copy) == 1
        assert copy.fingerprint().parts == artifact.fingerprint.parts
    finally:
        copy.close()


def test_an_aof_backup_missing_a_file_or_truncated_is_refused_before_the_store_is_touched(
        aof_store: RedisStore, tmp_path: Path) -> None:
    aof_store.seed(40)
    artifact = aof_store.backup(tmp_path)
    with tarfile.open(artifact.path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    gutted = tmp_path / "gutted.rdb-aof.tar"
    with tarfile.open(gutted, "w") as tar:
        for member, data in members:
            if not member.name.endswith(".incr.aof"):
                tar.addfile(member, io.BytesIO(data))
    with pytest.raises(BackupError, match=r"lacks AOF files its manifest names: appendonly\.aof\.1\.incr\.aof"):
        aof_store.restore(replace(artifact, path=gutted, sha256=None))
    truncated = tmp_path / "truncated.rdb-aof.tar"
    truncated.write_bytes(artifact.path.read_bytes()[: artifact.size // 2])
    with pytest.raises(BackupError, match="not a readable Redis RDB\\+AOF archive"):
        aof_store.restore(replace(artifact, path=truncated, sha256=None))
    with pytest.raises(BackupError, match="is corrupt: sha256"):
        aof_store.restore(replace(artifact, path=truncated))
    assert aof_store.count() == 40 and _aof_enabled(aof_store) == 1


def test_a_drill_on_an_aof_store_passes(tmp_path: Path) -> None:
    root = _project(tmp_path, "Feature: AOF\n" + SCENARIO.format(name="aof restore", command="PING"))
    (root / "drill.toml").write_text('[drill]\nplugins = ["faults"]\n\n[stores.cache]\nkind = "redis"\n'
                                     'appendonly = true\n', encoding="utf-8")
    run = run_drill(root, "run", env=plugin_env(root))
    assert run.code == 0, run.output
    [backup] = run.scenario("aof restore")["evidence"]["backups"]
    assert backup["format"] == "redis-rdb+aof"


def test_fingerprints_are_made_in_the_server_and_fall_back_to_the_client_when_scripting_is_refused(
        store: RedisStore) -> None:
    store.seed(90)
    scripted = store.fingerprint().parts["db0"]
    assert scripted.schema["content hash"] == "server script (sha1)"
    store.execute_command("ACL", "SETUSER", "noscripts", "on", ">secret-pw", "~*", "&*", "+@all", "-@scripting")
    limited = replace(store, server=replace(store.server, username="noscripts", password="secret-pw"), closers=[])
    fetched = limited.fingerprint().parts["db0"]
    assert fetched.schema["content hash"] == "client (blake2b)"
    assert fetched.count == scripted.count == 90 and fetched.schema["types"] == scripted.schema["types"]
    differences = compare(Fingerprint("redis", "key-space", "keys", {"db0": scripted}),
                          Fingerprint("redis", "key-space", "keys", {"db0": fetched}))
    assert any("content hash" in d.message for d in differences), differences  # never silently equal
    store.execute_command("HSET", "seed:hash:00000001", "name", "changed")
    assert limited.fingerprint().parts["db0"].content != fetched.content
    assert store.fingerprint().parts["db0"].content != scripted.content


def test_a_server_left_by_a_killed_drill_is_stopped_and_removed_by_the_next_one() -> None:
    binary = redis_server_binary()
    leftover = LocalRedisServer(binary, version=redis_server_version(binary))
    leftover.start()
    assert leftover.root is not None
    root, pid = leftover.root, read_pid(leftover.pid_file)
    assert pid is not None and pid_alive(pid)
    dead = subprocess.Popen(["true"])  # a drill process that no longer exists
    dead.wait()
    (root / OWNER_FILE).write_text(str(dead.pid))
    try:
        assert root in sweep_stale_servers()
        assert not pid_alive(pid), "the leftover redis-server still runs"
        assert not root.exists()
    finally:
        leftover.stop()


def _oracle_key_digest(client: Any, key: bytes) -> int:
    """The script's canonical form rebuilt from redis-py's own reads (not drill's code): key, type, absolute
    expiry, then the value's pieces, each as b"<length>:<piece>"; the first 64 bits of its SHA-1."""
    import hashlib

    kind = client.type(key).decode()
    pieces = [key, kind.encode(), str(client.execute_command("PEXPIRETIME", key)).encode()]
    if kind == "string":
        pieces.append(client.get(key))
    elif kind == "hash":
        for field, value in sorted(client.hgetall(key).items()):
            pieces += [field, value]
    elif kind == "list":
        pieces += client.lrange(key, 0, -1)
    elif kind == "set":
        pieces += sorted(client.smembers(key))
    elif kind == "zset":
        pieces += client.execute_command("ZRANGE", key, 0, -1, "WITHSCORES")  # member, score as the server says
    elif kind == "stream":
        for entry_id, fields in client.xrange(key):
            pieces.append(entry_id)
            for field, value in fields.items():
                pieces += [field, value]
    form = b"".join(str(len(piece)).encode() + b":" + piece for piece in pieces)
    return int(hashlib.sha1(form).hexdigest()[:16], 16)


def test_the_server_side_fingerprint_is_the_sum_of_each_keys_sha1_computed_independently(store: RedisStore) -> None:
    import hashlib

    import redis

    store.seed(600)  # every type, some with a TTL
    # RESP2, as the script's redis.call sees replies; ZRANGE's raw reply: scores as the server formats them.
    client = redis.Redis(host="127.0.0.1", port=store.server.port, protocol=2)
    client.set_response_callback("ZRANGE", lambda reply, **_options: reply)
    try:
        # Beyond the seed: pieces longer than 255 bytes, empty ones, bytes that are not UTF-8, a far expiry.
        client.set("long:" + "k" * 300, "v" * 70_000)
        client.set("empty", "")
        client.hset("wide", mapping={"f" * 400: "x" * 256, "": "empty field", "\xe9t\xe9": b"\xff\x00\xfe"})
        client.rpush("bytes", b"\xff\xfe", b"", b"z" * 1000)
        client.zadd("scores", {"a": 1.5, "b": -3.0, "c": 1e20})
        client.pexpireat("long:" + "k" * 300, 4_102_444_800_123)
        keys = list(client.scan_iter(count=1000))
        total = sum(_oracle_key_digest(client, key) for key in keys) % 2**64
    finally:
        client.close()
    part = store.fingerprint().parts["db0"]
    assert part.schema["content hash"] == "server script (sha1)"
    assert part.count == len(keys) == 605
    assert part.content == hashlib.sha256(f"{len(keys)}:{total}".encode()).hexdigest()[:32]

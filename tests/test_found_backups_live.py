"""A backup made outside drill, restored in place into a live store, goes through the live stores' safety net.

Issue 12's rules bind found backups too: without `destructive = true` an in-place restore of a live
store is refused before anything is touched; with it, the safety net keeps a reference first, and at
the end the store must equal what it began as or the backup restored into it on purpose. A found
backup has no fingerprint of its own (drill did not make it), so the net takes the store's right after
the restore as that backup's: the store is left as restored, not put back. Each live store here is
one the test made itself (a Redis server started outside drill, a folder), judged by redis-cli and by
reading the folder, never through drill.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_drill
from tests.live_servers import LiveRedis
from tests.runbook_fixtures import redis_cli, redis_rdb, stamp, tar_gz

LIVE_REDIS = '[stores.cache]\nkind = "redis"\nprovision = "live"\nurl_env = "CACHE_URL"\n'
LIVE_FILES = '[stores.ssl]\nkind = "files"\nprovision = "live"\npath = "{path}"\n'


def write(project: Path, feature: str, toml: str) -> None:
    (project / "features").mkdir(exist_ok=True)
    (project / "features" / "live.feature").write_text(feature)
    (project / "drill.toml").write_text(toml)


def only_scenario(results: dict[str, object] | None) -> dict[str, object]:
    assert results is not None
    scenarios = results["scenarios"]
    assert isinstance(scenarios, list) and len(scenarios) == 1
    scenario: dict[str, object] = scenarios[0]
    return scenario


def live_check(results: dict[str, object] | None, store: str) -> dict[str, object]:
    checks = only_scenario(results)["live_stores"]
    assert isinstance(checks, list)
    [check] = [c for c in checks if c["store"] == store]
    return dict(check)


@pytest.fixture(scope="module")
def rdb_of_300_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rdb")
    with LiveRedis() as made_by:
        for i in range(300):
            redis_cli(made_by, "SET", f"k{i}", f"value {i}")
        return redis_rdb(made_by, folder / "dump.rdb")


REDIS_FEATURE = '''Feature: f
  Scenario: production's RDB restored into the live server in place
    Given the Redis store "cache"
    And the latest backup of "cache" in "backups/redis/dump_*.rdb"
    When "cache" is restored from its latest backup
    Then "cache" holds 300 keys
'''


def test_a_found_rdb_restored_in_place_into_a_live_redis_stays_as_restored(drill_dir: Path,
                                                                          rdb_of_300_keys: Path) -> None:
    rdb = drill_dir / "backups" / "redis" / f"dump_{stamp()}.rdb"
    rdb.parent.mkdir(parents=True)
    shutil.copy(rdb_of_300_keys, rdb)
    write(drill_dir, REDIS_FEATURE, LIVE_REDIS + "destructive = true\n")
    with LiveRedis() as live:
        redis_cli(live, "SET", "production:only", "before the drill")
        run = run_drill(drill_dir, "run", env={"CACHE_URL": live.url()})
        keys, value, gone = (redis_cli(live, "DBSIZE"), redis_cli(live, "GET", "k7"),
                             redis_cli(live, "EXISTS", "production:only"))
    assert run.code == 0, run.output
    assert (keys, value, gone) == ("300", "value 7", "0")  # the backup's data, by redis-cli
    check = live_check(run.results, "cache")
    assert check["outcome"] == "matches the backup restored into it", check
    assert check["verified"] is True and check["ok"] is True, check
    assert "safety copy" in str(check["reference"]), check  # the net held a copy of what the server held first


def test_a_found_rdb_is_not_restored_into_a_live_redis_without_destructive(drill_dir: Path,
                                                                          rdb_of_300_keys: Path) -> None:
    rdb = drill_dir / "backups" / "redis" / f"dump_{stamp()}.rdb"
    rdb.parent.mkdir(parents=True)
    shutil.copy(rdb_of_300_keys, rdb)
    write(drill_dir, REDIS_FEATURE, LIVE_REDIS + "allow_writes = true\n")
    with LiveRedis() as live:
        redis_cli(live, "SET", "production:only", "before the drill")
        before = redis_cli(live, "DEBUG", "DIGEST")
        run = run_drill(drill_dir, "run", env={"CACHE_URL": live.url()})
        assert redis_cli(live, "DEBUG", "DIGEST") == before and redis_cli(live, "DBSIZE") == "1"
    assert run.code == 1, run.output
    assert "destructive = true" in run.output and "into" in run.output, run.output


def test_a_found_archive_restored_in_place_into_a_live_folder_stays_as_restored(drill_dir: Path,
                                                                               tmp_path: Path) -> None:
    made = tmp_path / "made"
    (made / "conf.d").mkdir(parents=True)
    (made / "cert.pem").write_text("from the backup\n")
    (made / "conf.d" / "site.conf").write_text("server {}\n")
    tar_gz(made, drill_dir / "backups" / f"ssl-certificates_{stamp()}.tar.gz")
    live = tmp_path / "etc-ssl"
    live.mkdir()
    (live / "cert.pem").write_text("the live one\n")
    (live / "stale.pem").write_text("not in the backup\n")
    write(drill_dir, '''Feature: f
  Scenario: the archive restored over the live folder
    Given the files store "ssl"
    And the latest backup of "ssl" in "backups/ssl-certificates_*.tar.gz"
    When "ssl" is restored from its latest backup
    Then "ssl" holds the file "conf.d/site.conf"
''', LIVE_FILES.format(path=live) + "destructive = true\n")
    run = run_drill(drill_dir, "run")
    assert run.code == 0, run.output
    listed = sorted(p.relative_to(live).as_posix() for p in live.rglob("*"))
    assert listed == ["cert.pem", "conf.d", "conf.d/site.conf"], listed
    assert (live / "cert.pem").read_text() == "from the backup\n"
    check = live_check(run.results, "ssl")
    assert check["outcome"] == "matches the backup restored into it", check


def test_a_live_redis_changed_after_a_found_restore_is_still_put_back(drill_dir: Path, rdb_of_300_keys: Path) -> None:
    """The fingerprint taken after the restore is of that moment: a store lost after it ends neither as it began
    nor as restored, so the net puts back what the server held before the drill and fails the scenario."""
    rdb = drill_dir / "backups" / "redis" / f"dump_{stamp()}.rdb"
    rdb.parent.mkdir(parents=True)
    shutil.copy(rdb_of_300_keys, rdb)
    write(drill_dir, REDIS_FEATURE.replace('    Then "cache" holds 300 keys\n',
                                           '    Then "cache" holds 300 keys\n    When "cache" is lost\n'),
          LIVE_REDIS + "destructive = true\n")
    with LiveRedis() as live:
        redis_cli(live, "SET", "production:only", "before the drill")
        before = redis_cli(live, "DEBUG", "DIGEST")
        run = run_drill(drill_dir, "run", env={"CACHE_URL": live.url()})
        assert redis_cli(live, "DEBUG", "DIGEST") == before and redis_cli(live, "DBSIZE") == "1"
    assert run.code == 1, run.output
    check = live_check(run.results, "cache")
    assert check["outcome"] == "put back" and check["verified"] is True, check


def _hostile_archive(path: Path, kind: str) -> str:
    """A certificate archive with one member that would leave the folder it is extracted into; that member."""
    import io
    import tarfile

    def member(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, io.BytesIO]:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        return info, io.BytesIO(data)

    with tarfile.open(path, "w:gz") as archive:
        archive.addfile(*member("./cert.pem", b"-----BEGIN CERTIFICATE-----\n"))
        bad = tarfile.TarInfo({"dotdot": "./../escape.pem", "absolute": "/tmp/escape.pem", "symlink": "./key.pem",
                               "hardlink": "./key.pem", "fifo": "./key.pem"}[kind])
        if kind == "symlink":
            bad.type, bad.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        elif kind == "hardlink":
            bad.type, bad.linkname = tarfile.LNKTYPE, "/etc/passwd"
        elif kind == "fifo":
            bad.type = tarfile.FIFOTYPE
        if kind in ("dotdot", "absolute"):
            archive.addfile(*member(bad.name, b"planted"))
        else:
            archive.addfile(bad)
    return bad.name


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "fifo"])
def test_a_found_archive_with_a_member_leaving_its_folder_is_refused_before_the_live_folder_is_touched(
        drill_dir: Path, tmp_path: Path, kind: str) -> None:
    archive = drill_dir / "backups" / f"ssl-certificates_{stamp()}.tar.gz"
    archive.parent.mkdir(parents=True)
    bad = _hostile_archive(archive, kind)
    live = tmp_path / "etc-ssl"
    live.mkdir()
    (live / "cert.pem").write_text("the live one\n")
    write(drill_dir, '''Feature: f
  Scenario: a hostile archive
    Given the files store "ssl"
    And the latest backup of "ssl" in "backups/ssl-certificates_*.tar.gz"
    When "ssl" is restored from its latest backup
''', LIVE_FILES.format(path=live) + "destructive = true\n")
    run = run_drill(drill_dir, "run")
    assert run.code == 1, run.output
    [error] = only_scenario(run.results)["errors"]  # type: ignore[misc]
    message = error["message"]
    assert message.startswith(f"{archive} holds ") and bad in message and "\n" not in message.strip(), message
    assert sorted(p.name for p in live.iterdir()) == ["cert.pem"] and (live / "cert.pem").read_text() == (
        "the live one\n")  # the live folder as it was
    assert not (drill_dir / "backups" / "escape.pem").exists() and not Path("/tmp/escape.pem").exists()

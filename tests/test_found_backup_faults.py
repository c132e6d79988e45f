"""Backups made outside drill that are not whole, or not what the glob promised, fail in one line naming the file.

Each fault is planted into a backup the native tools made (tests/runbook_fixtures.py): a truncated
.tar.gz, an .rdb with one flipped byte, a Firestore export folder missing an output file, a file of
another kind behind a glob, an expired certificate. The drill must fail at the right step with a
message of one line that names the file; `drill backups verify` over a `[stores.NAME] backups` glob
must flag the same files (exit 1) and pass the whole ones; a live store behind a corrupt backup must
hold exactly what it held before (checked with redis-cli, not through drill).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import google.cloud.firestore  # noqa: F401  (imported before pytester's module snapshot: see test_nightly.py)
import pytest

from tests.conftest import DrillRun, run_drill
from tests.live_servers import LiveFirestore, LivePostgres, LiveRedis
from tests.runbook_fixtures import (
    certificate,
    expired_certificate,
    firestore_export,
    pg_dump_gz,
    redis_cli,
    redis_rdb,
    stamp,
    tar_gz,
)


def write(project: Path, feature: str, toml: str = "") -> None:
    (project / "features").mkdir(exist_ok=True)
    (project / "features" / "faults.feature").write_text(feature)
    if toml:
        (project / "drill.toml").write_text(toml)


def failed_at(run: DrillRun, step: str, *expected: str) -> str:
    """The run failed, at `step`, with a one-line message holding every `expected` text; the message."""
    assert run.code == 1, run.output
    assert run.results is not None
    [scenario] = run.results["scenarios"]
    failing = [s["text"] for s in scenario["steps"] if s["status"] == "failed"]
    assert failing == [step], (failing, run.output)
    [error] = scenario["errors"]
    message: str = error["message"]
    assert "\n" not in message.strip(), f"not one line: {message!r}"
    for text in expected:
        assert text in message, (text, message)
    return message


def flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def rdb_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rdb")
    with LiveRedis() as live:
        for i in range(300):
            redis_cli(live, "SET", f"k{i}", f"value {i}" * 5)
        return redis_rdb(live, folder / "dump.rdb")


def test_a_truncated_tar_gz_fails_naming_the_file(drill_dir: Path, tmp_path: Path) -> None:
    certificate(tmp_path / "ssl", days=90)
    archive = tar_gz(tmp_path / "ssl", drill_dir / "backups" / f"ssl-certificates_{stamp()}.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])
    write(drill_dir, '''Feature: f
  Scenario: a truncated archive
    Given the files store "ssl"
    And the latest backup of "ssl" in "backups/ssl-certificates_*.tar.gz"
    When "ssl" is restored from its latest backup
    Then "ssl" holds the file "cert.pem"
''')
    message = failed_at(run_drill(drill_dir, "run"), '"ssl" is restored from its latest backup', str(archive),
                        "truncated")
    assert message.startswith(f"{archive} is not a readable tar.gz"), message


def test_an_rdb_with_a_flipped_byte_fails_before_the_live_server_is_touched(drill_dir: Path,
                                                                           rdb_fixture: Path) -> None:
    rdb = drill_dir / "backups" / "redis" / f"dump_{stamp()}.rdb"
    rdb.parent.mkdir(parents=True)
    shutil.copy(rdb_fixture, rdb)
    flip_byte(rdb, rdb.stat().st_size // 2)
    write(drill_dir, '''Feature: f
  Scenario: a flipped byte
    Given the Redis store "cache"
    And the latest backup of "cache" in "backups/redis/dump_*.rdb"
    When "cache" is restored from its latest backup
    Then "cache" holds 300 keys
''', toml='[stores.cache]\nkind = "redis"\nprovision = "live"\nurl_env = "CACHE_URL"\ndestructive = true\n')
    with LiveRedis() as live:
        for i in range(5):
            redis_cli(live, "SET", f"production:{i}", "keep me")
        before = redis_cli(live, "DEBUG", "DIGEST")
        run = run_drill(drill_dir, "run", env={"CACHE_URL": live.url()})
        assert redis_cli(live, "DEBUG", "DIGEST") == before and redis_cli(live, "DBSIZE") == "5"
    message = failed_at(run, '"cache" is restored from its latest backup', str(rdb), "CRC64")
    assert message.startswith(f"{rdb} is corrupt"), message


def test_a_firestore_export_missing_an_output_file_fails_naming_it(drill_dir: Path) -> None:
    with LiveFirestore(project="eyewearml-project") as live:
        client: Any = live.client()
        for i in range(5):
            client.collection("users").document(f"u{i}").set({"n": i})
        export = firestore_export(live, drill_dir / "backups" / "firestore" /
                                  time.strftime("%Y-%m-%dT%H:%M:%S_1", time.gmtime()))
    [output] = sorted(export.rglob("output-*"))
    output.unlink()
    write(drill_dir, '''Feature: f
  Scenario: a missing output file
    Given the Firestore store "eyewearml"
    And the latest backup of "eyewearml" in "backups/firestore/*/"
    When "eyewearml" is restored from its latest backup
    Then "eyewearml" holds 5 documents
''')
    message = failed_at(run_drill(drill_dir, "run", timeout=600), '"eyewearml" is restored from its latest backup',
                        str(output))
    assert message == f"{output} is missing: the export's metadata names it", message


def test_a_file_of_another_kind_behind_a_glob_is_refused_when_it_is_found(drill_dir: Path) -> None:
    backups = drill_dir / "backups" / "redis"
    with LivePostgres() as pg:
        pg.create_database("userdb")
        pg.seed_ledger("userdb", rows=20)
        wrong = pg_dump_gz(pg, "userdb", backups / f"dump_{stamp()}.rdb")  # a cron job wrote the wrong file
    write(drill_dir, '''Feature: f
  Scenario: the wrong kind of file
    Given the Redis store "cache"
    And the latest backup of "cache" in "backups/redis/dump_*.rdb"
    When "cache" is restored from its latest backup
''')
    message = failed_at(run_drill(drill_dir, "run"), 'the latest backup of "cache" in "backups/redis/dump_*.rdb"',
                        str(wrong), "is not a Redis backup", "PostgreSQL backup", "pg_dump | gzip")
    assert message.startswith(f"{wrong} is not a Redis backup: it is a PostgreSQL backup"), message


def test_an_expired_certificate_fails_naming_its_not_after(drill_dir: Path, tmp_path: Path) -> None:
    expired_certificate(tmp_path / "ssl")
    tar_gz(tmp_path / "ssl", drill_dir / "backups" / "ssl-certificates_latest.tar.gz")
    write(drill_dir, '''Feature: f
  Scenario: an expired certificate
    Given the files store "ssl"
    And the latest backup of "ssl" in "backups/ssl-certificates_*.tar.gz"
    When "ssl" is restored from its latest backup
    Then "ssl" holds the file "cert.pem"
    And the certificate "cert.pem" in "ssl" is valid for at least 30 days
''')
    step = 'the certificate "cert.pem" in "ssl" is valid for at least 30 days'
    message = failed_at(run_drill(drill_dir, "run"), step, "cert.pem", "CN=expired.example", "has expired: Not After ")
    assert time.strftime("%Y-", time.gmtime()) in message.split("Not After ", 1)[1]


def test_an_unreadable_certificate_fails_saying_its_not_after_cannot_be_read(drill_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "ssl").mkdir()
    (tmp_path / "ssl" / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                                               "-----END CERTIFICATE-----\n")
    tar_gz(tmp_path / "ssl", drill_dir / "backups" / "ssl-certificates_latest.tar.gz")
    write(drill_dir, '''Feature: f
  Scenario: an unreadable certificate
    Given the files store "ssl"
    And the latest backup of "ssl" in "backups/ssl-certificates_*.tar.gz"
    When "ssl" is restored from its latest backup
    Then the certificate "cert.pem" in "ssl" is valid for at least 30 days
''')
    failed_at(run_drill(drill_dir, "run"), 'the certificate "cert.pem" in "ssl" is valid for at least 30 days',
              "cert.pem", "is not a readable certificate", "its Not After cannot be read")


def test_a_certificate_ending_within_the_asked_time_fails(drill_dir: Path, tmp_path: Path) -> None:
    certificate(tmp_path / "ssl", days=10)
    tar_gz(tmp_path / "ssl", drill_dir / "backups" / "ssl-certificates_latest.tar.gz")
    write(drill_dir, '''Feature: f
  Scenario: a certificate that ends too soon
    Given the files store "ssl"
    And the latest backup of "ssl" in "backups/ssl-certificates_*.tar.gz"
    When "ssl" is restored from its latest backup
    Then the certificate "cert.pem" in "ssl" is valid for at least 30 days
''')
    failed_at(run_drill(drill_dir, "run"), 'the certificate "cert.pem" in "ssl" is valid for at least 30 days',
              "expires too soon: Not After ", "in 10.0 days", "at least 30.0 days is required")


def test_backups_verify_reads_each_found_backup_in_its_format(drill_dir: Path, tmp_path: Path,
                                                              rdb_fixture: Path) -> None:
    redis = drill_dir / "backups" / "redis"
    redis.mkdir(parents=True)
    good = redis / "dump_20261101_030000.rdb"
    bad = redis / "dump_20261102_030000.rdb"
    shutil.copy(rdb_fixture, good)
    shutil.copy(rdb_fixture, bad)
    flip_byte(bad, bad.stat().st_size // 2)
    certificate(tmp_path / "ssl", days=90)
    ssl = tar_gz(tmp_path / "ssl", drill_dir / "backups" / "ssl-certificates_20261102_030000.tar.gz")
    truncated = drill_dir / "backups" / "ssl-certificates_20261103_030000.tar.gz"
    truncated.write_bytes(ssl.read_bytes()[:-100])
    (drill_dir / "drill.toml").write_text(
        '[repository]\npath = "repo"\n\n[stores.cache]\nkind = "redis"\nbackups = "backups/redis/dump_*.rdb"\n\n'
        '[stores.ssl]\nkind = "files"\nbackups = "backups/ssl-certificates_*.tar.gz"\n')
    listed = run_drill(drill_dir, "backups", "list")
    assert listed.code == 0, listed.output
    for path in (good, bad, ssl, truncated):
        assert path.name in listed.stdout, listed.stdout
    assert "redis-rdb" in listed.stdout and "tar.gz" in listed.stdout
    verified = run_drill(drill_dir, "backups", "verify", "-v")
    assert verified.code == 1, verified.output
    failed = [line for line in verified.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2, verified.stdout
    assert f"FAILED  cache {bad.name}: {bad} is corrupt: its CRC64" in verified.stdout
    assert f"FAILED  ssl {truncated.name}: {truncated} is not a readable tar.gz" in verified.stdout
    assert f"ok      cache {good.name} (redis-rdb" in verified.stdout
    assert f"ok      ssl {ssl.name} (tar.gz" in verified.stdout
    assert "2 of 4 backup(s) failed verification" in verified.stderr
    only_good = run_drill(drill_dir, "backups", "verify", "cache", "--id", good.name)
    assert only_good.code == 0, only_good.output

"""`drill backup` / `drill restore` as cron and on-call use them, against a real PostgreSQL: encrypted
round trips; a wrong key, a truncated file and a flipped byte each rejected before the target is
touched; runbook-style backups found by glob (gzip'd SQL, custom format, tar); lock, exit codes, logs."""

from __future__ import annotations

import gzip
import os
import stat
import subprocess
from pathlib import Path

import pytest

from drill import age_files, crypto
from drill.lock import store_lock
from drill.provision import pg_binaries
from drill.repository import Repository
from tests.backup_support import PASSWORD, ProdDb, pg_cluster, prod_db, write_config
from tests.conftest import closed_port, run_drill, start_paused_drill
from tests.live_servers import secrets_in, secrets_in_files

__all__ = ["pg_cluster", "prod_db"]


def _env(prod: ProdDb) -> dict[str, str]:
    return {"USERDB_URL": prod.url}


def _pg_dump(prod: ProdDb, *args: str) -> bytes:
    tools = pg_binaries.for_local_cluster()
    done = subprocess.run([tools.path("pg_dump"), "-h", "127.0.0.1", "-p", str(prod.cluster.port), "-U", "postgres",
                           "-d", prod.database, *args], capture_output=True, check=True,
                          env={**os.environ, "PGPASSWORD": PASSWORD})
    return done.stdout


def test_an_encrypted_round_trip(drill_dir: Path, prod_db: ProdDb) -> None:
    write_config(drill_dir, key=True)
    key = crypto.new_key_file(drill_dir / "backup.key")
    before = prod_db.state()
    done = run_drill(drill_dir, "backup", "userdb", env=_env(prod_db))
    assert done.code == 0, done.output
    [entry] = Repository(drill_dir / "repo").entries()
    stored = entry.directory / entry.manifest.files[0].name
    assert stored.name.endswith(".dump.age") and age_files.is_age(stored)
    assert b"PGDMP" not in stored.read_bytes() and b"COPY" not in stored.read_bytes()
    assert entry.manifest.encryption == age_files.parameters(key)
    manifest_text = (entry.directory / "manifest.json").read_text()
    assert key.material.hex() not in manifest_text and key.id in manifest_text
    # drill decrypts into a private work folder under TMPDIR (its own, here): held mid-restore, the plaintext
    # dump is there in a 0700 folder; once drill ends, nothing of it is left.
    private_tmp = drill_dir / "tmp"
    private_tmp.mkdir()
    paused = start_paused_drill(drill_dir, "restore-started:userdb", "restore", "userdb", "--into", "userdb_plain",
                                env={**_env(prod_db), "TMPDIR": str(private_tmp)})
    [work] = list(private_tmp.glob("drill-restore-*"))
    assert stat.S_IMODE(work.stat().st_mode) == 0o700
    plaintext = [p for p in work.rglob("*") if p.is_file() and p.read_bytes()[:5] == b"PGDMP"]
    assert plaintext, list(work.rglob("*"))
    output = paused.finish()
    assert paused.proc.returncode == 0, output
    assert prod_db.state("userdb_plain") == before
    assert list(private_tmp.iterdir()) == []  # the plaintext and its folder are gone


def _damage(how: str, target: Path, drill_dir: Path) -> None:
    if how == "wrong key":
        (drill_dir / "backup.key").write_bytes(os.urandom(32))
    elif how == "truncated file":
        target.write_bytes(target.read_bytes()[:-40])
    else:
        blob = bytearray(target.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        target.write_bytes(bytes(blob))


@pytest.mark.parametrize("source", ["repository", "file"])
@pytest.mark.parametrize("how", ["wrong key", "truncated file", "flipped byte"])
def test_damage_is_rejected_before_the_target_is_touched(drill_dir: Path, prod_db: ProdDb, how: str,
                                                         source: str) -> None:
    write_config(drill_dir, key=True, destructive=True)  # destructive: a restore WOULD overwrite production
    crypto.new_key_file(drill_dir / "backup.key")
    assert run_drill(drill_dir, "backup", "userdb", env=_env(prod_db)).code == 0
    [entry] = Repository(drill_dir / "repo").entries()
    stored = entry.directory / entry.manifest.files[0].name
    args = ["restore", "userdb", "-v"]
    if source == "file":  # an encrypted file with no manifest: only the encryption can tell
        copied = drill_dir / "backups" / "userdb_20261120_030000.dump.enc"
        copied.parent.mkdir()
        copied.write_bytes(stored.read_bytes())
        stored = copied
        args += ["--from", "backups/userdb_*.dump.enc"]
    prod_db.execute("UPDATE users SET full_name = 'changed after the backup' WHERE id = 1")
    before, databases = prod_db.state(), prod_db.databases()
    _damage(how, stored, drill_dir)

    done = run_drill(drill_dir, *args, env=_env(prod_db))
    assert done.code == (2 if how == "wrong key" else 1), done.output  # a wrong key is a configuration error
    expected = {
        ("wrong key", "repository"): "wrong key", ("wrong key", "file"): "wrong key",
        ("truncated file", "repository"): "(truncated or appended to)",
        ("truncated file", "file"): "is corrupt or truncated: age decryption failed",
        ("flipped byte", "repository"): "is corrupt: sha256",
        ("flipped byte", "file"): "is corrupt or truncated: age decryption failed",
    }[(how, source)]
    assert expected in done.stderr
    assert "restoring" not in done.stdout  # the target was never reached
    assert prod_db.state() == before  # production unchanged, the new row still there
    assert prod_db.databases() == databases
    log = (drill_dir / "repo" / "drill-backup.log").read_text().splitlines()
    assert f" drill restore userdb {'refused' if how == 'wrong key' else 'failed'} " in log[-1]


def test_a_runbook_gzip_sql_backup_found_by_glob(drill_dir: Path, prod_db: ProdDb) -> None:
    write_config(drill_dir)
    folder = drill_dir / "backups" / "postgres"
    folder.mkdir(parents=True)
    older = _pg_dump(prod_db, "-Fp")
    prod_db.execute("DELETE FROM orders WHERE id > 10")
    newest = _pg_dump(prod_db, "-Fp")
    expected = prod_db.state()
    (folder / "userdb_20240114_143000.sql.gz").write_bytes(gzip.compress(older))
    (folder / "userdb_20240115_143000.sql.gz").write_bytes(gzip.compress(newest))
    (folder / "orderdb_20240116_143000.sql.gz").write_bytes(gzip.compress(older))
    # mtimes say the opposite of the names: the name's date wins
    os.utime(folder / "userdb_20240115_143000.sql.gz", (1_600_000_000, 1_600_000_000))

    done = run_drill(drill_dir, "restore", "userdb", "--from", "backups/postgres/userdb_*.sql.gz",
                     "--into", "userdb_restored", env=_env(prod_db))
    assert done.code == 0, done.output
    assert "from userdb_20240115_143000.sql.gz into 'userdb_restored'" in done.stdout
    assert "recovery point 2024-01-15T14:30:00" in done.stdout
    assert "(no fingerprint recorded with this backup to compare)" in done.stdout
    assert prod_db.state("userdb_restored") == expected

    # Dated by modification time when the name has no date.
    (folder / "nodate.sql.gz").write_bytes(gzip.compress(older))
    os.utime(folder / "nodate.sql.gz", (1_700_000_000, 1_700_000_000))
    dated = run_drill(drill_dir, "restore", "userdb", "--from", str(folder / "nodate.sql.gz"), "--test-mode",
                      env=_env(prod_db))
    assert dated.code == 0, dated.output
    assert "recovery point 2023-11-14T22:13:20" in dated.stdout

    missing = run_drill(drill_dir, "restore", "userdb", "--from", "backups/postgres/none_*.sql.gz", "--test-mode",
                        env=_env(prod_db))
    assert missing.code == 1 and "no backup file of 'userdb' matches 'backups/postgres/none_*.sql.gz'" in missing.stderr


@pytest.mark.parametrize("fmt", ["-Fc", "-Ft"])
def test_custom_format_and_tar_backups_from_outside_drill(drill_dir: Path, prod_db: ProdDb, fmt: str) -> None:
    write_config(drill_dir)
    path = drill_dir / f"userdb_20250325_010000.{'dump' if fmt == '-Fc' else 'tar'}"
    path.write_bytes(_pg_dump(prod_db, fmt))
    copy = f"{prod_db.database}_ext"
    done = run_drill(drill_dir, "restore", "userdb", "--from", path.name, "--into", copy, env=_env(prod_db))
    assert done.code == 0, done.output
    assert prod_db.state(copy) == prod_db.state()
    # A damaged archive is refused before anything is created.
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    databases = prod_db.databases()
    bad = run_drill(drill_dir, "restore", "userdb", "--from", path.name, "--into", f"{copy}2", env=_env(prod_db))
    assert bad.code == 1 and "is not a readable pg_dump archive" in bad.stderr
    assert prod_db.databases() == databases


def test_cron_behaviour_lock_exit_codes_and_one_log_line(drill_dir: Path, prod_db: ProdDb) -> None:
    write_config(drill_dir, extra='[stores.scratch]\nkind = "postgres"\n')
    log = drill_dir / "repo" / "drill-backup.log"
    with store_lock(drill_dir / "repo" / ".locks", "userdb", "test"):
        busy = run_drill(drill_dir, "backup", "userdb", env=_env(prod_db))
    assert busy.code == 75
    assert "another drill run holds the lock of store 'userdb' (pid" in busy.stderr
    assert Repository(drill_dir / "repo").entries() == []
    assert " drill backup userdb busy " in log.read_text().splitlines()[-1]

    unknown = run_drill(drill_dir, "backup", "nosuch", env=_env(prod_db))
    assert unknown.code == 2 and "store 'nosuch' is not configured" in unknown.stderr
    local = run_drill(drill_dir, "backup", "scratch", env=_env(prod_db))
    assert local.code == 2 and 'set provision = "live"' in local.stderr

    with closed_port() as closed:
        down = run_drill(drill_dir, "backup", "userdb", env={
            "USERDB_URL": f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed.port}/{prod_db.database}"})
    assert down.code == 1 and "cannot connect to PostgreSQL" in down.stderr
    assert secrets_in(down.output, PASSWORD) == [] and secrets_in_files(drill_dir, PASSWORD) == {}

    ok = run_drill(drill_dir, "backup", "userdb", env=_env(prod_db))
    assert ok.code == 0 and ok.output == ""
    lines = log.read_text().splitlines()
    assert len(lines) == 5  # one per run
    assert " drill backup userdb ok id=userdb-" in lines[-1] and "sha256=" in lines[-1]


def test_the_manual_documents_every_backup_command_and_key() -> None:
    import re

    from drill.config import _Validator
    from drill.reference import pages
    from tests.conftest import REPO

    generated = pages()
    keys = generated["reference/configuration.md"]
    for key in sorted(_Validator.REPOSITORY_KEYS | _Validator.NOTIFY_KEYS):
        assert re.search(rf"\| `{key}` \|", keys), f"the configuration reference lacks the drill.toml key `{key}`"
    page = (REPO / "docs" / "backups.md").read_text(encoding="utf-8") + generated["reference/cli.md"]
    for command in ("drill backup STORE", "drill restore STORE", "drill backups list", "drill backups verify",
                    "drill backups prune", "--test-mode", "--overwrite", "--dry-run", "--from", "--into"):
        assert command in page, command


def test_sigterm_during_a_backup_cleans_up_logs_and_exits_130(drill_dir: Path, prod_db: ProdDb) -> None:
    import signal
    import sys
    import time

    import psycopg

    from tests.conftest import drill_env

    write_config(drill_dir)
    # An exclusive lock on a table makes pg_dump wait inside the backup: a run caught in the middle.
    with psycopg.connect(prod_db.cluster.conninfo(prod_db.database)) as blocker:
        blocker.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        proc = subprocess.Popen([sys.executable, "-m", "drill", "backup", "userdb"], cwd=drill_dir,
                                env=drill_env(_env(prod_db)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not list((drill_dir / "repo" / "userdb").glob(".partial-*/work/.*.partial")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
        blocker.rollback()
    assert proc.returncode == 130, stderr
    assert "drill: error: interrupted" in stderr
    assert not list((drill_dir / "repo" / "userdb").iterdir())  # no partial left, no backup
    assert " drill backup userdb interrupted " in (drill_dir / "repo" / "drill-backup.log").read_text()

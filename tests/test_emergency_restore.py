"""The emergency procedure of docs/backups.md, run as written: a backup drill made is checked, decrypted and restored
with standard tools only (`age`, `sha256` by hashlib, `pg_restore`) and the stand-alone script in docs/,
in a Python that cannot import drill. The restored database is checked with psycopg against production."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg

from drill.provision import pg_binaries
from tests.backup_support import PASSWORD, ProdDb, pg_cluster, prod_db, write_config
from tests.conftest import REPO, run_drill

__all__ = ["pg_cluster", "prod_db"]
SCRIPT = REPO / "docs" / "legacy_age_identity.py"
# Runs a script in a Python where `import drill` fails: proof that the procedure does not need drill.
WITHOUT_DRILL = "import runpy, sys; sys.modules['drill'] = None; sys.argv = sys.argv[1:]; " \
                "runpy.run_path(sys.argv[0], run_name='__main__')"


def _without_drill(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-I", "-c", WITHOUT_DRILL, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=60)


def _counts(conninfo: str) -> dict[str, int]:
    with psycopg.connect(conninfo) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}  # type: ignore[index]


def _decrypt_and_check(directory: Path, identity: Path, out: Path) -> dict[str, object]:
    manifest = json.loads((directory / "manifest.json").read_text())
    item = manifest["files"][0]
    stored = directory / item["name"]
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == item["sha256"]  # step 2
    age = shutil.which("age")
    assert age, "the age command is missing: apt-get install age"
    subprocess.run([age, "-d", "-i", str(identity), "-o", str(out), str(stored)], check=True, timeout=120)  # step 3
    assert hashlib.sha256(out.read_bytes()).hexdigest() == item["plain_sha256"]  # step 4
    return manifest  # type: ignore[no-any-return]


def test_a_backup_restores_with_standard_tools_and_no_drill(drill_dir: Path, prod_db: ProdDb) -> None:
    keygen = shutil.which("age-keygen")
    assert keygen, "age-keygen is missing: apt-get install age"
    subprocess.run([keygen, "-o", str(drill_dir / "backup.key")], check=True, capture_output=True)
    os.chmod(drill_dir / "backup.key", 0o600)
    write_config(drill_dir, key=True)
    assert run_drill(drill_dir, "backup", "userdb", env={"USERDB_URL": prod_db.url}).code == 0
    [directory] = [p for p in (drill_dir / "repo" / "userdb").iterdir() if not p.name.startswith(".")]
    emergency = drill_dir / "emergency"
    shutil.copytree(directory, emergency)  # step 1: off the repository

    check = _without_drill("--check-manifest", str(emergency / "manifest.json"), str(drill_dir / "backup.key"))
    assert check.returncode == 0 and "manifest authenticated" in check.stdout, check.stdout + check.stderr
    manifest = _decrypt_and_check(emergency, drill_dir / "backup.key", emergency / "userdb.dump")
    assert manifest["format"] == "pg_dump-custom"

    # step 5: the store's own tool
    prod_db.execute("CREATE DATABASE emergency_copy", "postgres")
    tools = pg_binaries.for_local_cluster()
    subprocess.run([tools.path("pg_restore"), "-h", "127.0.0.1", "-p", str(prod_db.cluster.port), "-U", "postgres",
                    "-d", "emergency_copy", "--no-owner", str(emergency / "userdb.dump")], check=True,
                   env={**os.environ, "PGPASSWORD": PASSWORD}, capture_output=True, timeout=300)
    restored = _counts(prod_db.cluster.conninfo("emergency_copy"))
    assert restored == _counts(prod_db.cluster.conninfo(prod_db.database)) and sum(restored.values()) > 0
    prod_db.execute("DROP DATABASE emergency_copy", "postgres")

    # An altered manifest is caught by the stand-alone check too.
    data = json.loads((emergency / "manifest.json").read_text())
    data["consistent_at"] += 3600
    (emergency / "manifest.json").write_text(json.dumps(data))
    altered = _without_drill("--check-manifest", str(emergency / "manifest.json"), str(drill_dir / "backup.key"))
    assert altered.returncode == 1 and "NOT authenticated" in altered.stdout


def test_a_backup_made_with_an_older_drill_key_file_decrypts_with_the_derived_identity(drill_dir: Path,
                                                                                       prod_db: ProdDb) -> None:
    (drill_dir / "backup.key").write_text(os.urandom(32).hex() + "\n")  # a legacy key: 64 hex digits
    os.chmod(drill_dir / "backup.key", 0o600)
    write_config(drill_dir, key=True)
    assert run_drill(drill_dir, "backup", "userdb", env={"USERDB_URL": prod_db.url}).code == 0
    [directory] = [p for p in (drill_dir / "repo" / "userdb").iterdir() if not p.name.startswith(".")]
    derived = _without_drill(str(drill_dir / "backup.key"))
    assert derived.returncode == 0 and derived.stdout.startswith("AGE-SECRET-KEY-1"), derived.stderr
    (drill_dir / "identity.txt").write_text(derived.stdout)
    _decrypt_and_check(directory, drill_dir / "identity.txt", drill_dir / "userdb.dump")
    assert (drill_dir / "userdb.dump").read_bytes().startswith(b"PGDMP")
    check = _without_drill("--check-manifest", str(directory / "manifest.json"), str(drill_dir / "backup.key"))
    assert check.returncode == 0, check.stdout

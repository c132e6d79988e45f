"""Someone who can write to the backup disk can at most make a restore fail: crafted manifests, planted
symlinks, swapped, replayed and renamed backups, and a kill -9 in the middle of an encrypted backup, each
against a real PostgreSQL reached by URL. Every test checks that no file outside the repository changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from drill import crypto
from drill.repository import Repository
from drill.stores.base import sha256_file
from tests.backup_support import ProdDb, pg_cluster, prod_db, write_config
from tests.conftest import drill_env, run_drill

__all__ = ["pg_cluster", "prod_db"]


def _env(prod: ProdDb, drill_dir: Path, own_tmp: bool = False) -> dict[str, str]:
    if not own_tmp:
        return {"USERDB_URL": prod.url}
    (drill_dir / "tmp").mkdir(exist_ok=True)  # drill's private temp folders land here, to be searched
    return {"USERDB_URL": prod.url, "TMPDIR": str(drill_dir / "tmp")}


def _victim(drill_dir: Path, name: str = "victim.txt") -> Path:
    """A file outside the repository that an attacker would like drill to overwrite or delete."""
    victim = drill_dir / "outside" / name
    victim.parent.mkdir(exist_ok=True)
    victim.write_text("root-owned data that must not change\n")
    return victim


def _escape(victim: Path, suffix: str = "") -> str:
    """A relative name that climbs from any folder up to `victim`."""
    return "../" * 16 + str(victim).lstrip("/") + suffix


def _backup(drill_dir: Path, prod: ProdDb) -> Path:
    done = run_drill(drill_dir, "backup", "userdb", env=_env(prod, drill_dir))
    assert done.code == 0, done.output
    return Repository(drill_dir / "repo").entries("userdb")[-1].directory


def _edit_manifest(directory: Path, change: object) -> None:
    path = directory / "manifest.json"
    data = json.loads(path.read_text())
    change(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))


def test_a_crafted_local_manifest_cannot_write_or_delete_outside_the_repository(drill_dir: Path,
                                                                                 prod_db: ProdDb) -> None:
    write_config(drill_dir, key=True)
    crypto.new_key_file(drill_dir / "backup.key")
    directory = _backup(drill_dir, prod_db)
    victim = _victim(drill_dir)
    before = victim.read_bytes()
    stored = next(directory.glob("*.age"))
    # The attacker renames the file and points the manifest at a path outside (decryption would open it).
    shutil.copy(stored, directory / "evil.age")
    _edit_manifest(directory, lambda m: m["files"][0].update(name=_escape(victim, ".age")))
    for args in (["restore", "userdb", "--test-mode"], ["backups", "verify"], ["backups", "list"]):
        done = run_drill(drill_dir, *args, env=_env(prod_db, drill_dir))
        assert done.code == 1, (args, done.output)
        assert "is not a valid file name in a manifest" in done.stderr and "manifest.json" in done.stderr
    assert victim.read_bytes() == before
    # A packed backup's contents list is checked the same way.
    _edit_manifest(directory, lambda m: (m["files"][0].update(name=stored.name),
                                         m.update(packed="tar", contents=[{"name": "../../etc/x", "size": 1,
                                                                           "sha256": "0" * 64}])))
    done = run_drill(drill_dir, "backups", "verify", env=_env(prod_db, drill_dir))
    assert done.code == 1 and "relative, no '..'" in done.stderr


def test_store_names_and_backup_ids_are_checked_before_any_file_or_lock(drill_dir: Path, prod_db: ProdDb) -> None:
    write_config(drill_dir)
    (drill_dir / "repo").mkdir()
    lock_target = drill_dir / "x.lock"  # where '../../x' would put its lock: outside the repository
    lock_target.write_text("not drill's")
    for args in (["restore", "../x", "--test-mode"], ["restore", "../../x"], ["backup", "../../x"],
                 ["backups", "verify", "../x"], ["backups", "prune", "../x"]):
        done = run_drill(drill_dir, *args, env=_env(prod_db, drill_dir))
        assert done.code == 2, (args, done.output)
        assert "is not a valid store name" in done.stderr or "is not configured" in done.stderr, done.stderr
    assert lock_target.read_text() == "not drill's"
    assert not (drill_dir / "x").exists() and sorted(p.name for p in (drill_dir / "repo").iterdir()) in (
        ["drill-backup.log"], [".locks", "drill-backup.log"])
    _backup(drill_dir, prod_db)
    bad_id = run_drill(drill_dir, "restore", "userdb", "--from", "..", "--test-mode", env=_env(prod_db, drill_dir))
    assert bad_id.code == 1 and "is not a valid backup id" in bad_id.stderr


def test_symlinks_planted_in_the_repository_are_not_followed(drill_dir: Path, prod_db: ProdDb) -> None:
    write_config(drill_dir, key=True)
    crypto.new_key_file(drill_dir / "backup.key")
    directory = _backup(drill_dir, prod_db)
    victim = _victim(drill_dir)
    before = victim.read_bytes()
    locks = drill_dir / "repo" / ".locks"
    assert locks.stat().st_mode & 0o777 == 0o700  # only drill's user can plant anything there
    (locks / "userdb.lock").unlink()
    (locks / "userdb.lock").symlink_to(victim)
    done = run_drill(drill_dir, "backup", "userdb", env=_env(prod_db, drill_dir))
    assert done.code == 1 and "is a symbolic link; drill follows no link inside the repository" in done.stderr
    assert victim.read_bytes() == before
    (locks / "userdb.lock").unlink()

    # The temp file and the record of a verification: planted links are replaced, never written through.
    (directory / ".verified.json.tmp").symlink_to(victim)
    (directory / "verified.json").unlink()
    (directory / "verified.json").symlink_to(_victim(drill_dir, "second.txt"))
    done = run_drill(drill_dir, "backups", "verify", env=_env(prod_db, drill_dir))
    assert done.code == 0, done.output
    assert victim.read_bytes() == before and (drill_dir / "outside" / "second.txt").read_bytes() == before
    assert not (directory / "verified.json").is_symlink()
    assert json.loads((directory / "verified.json").read_text())["status"] == "ok"

    # A backup directory that is a link to a folder elsewhere is refused.
    elsewhere = drill_dir / "outside" / "folder"
    shutil.copytree(directory, elsewhere)
    shutil.rmtree(directory)
    directory.symlink_to(elsewhere)
    done = run_drill(drill_dir, "backups", "verify", env=_env(prod_db, drill_dir))
    assert done.code == 1 and "is a symbolic link" in done.stderr
    # The repository log, too, is opened without following a link.
    log = drill_dir / "repo" / "drill-backup.log"
    log.unlink()
    log.symlink_to(victim)
    run_drill(drill_dir, "backups", "verify", env=_env(prod_db, drill_dir))
    assert victim.read_bytes() == before


def _two_backups(drill_dir: Path, prod: ProdDb) -> tuple[Path, Path]:
    older = _backup(drill_dir, prod)
    prod.execute("DELETE FROM orders WHERE id % 3 = 0")
    newer = _backup(drill_dir, prod)
    return older, newer


def _refused(drill_dir: Path, prod: ProdDb, message: str) -> None:
    verify = run_drill(drill_dir, "backups", "verify", env=_env(prod, drill_dir))
    assert verify.code == 1 and message in verify.stdout, verify.output
    restore = run_drill(drill_dir, "restore", "userdb", "--test-mode", env=_env(prod, drill_dir))
    assert restore.code == 1 and message in restore.stderr, restore.output
    assert "restoring" not in restore.stdout and "recovery point" not in restore.stdout


def test_an_older_backup_swapped_into_a_newer_ones_directory_is_detected(drill_dir: Path, prod_db: ProdDb) -> None:
    write_config(drill_dir, key=True)
    crypto.new_key_file(drill_dir / "backup.key")
    older, newer = _two_backups(drill_dir, prod_db)
    newer_manifest = (newer / "manifest.json").read_text()
    newer_file = next(newer.glob("*.age"))
    newer_bytes = newer_file.read_bytes()
    old = json.loads((older / "manifest.json").read_text())

    # 1. The older ciphertext under the newer name, the newer manifest's checksums and times rewritten.
    newer_file.write_bytes(next(older.glob("*.age")).read_bytes())

    def swap(m: dict[str, object]) -> None:
        m["files"][0].update({k: old["files"][0][k] for k in ("sha256", "size", "plain_sha256", "plain_size")})  # type: ignore[index]
        m.update({k: old[k] for k in ("fingerprint", "size", "store_sha256")})

    _edit_manifest(newer, swap)
    _refused(drill_dir, prod_db, "its manifest fails authentication (HMAC)")
    listed = run_drill(drill_dir, "backups", "list", "--json", env=_env(prod_db, drill_dir))
    statuses = {row["id"]: row["verified"] for row in json.loads(listed.stdout)}
    assert statuses[older.name] == "ok" and statuses[newer.name] == "failed"

    # 2. The whole older backup (its own valid manifest too) replayed as the newer one.
    shutil.rmtree(newer)
    shutil.copytree(older, newer)
    _refused(drill_dir, prod_db, f"holds the manifest of backup {older.name}")

    # 3. Renamed: the older backup's directory renamed to a later id, its manifest's id edited to match.
    shutil.rmtree(newer)
    renamed = older.with_name(older.name.replace("-", "-9", 1))
    shutil.copytree(older, renamed)
    _edit_manifest(renamed, lambda m: m.update(id=renamed.name, created_at=m["created_at"] + 86400))
    _refused(drill_dir, prod_db, "its manifest fails authentication (HMAC)")
    shutil.rmtree(renamed)

    # The genuine newer backup, put back, passes: the checks bite on the swap, not on the data.
    newer.mkdir()
    (newer / "manifest.json").write_text(newer_manifest)
    (newer / newer_file.name).write_bytes(newer_bytes)
    done = run_drill(drill_dir, "restore", "userdb", "--test-mode", env=_env(prod_db, drill_dir))
    assert done.code == 0, done.output
    assert f"from {newer.name}" in done.stdout


def test_without_a_key_list_and_verify_say_the_metadata_is_unauthenticated(drill_dir: Path,
                                                                           prod_db: ProdDb) -> None:
    write_config(drill_dir)
    _backup(drill_dir, prod_db)
    listed = run_drill(drill_dir, "backups", "list", env=_env(prod_db, drill_dir))
    verified = run_drill(drill_dir, "backups", "verify", env=_env(prod_db, drill_dir))
    for done in (listed, verified):
        assert done.code == 0, done.output
        assert "metadata unauthenticated" in done.stdout and "accidental damage only" in done.stdout
    assert "(1 with unauthenticated metadata)" in (drill_dir / "repo" / "drill-backup.log").read_text()
    # An unauthenticated backup in a repository that now has a key is refused, not trusted.
    write_config(drill_dir, key=True)
    crypto.new_key_file(drill_dir / "backup.key")
    done = run_drill(drill_dir, "restore", "userdb", "--test-mode", env=_env(prod_db, drill_dir))
    assert done.code == 1 and "neither encrypted nor authenticated, but this repository has a key" in done.stderr


def test_a_wrong_key_exits_2_and_marks_no_backup_failed(drill_dir: Path, prod_db: ProdDb) -> None:
    write_config(drill_dir, key=True)
    crypto.new_key_file(drill_dir / "backup.key")
    directory = _backup(drill_dir, prod_db)
    (drill_dir / "backup.key").unlink()
    crypto.new_key_file(drill_dir / "backup.key")
    for args in (["backups", "verify"], ["restore", "userdb", "--test-mode"]):
        done = run_drill(drill_dir, *args, env=_env(prod_db, drill_dir))
        assert done.code == 2, (args, done.output)
        assert "wrong key" in done.stderr
    assert json.loads((directory / "verified.json").read_text())["status"] == "ok"  # still the good backup it is
    assert [line.split()[4] for line in (drill_dir / "repo" / "drill-backup.log").read_text().splitlines()] == [
        "ok", "refused", "refused"]


KILL_DURING_ENCRYPTION = '''
import os, sys
from drill import age_files, cli
real = age_files.encrypt_file
def encrypt_then_die(source, target, key):
    real(source, target, key)
    os.kill(os.getpid(), 9)  # the plaintext dump and the ciphertext both exist now
age_files.encrypt_file = encrypt_then_die
sys.exit(cli.main(["backup", "userdb"]))
'''


def test_kill_9_during_an_encrypted_backup_leaves_no_plaintext_in_the_repository(drill_dir: Path,
                                                                                  prod_db: ProdDb) -> None:
    write_config(drill_dir, key=True)
    crypto.new_key_file(drill_dir / "backup.key")
    canary = f"canary_{prod_db.database}"
    prod_db.execute(f"CREATE TABLE {canary} (secret text); INSERT INTO {canary} VALUES ('plaintext')")
    env = _env(prod_db, drill_dir, own_tmp=True)
    killed = subprocess.run([sys.executable, "-c", KILL_DURING_ENCRYPTION], cwd=drill_dir, env=drill_env(env),
                            capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr

    def holds_plaintext(path: Path) -> bool:
        data = path.read_bytes()
        return b"PGDMP" in data or canary.encode() in data  # pg_dump's magic; its table of contents

    repo_files = [p for p in (drill_dir / "repo").rglob("*") if p.is_file()]
    assert any(p.name.endswith(".age") for p in repo_files)  # killed mid-backup: the ciphertext is there...
    assert not [p for p in repo_files if holds_plaintext(p)]  # ...and no plaintext anywhere in the repository
    [private] = [p for p in (drill_dir / "tmp").glob("drill-backup-*")]
    assert private.stat().st_mode & 0o777 == 0o700  # the plaintext sat in drill's private folder off the repository
    assert any(holds_plaintext(p) for p in private.rglob("*") if p.is_file())

    again = run_drill(drill_dir, "backup", "userdb", "-v", env=env)
    assert again.code == 0, again.output
    assert not private.exists()  # swept by the next run
    assert not [p for p in (drill_dir / "tmp").rglob("*") if p.is_file() and holds_plaintext(p)]
    assert len(Repository(drill_dir / "repo").entries()) == 1
    [entry] = Repository(drill_dir / "repo").entries()
    assert sha256_file(entry.directory / entry.manifest.files[0].name) == entry.manifest.files[0].sha256
    assert not os.listdir(drill_dir / "repo" / "userdb") or all(
        not name.startswith(".partial-") for name in os.listdir(drill_dir / "repo" / "userdb"))


def test_a_backup_made_before_age_still_restores_with_a_warning(drill_dir: Path, prod_db: ProdDb) -> None:
    """Read-compatibility: the layout the previous drill wrote (AES-256-GCM `.enc`, schema 1, no mac)."""
    write_config(drill_dir)
    directory = _backup(drill_dir, prod_db)
    key = crypto.new_legacy_key_file(drill_dir / "backup.key")
    manifest = json.loads((directory / "manifest.json").read_text())
    plain = directory / manifest["files"][0]["name"]
    encrypted = plain.with_name(plain.name + ".enc")
    crypto.encrypt_file(plain, encrypted, key)
    plain.unlink()
    manifest["files"][0].update(name=encrypted.name, size=encrypted.stat().st_size, sha256=sha256_file(encrypted))
    manifest.update(encryption=crypto.parameters(key), schema_version=1, size=encrypted.stat().st_size)
    manifest.pop("mac", None)
    (directory / "manifest.json").write_text(json.dumps(manifest))
    write_config(drill_dir, key=True)
    verify = run_drill(drill_dir, "backups", "verify", "-v", env=_env(prod_db, drill_dir))
    assert verify.code == 0, verify.output
    assert f"{directory.name} (legacy)" in verify.stdout and "unauthenticated metadata" in verify.stdout
    restore = run_drill(drill_dir, "restore", "userdb", "--test-mode", env=_env(prod_db, drill_dir))
    assert restore.code == 0, restore.output
    assert "matching the fingerprint taken with the backup" in restore.stdout
    assert "made by an older drill (AES-GCM)" in restore.stderr

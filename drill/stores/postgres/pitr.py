"""PostgreSQL point-in-time recovery for local clusters: WAL archiving, base backups, recovery to a time.

A store configured with `pitr = true` runs on a throwaway cluster that archives every WAL segment
(`archive_mode = on`, `archive_command` copying into an archive directory drill owns). A base
backup is `pg_basebackup -Fp -X stream -c fast`, checked with `pg_verifybackup`. Recovery to a
point in time is the runbook's procedure, for real: switch and archive the last WAL segment,
stop the server, set the damaged data directory aside (it is the rollback copy), lay the base
backup down, write `restore_command`, `recovery_target_time` and `recovery_target_action =
'promote'`, touch `recovery.signal`, start the server on the same port and wait for promotion.
If recovery fails, the data directory set aside is put back and the server restarted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from drill.durations import parse_point_in_time as parse_point_in_time  # where it was first (tests, plugins)
from drill.errors import BackupError, DrillError, StoreError
from drill.fingerprint import compare
from drill.provision.processes import mark_owned, sweep_stale
from drill.stores.base import BackupArtifact, Progress, no_progress, sha256_file
from drill.stores.postgres.local import LocalPostgresCluster, _server_user

PREFIX = "drill-pitr-"
READY_TIMEOUT = 120.0


def make_archive_dir() -> Path:
    sweep_stale(PREFIX, "WAL archive", lambda _root: None)
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    mark_owned(root)
    (root / "wal").mkdir()
    (root / "base").mkdir()
    user = _server_user()
    if user:
        for path in (root, root / "wal", root / "base"):
            os.chown(path, user.pw_uid, user.pw_gid)
    return root


def archive_settings(archive_root: Path) -> tuple[str, ...]:
    wal = archive_root / "wal"
    return ("wal_level=replica", "archive_mode=on", "max_wal_senders=4",
            f"archive_command='test ! -f {wal}/%f && cp %p {wal}/%f'")


def _pg_time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


@dataclass
class PitrCluster:
    """The local cluster of a PITR store and the archive that its WAL goes to."""

    cluster: LocalPostgresCluster
    archive_root: Path

    @property
    def wal_dir(self) -> Path:
        return self.archive_root / "wal"

    def remove(self) -> None:
        shutil.rmtree(self.archive_root, ignore_errors=True)

    # -- base backup ----------------------------------------------------------------------------------

    def base_backup(self, store: Any, progress: Progress = no_progress) -> BackupArtifact:
        created = time.time()
        backup_id = f"{store.name}-base-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(created))}-{uuid.uuid4().hex[:6]}"
        target = self.archive_root / "base" / backup_id
        before = store.fingerprint()
        progress(f"pg_basebackup -Fp -X stream -c fast of {store.name}")
        started = time.time()
        done = self.cluster._run_as_server_user(
            [self.cluster.binaries.path("pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.cluster.port),
             "-U", "postgres", "-D", str(target), "-Fp", "-X", "stream", "-c", "fast", "--no-sync"], timeout=3600)
        if done.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise BackupError(f"pg_basebackup of {store.name!r} failed (exit {done.returncode}): {done.stderr.strip()}")
        after = store.fingerprint()
        manifest = target / "backup_manifest"
        return BackupArtifact(
            id=backup_id, store=store.name, kind="postgres", format="pg_basebackup", path=target,
            sha256=sha256_file(manifest) if manifest.exists() else None,
            size=sum(p.stat().st_size for p in target.rglob("*") if p.is_file()),
            created_at=time.time(), consistent_at=started,
            tool_versions={"pg_basebackup": self.cluster.binaries.version},
            server_version=self.cluster.binaries.version,
            # Only drill's marker writer may write during the backup, and fingerprints leave markers out:
            # a fingerprint that did not change while the backup ran is the backup's.
            fingerprint=before if not compare(before, after) else None)

    def verify_base_backup(self, artifact: BackupArtifact) -> None:
        if not artifact.path.is_dir():
            raise BackupError(f"base backup {artifact.id} of {artifact.store!r} is missing: {artifact.path}")
        if artifact.sha256 is not None and sha256_file(artifact.path / "backup_manifest") != artifact.sha256:
            raise BackupError(f"base backup {artifact.id}: its backup_manifest changed since it was taken")
        tool = self.cluster.binaries.path("pg_verifybackup")
        if os.access(tool, os.X_OK):
            done = self.cluster._run_as_server_user([tool, "-q", str(artifact.path)], timeout=3600)
            if done.returncode != 0:
                raise BackupError(f"base backup {artifact.id} of {artifact.store!r} failed pg_verifybackup: "
                                  f"{(done.stderr or done.stdout).strip()}")

    # -- recovery -------------------------------------------------------------------------------------

    def archive_current_wal(self, timeout: float = READY_TIMEOUT) -> None:
        """Switch to a new WAL segment and wait until the one just completed is in the archive."""
        with psycopg.connect(self.cluster.conninfo("postgres"), autocommit=True, connect_timeout=15) as conn:
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            assert row is not None
            wanted = str(row[0])
            deadline = time.monotonic() + timeout
            while True:
                if (self.wal_dir / wanted).exists():
                    return
                failed = conn.execute("SELECT last_failed_wal FROM pg_stat_archiver").fetchone()
                if time.monotonic() > deadline:
                    raise StoreError(f"WAL segment {wanted} was not archived within {timeout:.0f}s "
                                     f"(last failed: {failed[0] if failed else None}); see {self.cluster.log_file}")
                time.sleep(0.05)

    def current_lsn(self) -> str:
        """The WAL insert position now: recovering up to it (exclusive) undoes exactly what comes after."""
        with psycopg.connect(self.cluster.conninfo("postgres"), autocommit=True, connect_timeout=15) as conn:
            row = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
        assert row is not None
        return str(row[0])

    def recover_to(self, artifact: BackupArtifact, target_time: float, progress: Progress = no_progress,
                   lsn: str | None = None) -> None:
        """Replace the cluster's data with the base backup replayed up to `target_time` (epoch), or up to
        the WAL position `lsn` (exclusive) when given: a DROP DATABASE removes its files as soon as its WAL
        record is replayed, before its commit record, so stopping "just before" it needs its position."""
        self.verify_base_backup(artifact)  # before the target is touched
        if target_time < artifact.consistent_at:
            raise StoreError(f"the point in time {_pg_time(target_time)} is before the base backup {artifact.id} "
                             f"(taken from {_pg_time(artifact.consistent_at)}): take the base backup earlier")
        with contextlib.suppress(DrillError, psycopg.Error):
            self.archive_current_wal()
        progress("stopping the server; setting the damaged data directory aside")
        self._stop()
        data = self.cluster.data_dir
        aside = data.with_name(f"data.before-pitr-{uuid.uuid4().hex[:6]}")
        os.replace(data, aside)
        try:
            subprocess.run(["cp", "-a", str(artifact.path), str(data)], check=True, capture_output=True)
            with (data / "postgresql.auto.conf").open("a") as conf:
                conf.write(f"\nrestore_command = 'cp {self.wal_dir}/%f %p'\n"
                           + (f"recovery_target_lsn = '{lsn}'\nrecovery_target_inclusive = false\n" if lsn
                              else f"recovery_target_time = '{_pg_time(target_time)}'\n")
                           + "recovery_target_action = 'promote'\n")
            (data / "recovery.signal").touch()
            (data / "postmaster.pid").unlink(missing_ok=True)
            user = _server_user()
            if user:
                for path in (data / "postgresql.auto.conf", data / "recovery.signal"):
                    os.chown(path, user.pw_uid, user.pw_gid)
            progress(f"replaying archived WAL up to {f'WAL position {lsn}' if lsn else _pg_time(target_time)}")
            self._start()
            self._wait_promoted()
        except BaseException as exc:
            log_tail = self.cluster._log_tail()
            self._stop()
            shutil.rmtree(data, ignore_errors=True)
            os.replace(aside, data)
            with contextlib.suppress(DrillError):
                self._start()
            raise StoreError(f"point-in-time recovery failed and the data directory was put back as it was: "
                             f"{exc}\nserver log:\n{log_tail}") from None
        shutil.rmtree(aside, ignore_errors=True)

    def _stop(self) -> None:
        if (self.cluster.data_dir / "postmaster.pid").exists():
            self.cluster._run_as_server_user([self.cluster.binaries.path("pg_ctl"), "stop", "-D",
                                              str(self.cluster.data_dir), "-m", "fast", "-w", "-t", "60"], timeout=90)

    def _start(self) -> None:
        options = [f"-p {self.cluster.port}", f"-k {self.cluster.socket_dir}", "-c listen_addresses=127.0.0.1",
                   "-c fsync=off", "-c full_page_writes=off", "-c synchronous_commit=off",
                   *(f"-c {s}" for s in self.cluster.extra_settings)]
        done = self.cluster._run_as_server_user(
            [self.cluster.binaries.path("pg_ctl"), "start", "-w", "-t", str(int(READY_TIMEOUT)), "-D",
             str(self.cluster.data_dir), "-l", str(self.cluster.log_file), "-o", " ".join(options)],
            timeout=READY_TIMEOUT + 10)
        if done.returncode != 0:
            raise StoreError(f"the server did not start (exit {done.returncode})")

    def _wait_promoted(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                with psycopg.connect(self.cluster.conninfo("postgres"), autocommit=True, connect_timeout=5) as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    if row is not None and row[0] is False:
                        return
            except psycopg.OperationalError:
                if not (self.cluster.data_dir / "postmaster.pid").exists():
                    raise StoreError("the server stopped during recovery") from None
            if time.monotonic() > deadline:
                raise StoreError(f"recovery did not finish within {READY_TIMEOUT:.0f}s")
            time.sleep(0.1)


def markers_in(store: Any) -> list[tuple[int, float]]:
    """Every marker (seq, client time) in a PostgreSQL store, oldest first ([] when it has none)."""
    with store.server.connect(store.database) as conn:
        exists = conn.execute("SELECT to_regclass('public.drill_markers')").fetchone()
        if not exists or exists[0] is None:
            return []
        rows = conn.execute("SELECT seq, written_at FROM drill_markers ORDER BY seq").fetchall()
    return [(int(seq), float(at)) for seq, at in rows]

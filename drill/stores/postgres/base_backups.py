"""Point-in-time recovery from the runbook's own files: `base_backup_*.tar.gz` and a WAL archive folder.

The runbook's procedure, for real, on the store's throwaway local cluster:

    tar -xzf base_backup_20240115.tar.gz -C DATA
    restore_command = 'cp /backups/postgres/wal/%f %p'; recovery_target_time = '...'; promote

drill reads the archive through first (its tar rules: nothing outside the data directory), extracts
it into a private folder inside the cluster's own throwaway folder, and copies the WAL segments it
will replay there too (the server account reads them; production's folder is never written). The
copy of production's data directory is made safe to start before it is: archive_mode off (its
archive_command would otherwise copy WAL into production's archive), ssl off, no preloaded
libraries, and drill's own pg_hba.conf (trust on the loopback and the socket of this throwaway
cluster only). Then the cluster's server is stopped, its data directory set aside, the restored one
put in its place and started on the same port; it replays the WAL up to the target time (or to the
end of the archive, or of the backup's own pg_wal without an archive) and is promoted. Any failure
puts the data directory that was set aside back.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import tarfile
import tempfile
import uuid
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from drill import tar_safety
from drill.errors import BackupError, DrillError, StoreError
from drill.stores.base import BackupArtifact, Progress
from drill.stores.postgres.local import LocalPostgresCluster, _server_user
from drill.stores.postgres.pitr import PitrCluster, _pg_time

if TYPE_CHECKING:
    from drill.stores.postgres.store import PostgresStore

# WAL segments, timeline history files, backup history files, partial segments: what an archive holds.
_WAL_NAME = re.compile(r"[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history")
_SAFE_SETTINGS = ("archive_mode = 'off'", "archive_command = ''", "ssl = 'off'", "shared_preload_libraries = ''")
_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"


def pg_version_of(path: Path) -> str | None:
    """The PG_VERSION a base backup archive holds (its major version), read from the tar."""
    try:
        with gzip.open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as archive:
            for member in archive:
                if tar_safety.member_path(member.name) == "PG_VERSION" and member.isfile():
                    handle = archive.extractfile(member)
                    return handle.read(16).decode().strip() if handle else None
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        return None
    return None


def _copy_wal(source: Path, target: Path) -> int:
    target.mkdir()
    copied = 0
    for path in sorted(source.iterdir()):
        if path.is_file() and not path.is_symlink() and _WAL_NAME.fullmatch(path.name.removesuffix(".gz")):
            if path.name.endswith(".gz"):  # archive_command = 'gzip < %p > ARCHIVE/%f.gz' is common
                with gzip.open(path, "rb") as packed, (target / path.name.removesuffix(".gz")).open("wb") as out:
                    shutil.copyfileobj(packed, out)
            else:
                shutil.copyfile(path, target / path.name)
            copied += 1
    return copied


def _chown_tree(root: Path) -> None:
    user = _server_user()
    if user is None:
        return
    for folder, dirs, files in os.walk(root):
        os.chown(folder, user.pw_uid, user.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), user.pw_uid, user.pw_gid)


def _make_safe(data: Path, wal: Path | None, target_time: float | None) -> None:
    """Settings that keep a copy of production's data directory from reaching anything but itself."""
    for leftover in ("postmaster.pid", "postmaster.opts", "standby.signal", "recovery.signal", "recovery.conf"):
        (data / leftover).unlink(missing_ok=True)
    (data / "pg_hba.conf").write_text(_HBA, encoding="utf-8")
    lines = list(_SAFE_SETTINGS)
    if wal is not None:
        lines.append(f"restore_command = 'cp {wal}/%f %p'")
        if target_time is not None:
            lines += [f"recovery_target_time = '{_pg_time(target_time)}'", "recovery_target_action = 'promote'"]
        (data / "recovery.signal").touch()
    with (data / "postgresql.auto.conf").open("a", encoding="utf-8") as conf:
        conf.write("\n# drill: a restored copy of a base backup on a throwaway cluster\n" + "\n".join(lines) + "\n")
    os.chmod(data, 0o700)


def recover(store: PostgresStore, artifact: BackupArtifact, wal: Path | None, target_time: float | None,
            progress: Progress) -> None:
    """Replace the local cluster's data with the base backup, replayed up to `target_time` (None: all the WAL)."""
    cluster = store.local
    if cluster is None or cluster.root is None:
        raise StoreError(f"a base backup is recovered into a local throwaway cluster; {store.name!r} is a "
                         f"{store.config.provision} store")
    if target_time is not None and wal is None:
        raise StoreError(f"recovering {store.name!r} to a point in time needs the WAL archive: name it with `... with "
                         f"the WAL archive \"backups/postgres/wal/\"`")
    version = pg_version_of(artifact.path)
    if version is None or not version.isdigit():
        raise BackupError(f"{artifact.path} holds no readable PG_VERSION: it is not a base backup")
    if int(version) != cluster.binaries.major:
        raise StoreError(f"{artifact.path} is a base backup of PostgreSQL {version}; the local cluster runs "
                         f"PostgreSQL {cluster.binaries.version}: set DRILL_PG_BIN to a PostgreSQL {version} bin "
                         f"directory")
    staging = Path(tempfile.mkdtemp(prefix="base-backup-", dir=cluster.root))  # removed with the cluster
    try:
        data = staging / "data"
        progress(f"extracting {artifact.path.name} into the throwaway cluster's folder")
        tar_safety.extract(artifact.path, data, what="base backup (tar.gz)")
        archive = None
        if wal is not None:
            archive = staging / "wal"
            progress(f"copied {_copy_wal(wal, archive)} WAL files of {wal} for the replay")
        _make_safe(data, archive, target_time)
        _chown_tree(staging)
        _swap_in(cluster, data, progress, target_time)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(cluster: LocalPostgresCluster, data: Path, progress: Progress, target_time: float | None) -> None:
    server = PitrCluster(cluster, data.parent)  # its stop, start and wait-for-promotion, on this cluster
    progress("stopping the server; setting its data directory aside")
    server._stop()
    current = cluster.data_dir
    aside = current.with_name(f"data.before-base-backup-{uuid.uuid4().hex[:6]}")
    os.replace(current, aside)
    try:
        os.replace(data, current)
        progress(f"replaying WAL up to {_pg_time(target_time) if target_time else 'the end of the archive'}")
        server._start()
        server._wait_promoted()
    except BaseException as exc:
        log_tail = cluster._log_tail()
        server._stop()
        shutil.rmtree(current, ignore_errors=True)
        os.replace(aside, current)
        with contextlib.suppress(DrillError):
            server._start()
        raise StoreError(f"recovery from the base backup failed and the data directory was put back as it was: "
                         f"{exc}\nserver log:\n{log_tail}") from None
    shutil.rmtree(aside, ignore_errors=True)

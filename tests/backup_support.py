"""What the backup tests share: real "production" servers reached only by URL, and a drill project."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drill.config import StoreConfig
from drill.provision import pg_binaries
from drill.provision.local_postgres import LocalPostgresCluster
from drill.stores.postgres import PgServer, PostgresStore
from tests import oracles
from tests.live_servers import postgres_bin_dir

PASSWORD = "Pr0d-S3cret-pw"
SEED_ROWS = 300


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[LocalPostgresCluster]:
    """A real password-protected PostgreSQL standing in for production (drill reaches it by URL only)."""
    with LocalPostgresCluster(pg_binaries.for_local_cluster(), superuser_password=PASSWORD) as cluster:
        yield cluster


@dataclass
class ProdDb:
    cluster: LocalPostgresCluster
    database: str

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.cluster.port}/{self.database}"

    def store(self, database: str | None = None) -> PostgresStore:
        server = PgServer(host="127.0.0.1", port=self.cluster.port, user="postgres", password=PASSWORD,
                          tools=pg_binaries.for_local_cluster())
        name = database or self.database
        return PostgresStore(name=name, config=StoreConfig(name=name, kind="postgres"), server=server, database=name)

    def psql(self, sql: str, database: str) -> str:
        """SQL through the server's own psql (for tests/oracles.py): unaligned, tuples only."""
        env = {"PATH": os.environ.get("PATH", ""), "PGPASSWORD": PASSWORD, "PGCONNECT_TIMEOUT": "10"}
        done = subprocess.run([str(postgres_bin_dir() / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-h", "127.0.0.1", "-p", str(self.cluster.port), "-U", "postgres", "-d", database,
                               "-c", sql], capture_output=True, text=True, env=env, timeout=300)
        if done.returncode != 0:
            raise AssertionError(f"psql failed on {database}: {sql[:200]}\n{done.stderr}")
        return done.stdout.strip()

    def state(self, database: str | None = None) -> dict[str, Any]:
        """What a restore must bring back, read by psql (tests/oracles.py), never by drill's fingerprint."""
        return oracles.pg_state(self, database or self.database)

    def rows(self, database: str | None = None) -> int:
        return sum(count for count, _ in oracles.pg_tables(self, database or self.database).values())

    def execute(self, sql: str, database: str | None = None) -> None:
        with psycopg.connect(self.cluster.conninfo(database or self.database), autocommit=True) as conn:
            conn.execute(sql.encode())

    def databases(self) -> set[str]:
        with psycopg.connect(self.cluster.conninfo("postgres"), autocommit=True) as conn:
            return {str(r[0]) for r in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")}


@pytest.fixture
def prod_db(pg_cluster: LocalPostgresCluster) -> ProdDb:
    """A fresh seeded database on the production stand-in, one per test."""
    prod = ProdDb(pg_cluster, f"userdb_{uuid.uuid4().hex[:8]}")
    prod.execute(f"CREATE DATABASE {prod.database}", "postgres")
    prod.store().seed(SEED_ROWS)
    return prod


def write_config(directory: Path, *, key: bool = False, destructive: bool = False, extra: str = "") -> Path:
    lines = ['[repository]', 'path = "repo"']
    if key:
        lines.append('key_file = "backup.key"')
    lines += ['', '[stores.userdb]', 'kind = "postgres"', 'provision = "live"', 'url_env = "USERDB_URL"']
    if destructive:
        lines.append("destructive = true")
    path = directory / "drill.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path

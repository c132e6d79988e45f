"""What the backup tests share: real "production" servers reached only by URL, and a drill project."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from drill.config import StoreConfig
from drill.fingerprint import Fingerprint
from drill.provision import pg_binaries
from drill.provision.local_postgres import LocalPostgresCluster
from drill.stores.postgres import PgServer, PostgresStore

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

    def fingerprint(self, database: str | None = None) -> Fingerprint:
        return self.store(database).fingerprint()

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

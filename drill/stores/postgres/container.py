"""PostgreSQL in a throwaway container (provision = "container"): the official image by default.

drill passes what the official `postgres` image understands: POSTGRES_PASSWORD (a fresh random
one, registered as a secret), POSTGRES_USER, POSTGRES_DB, and a `postgres` command with server
options (port, listen address). The backup and restore programs are the machine's own
(pg_dump/pg_restore of the server's major version or newer), talking TCP to 127.0.0.1:<port>.
"""

from __future__ import annotations

import secrets

import psycopg

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.provision.container import Container, ContainerSpec, free_host_port
from drill.redact import register_secret
from drill.stores.base import Progress, Store
from drill.stores.postgres import PostgresOptions
from drill.stores.postgres import binaries as pg_binaries
from drill.stores.postgres.store import PgServer, PostgresStore

DEFAULT_IMAGE = "postgres:16"


def provision_container(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    image = PostgresOptions.of(config).image or DEFAULT_IMAGE
    password = secrets.token_urlsafe(18)
    register_secret(password)
    database = PostgresOptions.of(config).database or config.name
    port = free_host_port()
    spec = ContainerSpec(
        image=image, what=f"PostgreSQL container of {config.name!r}",
        env={"POSTGRES_PASSWORD": password, "POSTGRES_USER": "postgres", "POSTGRES_DB": database,
             "PGPORT": str(port)},
        # A throwaway server trades crash safety for speed, like drill's local clusters.
        command=["postgres", "-p", str(port), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                 "-c", "full_page_writes=off", "-c", "synchronous_commit=off"])
    progress(f"starting a throwaway PostgreSQL container ({image}) on 127.0.0.1:{port}")
    container = Container(spec, cleanup)
    conninfo = psycopg.conninfo.make_conninfo(host="127.0.0.1", port=str(port), user="postgres", password=password,
                                              dbname=database, connect_timeout="5")

    def probe() -> None:
        # The official image runs a socket-only server while it initialises; TCP answers only at the end.
        with psycopg.connect(conninfo) as conn:
            conn.execute("SELECT 1")

    container.start(probe, (psycopg.OperationalError,))
    server = PgServer(host="127.0.0.1", port=port, user="postgres", password=password,
                      tools=pg_binaries.for_client(0),  # any client tools to ask the version; chosen below
                      description=f"container {container.name} ({image}) on 127.0.0.1:{port}")
    server.tools = pg_binaries.for_client(server.server_major())
    server.description = f"container {container.name} ({image}, PostgreSQL {server.server_version()}) on " \
                         f"127.0.0.1:{port}"
    store = PostgresStore(name=config.name, config=config, server=server, database=database)
    store.ensure_database()
    return store

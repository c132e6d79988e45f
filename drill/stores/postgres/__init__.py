"""PostgreSQL stores: a database on a throwaway local cluster, in a container, or on a live server.

The folder: store.py (the adapter: pg_dump/pg_restore, fingerprints in the server), seed.py,
provision.py (local, container, live), local.py (the throwaway cluster), container.py,
binaries.py (which PostgreSQL programs to run), pitr.py (WAL archiving and point-in-time recovery).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from drill.names import database_name
from drill.stores import capabilities
from drill.stores.capabilities import (
    AbortsRestore,
    DumpsSql,
    PlantsChanges,
    PointInTime,
    Removable,
    RunsSql,
    ScratchTargets,
    ServerFaults,
)
from drill.stores.kinds import KindOptions, KindSpec, OptionError, flag, matching, option, text, whole

if TYPE_CHECKING:
    from drill.config import StoreConfig


@runtime_checkable
class UsesWalArchive(Protocol):
    """A store that recovers a base backup made outside drill with a WAL archive folder (the runbook's PITR)."""

    def use_wal_archive(self, base_backup: Path, wal: Path) -> None: ...


capabilities.register(UsesWalArchive, "replays a base backup with a WAL archive folder")


@dataclass(frozen=True)
class PostgresOptions(KindOptions):
    database: str | None = option(None, database_name, "the database (default: the store name; live: the URL's)")
    restore_jobs: int | None = option(None, whole(1), "pg_restore -j (default: the CPU count, at most 4)")
    image: str | None = option(None, text, "container: the image (default postgres:16)")
    pitr: bool = option(False, flag, "archive the WAL, so that the store can be recovered to a point in time "
                                     "(local PostgreSQL stores only)")
    restore_owners: str = option("auto", matching("auto|keep|skip", "must be one of: auto, keep, skip"),
                                 "restore the dump's owners and grants (keep), leave them out (skip: pg_restore "
                                 "--no-owner --no-privileges), or auto: keep on live servers, skip on the throwaway "
                                 "servers drill starts itself (where the dump's roles do not exist)")

    def check(self, store: StoreConfig) -> None:
        if self.pitr and store.provision != "local":
            raise OptionError("pitr", "point-in-time recovery (pitr = true) is available for local PostgreSQL "
                                      "stores only")

    def throwaway(self) -> PostgresOptions:
        return PostgresOptions(database=self.database, restore_owners=self.restore_owners)


_PROVISION = "drill.stores.postgres.provision"
KIND = KindSpec(
    kind="postgres", names=("PostgreSQL",), unit="rows", part_label="table",
    provisioners={"local": f"{_PROVISION}:provision_local", "container": f"{_PROVISION}:provision_container",
                  "live": f"{_PROVISION}:provision_live"},
    capabilities=frozenset({RunsSql, DumpsSql, PointInTime, Removable, ScratchTargets, ServerFaults, AbortsRestore,
                            PlantsChanges, UsesWalArchive}),
    options=PostgresOptions,
    live_schemes=("postgres", "postgresql"), live_example="postgresql://user:password@host:port/database",
    live_url_database=True,
    live_creates_missing=True,  # `drill restore --overwrite` re-creates a dropped database, as the runbook does
    steps=("drill.steps.postgres",),  # its own sentences
    summary="a PostgreSQL database: pg_dump -Fc backups, pg_restore -j restores, fingerprints inside the server",
    formats="drill.stores.postgres.formats:READER",  # pg_dump archives, (gzip'd) SQL, base_backup_*.tar.gz
    shared_provisioner=f"{_PROVISION}:provision_shared",  # a database on the run's shared cluster (shared.py)
)


def __getattr__(name: str) -> object:
    """The adapter's names (`from drill.stores.postgres import PostgresStore`), imported when first asked for."""
    return getattr(importlib.import_module("drill.stores.postgres.store"), name)

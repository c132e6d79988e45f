"""SQLite stores: a database file, throwaway (local) or an existing file (live). A third-party kind.

This declaration is all drill reads until a SQLite store is provisioned: keep it free of heavy
imports. The adapter is drill_sqlite.store, the kind's own sentence drill_sqlite.steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from drill.stores.capabilities import Removable, RunsSql
from drill.stores.kinds import KindOptions, KindSpec, matching, option


@dataclass(frozen=True)
class SqliteOptions(KindOptions):
    journal_mode: str = option("wal", matching(r"delete|truncate|persist|memory|wal|off",
                                               "must be one of SQLite's journal modes: delete, truncate, persist, "
                                               "memory, wal, off"),
                               "PRAGMA journal_mode of a throwaway database")


KIND = KindSpec(
    kind="sqlite", names=("SQLite",), unit="rows", part_label="table",
    provisioners={"local": "drill_sqlite.store:provision_local", "live": "drill_sqlite.store:provision_live"},
    options=SqliteOptions,
    capabilities=frozenset({RunsSql, Removable}),
    steps=("drill_sqlite.steps",),
    summary="a SQLite database file: online backups with the sqlite3 backup API, checked with integrity_check",
)

"""The one sentence only SQLite stores understand (registered by drill's plugin from KIND.steps)."""

from __future__ import annotations

from drill.errors import StoreError
from drill.scenario import DrillScenario
from drill.stores.base import Store
from drill.vocabulary import STORE, sentence
from drill_sqlite.store import SqliteStore


def _integrity(store: Store) -> None:
    if not isinstance(store, SqliteStore):
        raise StoreError(f"{store.name!r} is a {store.kind} store, not a SQLite one")
    store.check_integrity()


@sentence("then", rf"{STORE} passes SQLite's integrity check",
          "SQLite: PRAGMA integrity_check of the database file answers ok.",
          'Then "ledger" passes SQLite\'s integrity check')
def integrity_check(drill: DrillScenario, store: str) -> None:
    drill.verify(store, _integrity)

"""Sentences about stores: declared, seeded, written to with SQL."""

from __future__ import annotations

from drill.scenario import DrillScenario
from drill.stores.capabilities import RunsSql
from drill.vocabulary import COUNT, KINDS, STORE, UNITS, parse_count, sentence


@sentence("given", rf"the {KINDS} store {STORE}",
          "Declares a store and provisions it as drill.toml says (local throwaway cluster by default).",
          'Given the PostgreSQL store "userdb"')
def declare_store(drill: DrillScenario, kind: str, store: str) -> None:
    """A throwaway local server by default, a container with `provision = "container"`, or a live server with
    `provision = "live"`. The kind is any kind's name in sentences (see "Store kinds"). Declaring the same name
    twice in a scenario is a no-op. A database-like store's name is `database` from drill.toml, else (live) the
    URL's, else the store name."""
    drill.declare(kind, store)


@sentence("given when", rf"{STORE} is seeded with {COUNT} {UNITS}",
          "Fills the store with deterministic seed data: N rows in all (PostgreSQL: users, orders, order_items).",
          'Given "userdb" is seeded with 10000 rows', converters={"count": parse_count})
def seed(drill: DrillScenario, store: str, count: int, unit: str) -> None:
    """N items in all (the count is scaled by `seed_scale`): the same N always gives identical data. PostgreSQL creates
    `users` (about N/5), `orders` and `order_items` with foreign keys, NULLs, jsonb, bytea and non-ASCII text; Redis
    writes N keys of every type (some with TTLs) in db0; MongoDB N documents across `notifications`, `users` and
    `templates` with indexes; GCS N objects in the runbook's mix; Firestore N documents across collections and
    subcollections; a Docker volume N files under `seed/`. It refuses when the seed's tables (collections, ...)
    already exist. On a live store it needs `allow_writes`."""
    drill.seed(store, count, unit)


@sentence("given when", rf"SQL is run on {STORE}:?",
          "Runs the SQL of the step's doc string on a PostgreSQL store (setup, or a planted fault).",
          'When SQL is run on "userdb":', needs=RunsSql)
def run_sql(drill: DrillScenario, store: str, docstring: str) -> None:
    """The SQL is the step's doc string (the block between triple quotes under the step), for extra setup or to plant a
    fault. The trailing colon is optional. On a live store it needs `allow_writes`. Its time is recorded as the
    `sql` phase."""
    drill.run_sql(store, docstring)

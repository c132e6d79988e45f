"""Sentences about stores: declared, seeded, written to with SQL."""

from __future__ import annotations

from drill.scenario import DrillScenario
from drill.stores.capabilities import RunsSql
from drill.vocabulary import COUNT, KINDS, STORE, UNITS, parse_count, sentence


@sentence("given", rf"the {KINDS} store {STORE}",
          "Declares a store and provisions it as drill.toml says (local throwaway cluster by default).",
          'Given the PostgreSQL store "userdb"')
def declare_store(drill: DrillScenario, kind: str, store: str) -> None:
    drill.declare(kind, store)


@sentence("given when", rf"{STORE} is seeded with {COUNT} {UNITS}",
          "Fills the store with deterministic seed data: N rows in all (PostgreSQL: users, orders, order_items).",
          'Given "userdb" is seeded with 10000 rows', converters={"count": parse_count})
def seed(drill: DrillScenario, store: str, count: int, unit: str) -> None:
    drill.seed(store, count, unit)


@sentence("given when", rf"SQL is run on {STORE}:?",
          "Runs the SQL of the step's doc string on a PostgreSQL store (setup, or a planted fault).",
          'When SQL is run on "userdb":', needs=RunsSql)
def run_sql(drill: DrillScenario, store: str, docstring: str) -> None:
    drill.run_sql(store, docstring)

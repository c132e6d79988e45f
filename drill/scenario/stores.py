"""Stores of a scenario: declared (provisioned as drill.toml says), seeded, written to with SQL."""

from __future__ import annotations

from typing import Any

from drill import rollback
from drill.errors import StoreError
from drill.names import check_name
from drill.pause import pause_point
from drill.provision import sharing
from drill.provision.factory import provision
from drill.scenario.live_stores import LiveStores
from drill.scenario.state import ScenarioState
from drill.stores import capabilities, kinds
from drill.stores.base import Store
from drill.stores.capabilities import RunsSql


class Stores:
    def __init__(self, state: ScenarioState, live: LiveStores) -> None:
        self.state = state
        self.live = live

    def declare(self, kind_name: str, name: str, *, options: dict[str, Any] | None = None) -> Store:
        """Provision the store a sentence names; `options` are kind keys the sentence sets (as drill.toml would)."""
        state = self.state
        kind = kinds.by_sentence_name(kind_name).kind
        check_name(name, "store name")
        if name in state.stores:
            if state.stores[name].kind != kind:
                raise StoreError(f"store {name!r} is declared again as a {kind_name} store; it is a "
                                 f"{state.stores[name].kind} store in this scenario: give the other store its own name")
            return state.stores[name]
        store_config = state.config.store(name, kind)
        if options:
            store_config = store_config.with_options(options, f"the step at line {state.current_line}")
        # The common small scenario's local store gets a database on the run's shared server (drill.provision.sharing).
        shared = (state.config.shared_servers and not options
                  and sharing.scenario_qualifies(step.text for step in state.result.steps))
        with state.clock.phase("provision", name):
            store = provision(store_config, state.cleanup, state.reporter.info, shared=shared)
        state.cleanup.push(f"close {name!r}", store.close)
        pause_point(f"provisioned:{name}")
        state.stores[name] = store
        state.evidence.stores[name] = store.describe()
        self._check_interrupted_restore(store)
        return store

    def _check_interrupted_restore(self, store: Store) -> None:
        """A journal left by a drill killed mid-restore: repair the store (live) or report it (throwaway)."""
        state = self.state
        found = rollback.interrupted(state.config.backup_dir_for(store.config), store.name)
        if found is None:
            return
        if store.config.is_live:
            state.info(f"{store.name}: {found.describe()}; rolling it back from the safety copy")
            outcome = rollback.repair(store, found, state.reporter.info)
        else:
            outcome = {"interrupted": found.describe(), "outcome": "reported",
                       "detail": "the half-restored store was a throwaway local server, removed with it; "
                                 "this run provisioned a new one"}
            rollback.forget(found)
        state.info(f"{store.name}: interrupted restore {outcome['outcome']} ({found.describe()})")
        state.evidence.interrupted_restores[store.name] = outcome

    def seed(self, name: str, count: int, unit: str) -> None:
        state = self.state
        store = state.store(name)
        check_unit(store, unit)
        scaled = state.config.scaled(count)
        store.require_writes("seed")  # refused before the safety net copies anything
        self.live.arm(store, "seeded")
        self.live.changed(store, "written", f"seeded with {scaled} {store.unit}")
        with state.clock.phase("seed", name):
            store.seed(scaled, state.reporter.info)
        state.evidence.seeded[name] = scaled

    def run_sql(self, name: str, text: str) -> None:
        state = self.state
        store = state.store(name)
        if not isinstance(store, RunsSql):
            raise StoreError(capabilities.lacks(name, store.kind, RunsSql, "running SQL"))
        store.require_writes("run SQL on")
        self.live.arm(store, "changed by SQL")
        self.live.changed(store, "written", "SQL was run on it")
        with state.clock.phase("sql", name):
            store.execute_sql(text)


def check_unit(store: Store, unit: str) -> None:
    """The unit a sentence counts in must be the store's (its kind declares it: rows, keys, ...)."""
    spec = kinds.spec(store.kind)
    if unit not in (spec.unit, spec.unit_one):
        raise StoreError(f"a {spec.display_name} store holds {spec.unit}, not {unit}: write `{spec.unit}` for "
                         f"{store.name!r}")

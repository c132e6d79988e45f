"""drill.toml's parsed tables turned into a Config, every complaint pointing at file and line.

The validator walks the file in order and hands each table to its reader (store_tables,
target_tables, repository_table, notify_table, drill_table); it keeps what spans tables: profiles
and the stores' dependencies. Its *_KEYS sets are the catalogue of accepted keys that the
configuration reference is checked against (drill.config_keys).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from drill.config.drill_table import DRILL_KEYS, read_history_location, read_rollback_policy
from drill.config.model import Config, default_config
from drill.config.notify_table import NOTIFY_KEYS, read_notify
from drill.config.reader import TomlReader
from drill.config.repository_table import REPOSITORY_KEYS, read_repository
from drill.config.store_tables import COMMON_STORE_KEYS, every_store_key, read_store
from drill.config.target_tables import CONTROL_KEYS, TIER_KEYS, read_controls, read_tier
from drill.errors import ConfigError


class _EveryStoreKey:
    """`_Validator.STORE_KEYS`: read when asked, since the kinds are found after this module is loaded."""

    def __get__(self, instance: object, owner: type | None = None) -> frozenset[str]:
        return every_store_key()


class _Validator(TomlReader):
    """Turns the parsed TOML into a Config, pointing every complaint at file and line."""

    TOP_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"drill", "tiers", "stores", "profiles", "repository", "notify", "controls"})
    CONTROL_KEYS: ClassVar[frozenset[str]] = CONTROL_KEYS
    REPOSITORY_KEYS: ClassVar[frozenset[str]] = REPOSITORY_KEYS
    NOTIFY_KEYS: ClassVar[frozenset[str]] = NOTIFY_KEYS
    DRILL_KEYS: ClassVar[frozenset[str]] = DRILL_KEYS
    TIER_KEYS: ClassVar[frozenset[str]] = TIER_KEYS
    COMMON_STORE_KEYS: ClassVar[frozenset[str]] = COMMON_STORE_KEYS
    STORE_KEYS = _EveryStoreKey()  # the common keys and every kind's own (docs: reference/configuration.md)
    PROFILE_KEYS: ClassVar[frozenset[str]] = frozenset({"stores", "seed_scale", "tiers", "backup_dir", "self_test"})

    def build(self, data: dict[str, Any], profile: str | None) -> Config:
        for key in data:
            if key not in self.TOP_KEYS:
                raise ConfigError(f"unknown table {key!r}; allowed: {', '.join(sorted(self.TOP_KEYS))}",
                                  path=self.path, line=self.locate(key, None), key=key)
        base_dir = self.path.resolve().parent
        drill_table = self.table("", data, "drill")
        self.check_keys("drill", drill_table, self.DRILL_KEYS)
        defaults = default_config(base_dir)

        tiers = dict(defaults.tiers)
        for name, tier in self.table("", data, "tiers").items():
            tiers[name] = read_tier(self, f"tiers.{name}", name, tier, tiers.get(name))

        stores = {}
        for name, store in self.table("", data, "stores").items():
            stores[name] = read_store(self, f"stores.{name}", name, store)

        profiles = self.table("", data, "profiles")
        for name, prof in profiles.items():
            if not isinstance(prof, dict):
                raise self.error("must be a table", f"profiles.{name}")
            self.check_keys(f"profiles.{name}", prof, self.PROFILE_KEYS)

        config = Config(
            path=self.path, base_dir=base_dir,
            backup_dir=self.path_value("drill", drill_table, "backup_dir", defaults.backup_dir, base_dir),
            report_dir=self.path_value("drill", drill_table, "report_dir", defaults.report_dir, base_dir),
            tiers=tiers, stores=stores, profiles=profiles,
            seed_scale=self.scale("drill", drill_table),
            plugins=tuple(self.string_list("drill", drill_table, "plugins")),
            repository=read_repository(self, self.table("", data, "repository"), base_dir),
            notify=read_notify(self, self.table("", data, "notify")),
            rollback=read_rollback_policy(self, drill_table),
            stages=tuple(self.string_list("drill", drill_table, "stages")) if "stages" in drill_table
            else defaults.stages,
            signing_key_file=self.optional_path("drill", drill_table, "signing_key_file", base_dir),
            signing_public_key=self.optional_path("drill", drill_table, "signing_public_key", base_dir),
            controls=read_controls(self, self.table("", data, "controls")),
            history=read_history_location(self, drill_table),
            backup_time_zone=self.time_zone("drill", drill_table) if "backup_time_zone" in drill_table
            else defaults.backup_time_zone,
            self_test=self.flag("drill", drill_table, "self_test", defaults.self_test),
            shared_servers=self.flag("drill", drill_table, "shared_servers", defaults.shared_servers),
        )
        for name in profiles:  # every profile is validated now, not only when it is first used
            self.apply_profile(config, name)
        chosen = profile or drill_table.get("default_profile")
        if chosen is not None:
            config = self.apply_profile(config, str(chosen))
        self.check_dependencies(config)
        return config

    def apply_profile(self, config: Config, name: str) -> Config:
        if name not in config.profiles:
            available = ", ".join(sorted(config.profiles)) or "none defined"
            raise ConfigError(f"unknown profile {name!r}; profiles in this file: {available}",
                              path=self.path, key=f"profiles.{name}")
        prof = config.profiles[name]
        table = f"profiles.{name}"
        stores = dict(config.stores)
        for store_name, overrides in self.table(table, prof, "stores").items():
            stores[store_name] = replace(read_store(self, f"{table}.stores.{store_name}", store_name, overrides,
                                                    config.stores.get(store_name)), profile=name)
        tiers = dict(config.tiers)
        for tier_name, tier in self.table(table, prof, "tiers").items():
            tiers[tier_name] = read_tier(self, f"{table}.tiers.{tier_name}", tier_name, tier, tiers.get(tier_name))
        return replace(
            config, profile=name, stores=stores, tiers=tiers,
            seed_scale=self.scale(table, prof) if "seed_scale" in prof else config.seed_scale,
            backup_dir=self.path_value(table, prof, "backup_dir", config.backup_dir, config.base_dir),
            self_test=self.flag(table, prof, "self_test", config.self_test),
        )

    def check_dependencies(self, config: Config) -> None:
        for store in config.stores.values():
            if store.stage is not None and store.stage not in config.stages:
                raise self.error(f"stage {store.stage!r} is not one of the stages in [drill] stages: "
                                 f"{', '.join(config.stages)}", f"stores.{store.name}", "stage")
            for dep in store.depends_on:
                if dep not in config.stores:
                    raise self.error(f"depends on {dep!r}, which is not a configured store",
                                     f"stores.{store.name}", "depends_on")

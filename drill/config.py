"""drill.toml: stores, target tiers, backup location and profiles, validated with file:line errors.

The file is optional. Without it every store a feature names is provisioned locally (the
embedded default) and the tiers of the seed runbook apply.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from drill.durations import DurationError, parse_duration
from drill.errors import ConfigError

STORE_KINDS = ("postgres", "mongodb", "redis", "volume", "gcs", "firestore")
PROVISION_MODES = ("local", "container", "live")
CONFIG_FILENAME = "drill.toml"

# The seed runbook's service priority levels (RTO) and its single RPO target.
DEFAULT_TIERS: dict[str, tuple[float, float]] = {
    "critical": (30 * 60, 3600),
    "important": (2 * 3600, 3600),
    "standard": (4 * 3600, 3600),
}


@dataclass(frozen=True)
class Tier:
    name: str
    rto: float  # seconds
    rpo: float  # seconds


@dataclass(frozen=True)
class StoreConfig:
    """How one named store comes to exist and what a drill may do to it."""

    name: str
    kind: str
    provision: str = "local"
    database: str | None = None  # postgres: the database name (default: the store name)
    url_env: str | None = None  # live: environment variable holding the connection URL
    destructive: bool = False  # live: may a drill lose, drop or overwrite it
    allow_writes: bool = False  # live: may a drill seed it and write RPO markers into it
    restore_jobs: int | None = None  # postgres: pg_restore -j (default: CPU count, at most 4)
    image: str | None = None  # container: image reference (a later seam; see README)
    depends_on: tuple[str, ...] = ()
    pitr: bool = False  # postgres, local: archive WAL so the store can be recovered to a point in time
    restore_timeout: float | None = None  # seconds a restore may take before it is stopped (and rolled back)
    stage: str | None = None  # whole-system restores: the stage the store is restored in (see [drill] stages)
    rto: float | None = None  # whole-system restores: this store's own recovery time target (seconds)

    @property
    def is_live(self) -> bool:
        return self.provision == "live"


@dataclass(frozen=True)
class Config:
    path: Path | None
    base_dir: Path
    backup_dir: Path
    report_dir: Path
    tiers: dict[str, Tier]
    stores: dict[str, StoreConfig]
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    profile: str | None = None
    seed_scale: float = 1.0
    plugins: tuple[str, ...] = ()
    rollback: str = "never"  # rollback policy of every scenario: always | on-failure | never
    stages: tuple[str, ...] = ("infrastructure", "data", "application")  # whole-system restore order

    def store(self, name: str, kind: str) -> StoreConfig:
        """The configuration of a store a feature names; unnamed stores are local, of the named kind."""
        found = self.stores.get(name)
        if found is None:
            return StoreConfig(name=name, kind=kind)
        if found.kind != kind:
            raise ConfigError(f"the feature uses store {name!r} as {kind} but it is configured as kind "
                              f"{found.kind!r}", path=self.path, key=f"stores.{name}.kind")
        return found

    def scaled(self, count: int) -> int:
        """A seed or count figure under the profile's seed_scale (never below 1)."""
        if self.seed_scale == 1.0:
            return count
        return max(1, round(count * self.seed_scale))

    def digest(self) -> str:
        """sha256 of the effective configuration. Holds names of env vars, never their values."""
        payload = {
            "profile": self.profile,
            "seed_scale": self.seed_scale,
            "tiers": {k: asdict(v) for k, v in sorted(self.tiers.items())},
            "stores": {k: asdict(v) for k, v in sorted(self.stores.items())},
            "backup_dir": str(self.backup_dir),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def default_config(base_dir: Path | None = None) -> Config:
    base = (base_dir or Path.cwd()).resolve()
    return Config(
        path=None, base_dir=base, backup_dir=base / "backups", report_dir=base / "reports",
        tiers={n: Tier(n, rto, rpo) for n, (rto, rpo) in DEFAULT_TIERS.items()}, stores={},
    )


def find_config(explicit: Path | None = None) -> Path | None:
    """--config, else $DRILL_CONFIG, else ./drill.toml; None when there is none (embedded default)."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError("no such configuration file; pass an existing drill.toml to --config",
                              path=explicit)
        return explicit
    env = os.environ.get("DRILL_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError("DRILL_CONFIG names a file that does not exist", path=path)
        return path
    local = Path.cwd() / CONFIG_FILENAME
    return local if local.is_file() else None


def load_config(path: Path | None = None, *, profile: str | None = None) -> Config:
    """Read and validate drill.toml (or the defaults when there is none), then apply a profile."""
    found = find_config(path)
    if found is None:
        config = default_config()
        if profile is not None:
            raise ConfigError(f"profile {profile!r} asked for, but there is no {CONFIG_FILENAME} "
                              f"(looked in {Path.cwd()}); create one with a [profiles.{profile}] table")
        return config
    text = found.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _line_from_toml_error(str(exc))
        raise ConfigError(f"not valid TOML: {exc}", path=found, line=line) from None
    return _Validator(found, text).build(data, profile)


def _line_from_toml_error(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


class _Validator:
    """Turns the parsed TOML into a Config, pointing every complaint at file and line."""

    TOP_KEYS: ClassVar[frozenset[str]] = frozenset({"drill", "tiers", "stores", "profiles"})
    DRILL_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"backup_dir", "report_dir", "default_profile", "seed_scale", "plugins", "rollback", "stages"})
    TIER_KEYS: ClassVar[frozenset[str]] = frozenset({"rto", "rpo"})
    STORE_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"kind", "provision", "database", "url_env", "destructive", "allow_writes", "restore_jobs", "image",
         "depends_on", "pitr", "restore_timeout", "stage", "rto"})
    PROFILE_KEYS: ClassVar[frozenset[str]] = frozenset({"stores", "seed_scale", "tiers", "backup_dir"})

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def error(self, message: str, table: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, path=self.path, line=self.locate(table, key),
                           key=f"{table}.{key}" if key else table)

    def locate(self, table: str, key: str | None) -> int | None:
        """Line of `key` inside `[table]` (or of the table header); best effort, 1-based."""
        header = re.compile(r"^\s*\[+\s*" + r"\s*\.\s*".join(
            rf'(?:{re.escape(p)}|"{re.escape(p)}")' for p in table.split(".")) + r"\s*\]+\s*(#.*)?$")
        in_table = False
        header_line: int | None = None
        for number, line in enumerate(self.lines, start=1):
            stripped = line.strip()
            if stripped.startswith("["):
                in_table = bool(header.match(stripped))
                if in_table and header_line is None:
                    header_line = number
                continue
            if in_table and key is not None and re.match(rf'^\s*"?{re.escape(key)}"?\s*=', line):
                return number
        if header_line is None:
            # A sub-table such as [storez.db] of a table that has no header of its own.
            prefix = re.compile(r"^\s*\[+\s*" + re.escape(table) + r"\s*[.\]]")
            header_line = next((n for n, line in enumerate(self.lines, start=1) if prefix.match(line)), None)
        if header_line is None and key is not None:
            # Dotted keys or inline tables: fall back to the first mention of the key.
            for number, line in enumerate(self.lines, start=1):
                if re.match(rf'^\s*(?:[\w."-]+\.)?"?{re.escape(key)}"?\s*=', line):
                    return number
        return header_line

    def check_keys(self, table: str, data: dict[str, Any], allowed: frozenset[str]) -> None:
        for key in data:
            if key not in allowed:
                raise self.error(f"unknown key {key!r}; allowed here: {', '.join(sorted(allowed))}",
                                 table, key)

    def table(self, parent: str, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(f"must be a table ([{parent + '.' if parent else ''}{key}])", parent or key, key)
        return value

    def duration(self, table: str, data: dict[str, Any], key: str) -> float:
        value = data[key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, str):
            raise self.error("must be a duration string such as \"30m\" or \"2 hours\"", table, key)
        try:
            return parse_duration(value)
        except DurationError as exc:
            raise self.error(str(exc), table, key) from None

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
            tiers[name] = self.tier(f"tiers.{name}", name, tier, tiers.get(name))

        stores = {}
        for name, store in self.table("", data, "stores").items():
            stores[name] = self.store(f"stores.{name}", name, store)

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
            rollback=self.rollback_policy(drill_table),
            stages=tuple(self.string_list("drill", drill_table, "stages")) if "stages" in drill_table
            else defaults.stages,
        )
        for name in profiles:  # every profile is validated now, not only when it is first used
            self.apply_profile(config, name)
        chosen = profile or drill_table.get("default_profile")
        if chosen is not None:
            config = self.apply_profile(config, str(chosen))
        self.check_dependencies(config)
        return config

    def tier(self, table: str, name: str, data: Any, inherited: Tier | None) -> Tier:
        if not isinstance(data, dict):
            raise self.error("must be a table with rto and rpo", table)
        self.check_keys(table, data, self.TIER_KEYS)
        if inherited is None and not {"rto", "rpo"} <= data.keys():
            raise self.error("a new tier needs both rto and rpo", table)
        rto = self.duration(table, data, "rto") if "rto" in data else inherited.rto  # type: ignore[union-attr]
        rpo = self.duration(table, data, "rpo") if "rpo" in data else inherited.rpo  # type: ignore[union-attr]
        return Tier(name, rto, rpo)

    def store(self, table: str, name: str, data: Any, base: StoreConfig | None = None) -> StoreConfig:
        if not isinstance(data, dict):
            raise self.error("must be a table", table)
        self.check_keys(table, data, self.STORE_KEYS)
        kind = data.get("kind", base.kind if base else None)
        if kind is None:
            raise self.error(f"missing; one of: {', '.join(STORE_KINDS)}", table, "kind")
        if kind not in STORE_KINDS:
            raise self.error(f"{kind!r} is not a store kind; one of: {', '.join(STORE_KINDS)}", table, "kind")
        provision = data.get("provision", base.provision if base else "local")
        if provision not in PROVISION_MODES:
            raise self.error(f"{provision!r} is not allowed; one of: {', '.join(PROVISION_MODES)}",
                             table, "provision")
        for flag in ("destructive", "allow_writes", "pitr"):
            if flag in data and not isinstance(data[flag], bool):
                raise self.error("must be true or false", table, flag)
        for text_key in ("database", "url_env", "image", "stage"):
            if text_key in data and not (isinstance(data[text_key], str) and data[text_key]):
                raise self.error("must be a non-empty string", table, text_key)
        if "url_env" in data and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", data["url_env"]):
            raise self.error("must be the NAME of an environment variable (the URL itself never goes in "
                             "drill.toml, so that its password stays out of files)", table, "url_env")
        jobs = data.get("restore_jobs", base.restore_jobs if base else None)
        if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
            raise self.error("must be a whole number of at least 1", table, "restore_jobs")
        merged = replace(
            base or StoreConfig(name=name, kind=kind),
            kind=kind, provision=provision,
            database=data.get("database", base.database if base else None),
            url_env=data.get("url_env", base.url_env if base else None),
            destructive=data.get("destructive", base.destructive if base else False),
            allow_writes=data.get("allow_writes", base.allow_writes if base else False),
            restore_jobs=jobs,
            image=data.get("image", base.image if base else None),
            depends_on=tuple(self.string_list(table, data, "depends_on")) if "depends_on" in data
            else (base.depends_on if base else ()),
            pitr=data.get("pitr", base.pitr if base else False),
            restore_timeout=self.duration(table, data, "restore_timeout") if "restore_timeout" in data
            else (base.restore_timeout if base else None),
            stage=data.get("stage", base.stage if base else None),
            rto=self.duration(table, data, "rto") if "rto" in data else (base.rto if base else None),
        )
        if merged.pitr and (merged.kind != "postgres" or merged.provision != "local"):
            raise self.error("point-in-time recovery (pitr = true) is available for local PostgreSQL stores only",
                             table, "pitr")
        if merged.provision == "live" and not merged.url_env:
            raise self.error("a live store needs url_env: the name of the environment variable that holds "
                             "its connection URL", table, "provision")
        return merged

    def rollback_policy(self, data: dict[str, Any]) -> str:
        value = data.get("rollback", "never")
        if value not in ("always", "on-failure", "never"):
            raise self.error("must be one of: always, on-failure, never", "drill", "rollback")
        return str(value)

    def string_list(self, table: str, data: dict[str, Any], key: str) -> list[str]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error("must be a list of strings", table, key)
        return value

    def scale(self, table: str, data: dict[str, Any]) -> float:
        value = data.get("seed_scale", 1.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.error("must be a number above 0 (1 = the sizes the features say)", table, "seed_scale")
        return float(value)

    def path_value(self, table: str, data: dict[str, Any], key: str, default: Path, base: Path) -> Path:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise self.error("must be a path (relative to drill.toml, or absolute)", table, key)
        return (base / value).resolve()

    def apply_profile(self, config: Config, name: str) -> Config:
        if name not in config.profiles:
            available = ", ".join(sorted(config.profiles)) or "none defined"
            raise ConfigError(f"unknown profile {name!r}; profiles in this file: {available}",
                              path=self.path, key=f"profiles.{name}")
        prof = config.profiles[name]
        table = f"profiles.{name}"
        stores = dict(config.stores)
        for store_name, overrides in self.table(table, prof, "stores").items():
            stores[store_name] = self.store(f"{table}.stores.{store_name}", store_name, overrides,
                                            config.stores.get(store_name))
        tiers = dict(config.tiers)
        for tier_name, tier in self.table(table, prof, "tiers").items():
            tiers[tier_name] = self.tier(f"{table}.tiers.{tier_name}", tier_name, tier, tiers.get(tier_name))
        return replace(
            config, profile=name, stores=stores, tiers=tiers,
            seed_scale=self.scale(table, prof) if "seed_scale" in prof else config.seed_scale,
            backup_dir=self.path_value(table, prof, "backup_dir", config.backup_dir, config.base_dir),
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

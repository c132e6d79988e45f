"""drill.toml: stores, target tiers, backup location and profiles, validated with file:line errors.

The file is optional. Without it every store a feature names is provisioned locally (the
embedded default) and the tiers of the seed runbook apply.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from drill.durations import DurationError, parse_duration
from drill.errors import ConfigError
from drill.stores import kinds
from drill.stores.kinds import PROVISION_MODES, KindOptions, KindSpec, OptionError

CONFIG_FILENAME = "drill.toml"
STORE_KINDS = kinds.KindTable(lambda: {k: k for k in kinds.all_kinds()})  # every kind's name (drill.stores.kinds)
_CONTROL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

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


@dataclass(frozen=True, init=False)
class StoreConfig:
    """How one named store comes to exist and what a drill may do to it.

    The common keys are typed fields; the keys of one kind only (a PostgreSQL `database`, a Redis
    `appendonly`, ...) are that kind's typed options object (drill.stores.kinds.KindOptions),
    declared by the kind itself. `StoreConfig(name, kind, database="x")` still reads: a kind key
    given by name goes into the options, and reads back as `config.database`.
    """

    name: str
    kind: str
    provision: str = "local"
    url_env: str | None = None  # live: environment variable holding the connection URL
    destructive: bool = False  # live: may a drill lose, drop or overwrite it
    allow_writes: bool = False  # live: may a drill seed it and write RPO markers into it
    depends_on: tuple[str, ...] = ()
    restore_timeout: float | None = None  # seconds a restore may take before it is stopped (and rolled back)
    stage: str | None = None  # whole-system restores: the stage the store is restored in (see [drill] stages)
    rto: float | None = None  # whole-system restores: this store's own recovery time target (seconds)
    backups: str | None = None  # a glob of backups made outside drill (`drill backups list|verify` cover them)
    canary_interval: float | None = None  # seconds between two `drill canary` runs (cron); None: 1 hour
    backup_time_zone: str | None = None  # the zone of the dates in its backups' file names (None: [drill]'s)
    options: KindOptions = field(default_factory=KindOptions)  # the kind's own keys
    profile: str | None = None  # the profile whose [profiles.P.stores.NAME] table changed this store, if any

    def __init__(self, name: str, kind: str, provision: str = "local", url_env: str | None = None,
                 destructive: bool = False, allow_writes: bool = False, depends_on: tuple[str, ...] = (),
                 restore_timeout: float | None = None, stage: str | None = None, rto: float | None = None,
                 backups: str | None = None, canary_interval: float | None = None,
                 backup_time_zone: str | None = None, options: KindOptions | None = None, profile: str | None = None,
                 **kind_options: Any) -> None:
        values = {"name": name, "kind": kind, "provision": provision, "url_env": url_env,
                  "destructive": destructive, "allow_writes": allow_writes, "depends_on": tuple(depends_on),
                  "restore_timeout": restore_timeout, "stage": stage, "rto": rto, "backups": backups,
                  "canary_interval": canary_interval, "backup_time_zone": backup_time_zone,
                  "options": _kind_options(name, kind, options, kind_options), "profile": profile}
        for key, value in values.items():
            object.__setattr__(self, key, value)

    @property
    def table(self) -> str:
        """Where a setting of this store goes in drill.toml, for messages: the profile's table when one applies."""
        return f"profiles.{self.profile}.stores.{self.name}" if self.profile else f"stores.{self.name}"

    def consent(self) -> str:
        """Where a setting (destructive, allow_writes) of this store comes from, as a message names it."""
        where = f"[{self.table}]"
        return f"{where} (profile {self.profile!r}, which this run uses)" if self.profile else where

    @property
    def is_live(self) -> bool:
        return self.provision == "live"

    @property
    def read_only(self) -> bool:
        """A live store that allows neither writes nor destruction: drill only reads it (a query check too)."""
        return self.is_live and not (self.allow_writes or self.destructive)

    def with_options(self, values: dict[str, Any], where: str) -> StoreConfig:
        """This store with some of its kind's keys set (read and checked as in drill.toml; `where` set them)."""
        try:
            changed = replace(self, options=type(self.options).read(values, self.options))
            changed.options.check(changed)
        except OptionError as exc:
            raise ConfigError(f"{exc.message} ({where})", key=f"stores.{self.name}.{exc.key}") from None
        return changed

    def flat(self) -> dict[str, Any]:
        """Every key as drill.toml spells it, common and kind's own (the configuration digest reads this)."""
        common = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("options", "profile")
                  and not (f.name in _LATER_KEYS and getattr(self, f.name) is None)}
        return {**common, **asdict(self.options)}

    if not TYPE_CHECKING:  # typed code reads `config.options`; this keeps `config.database` readable
        def __getattr__(self, key: str) -> Any:
            options = self.__dict__.get("options")
            if options is not None and key in options.key_names():
                return getattr(options, key)
            raise AttributeError(f"{type(self).__name__} of a {self.__dict__.get('kind')} store has no {key!r}")


# Keys added after configuration digests were first recorded: left out while unset, so that the digest of a
# configuration that does not use them stays what it was.
_LATER_KEYS = frozenset({"backups", "canary_interval", "backup_time_zone"})


def _kind_options(name: str, kind: str, options: KindOptions | None, values: dict[str, Any]) -> KindOptions:
    spec = kinds.find(kind)
    if options is None:
        options = spec.options() if spec is not None else KindOptions()
    if not values:
        return options
    unknown = sorted(set(values) - set(options.key_names()))
    if unknown:
        raise ConfigError(f"store {name!r} ({kind}): {', '.join(unknown)} "
                          f"{'is not a key' if len(unknown) == 1 else 'are not keys'} of {kind} stores; "
                          f"its keys: {', '.join(options.key_names()) or 'none'}")
    return replace(options, **values)


@dataclass(frozen=True)
class RepositoryConfig:
    """[repository]: where `drill backup` keeps backups, their encryption and their retention."""

    path: Path | None = None  # None: [drill] backup_dir
    gcs: str | None = None  # path = "gs://bucket/prefix": the repository is that bucket prefix
    key_file: Path | None = None  # set: backups are encrypted (AES-256-GCM) with this key
    hourly: int = 24  # the runbook's HOURLY_RETENTION
    daily: int = 30  # RETENTION_DAILY
    weekly: int = 12  # RETENTION_WEEKLY
    monthly: int = 12  # RETENTION_MONTHLY
    log_file: Path | None = None  # None: <path>/drill-backup.log


def is_loopback_host(host: str) -> bool:
    """localhost or a loopback address literal: where an SMTP password may travel without TLS."""
    import ipaddress

    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class NotifyConfig:
    """[notify]: who hears about failed (and, if asked, successful) backups, restores and drills."""

    webhook_url_env: str | None = None  # env var NAME holding a Slack-compatible incoming-webhook URL
    email_to: tuple[str, ...] = ()
    email_from: str = "drill@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password_env: str | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False  # SMTPS: TLS from the first byte (port 465)
    on_success: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url_env or self.email_to)


@dataclass(frozen=True)
class ControlConfig:
    """[controls.ID]: an audit control (SOC 2, ISO 27001...) that drills tagged `@control:ID` evidence."""

    id: str
    title: str
    every: float  # seconds: the control requires a passing drill at least this often
    line: int | None = field(default=None, compare=False)  # where drill.toml declares it (for `drill check`)


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
    repository: RepositoryConfig = field(default_factory=RepositoryConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    rollback: str = "never"  # rollback policy of every scenario: always | on-failure | never
    stages: tuple[str, ...] = ("infrastructure", "data", "application")  # whole-system restore order
    signing_key_file: Path | None = None  # ed25519 private key: drill run signs results.json and the history
    signing_public_key: Path | None = None  # its public key: drill report --verify checks the signatures
    controls: dict[str, ControlConfig] = field(default_factory=dict)  # [controls.ID]
    backup_time_zone: str = "UTC"  # the zone of dates in backup file names (a store's own backup_time_zone wins)
    self_test: bool = False  # after a passing drill, plant a changed item in each restored copy and require it caught
    history: str | None = None  # [drill] history: a path, "repository" or gs://…/history.jsonl (None: report_dir's)
    worker_dir: Path | None = None  # a parallel worker's private folder (drill.parallel); None in a serial run

    def backup_dir_for(self, store: StoreConfig) -> Path:
        """Where a store's backups and rollback state go: a throwaway store on a parallel worker keeps them in the
        worker's private folder (two workers may run stores of the same name); a live store always in backup_dir,
        where the next run looks for the journal of a restore that was killed."""
        if self.worker_dir is not None and not store.is_live:
            return self.worker_dir
        return self.backup_dir

    @property
    def repository_path(self) -> Path:
        return self.repository.path or self.backup_dir

    def time_zone_of(self, store: str) -> str:
        """The zone the dates in a store's backup file names are written in (IANA name, e.g. Europe/Paris)."""
        found = self.stores.get(store)
        return (found.backup_time_zone if found is not None else None) or self.backup_time_zone

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
            "stores": {k: v.flat() for k, v in sorted(self.stores.items())},
            "backup_dir": str(self.backup_dir),
        }
        for key, default in (("backup_time_zone", "UTC"), ("self_test", False)):
            if getattr(self, key) != default:  # only when set, as controls below
                payload[key] = getattr(self, key)
        if self.controls:  # only when declared, so that digests of configurations without controls stay as they were
            payload["controls"] = {k: {"title": c.title, "every": c.every} for k, c in sorted(self.controls.items())}
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


class _EveryStoreKey:
    """`_Validator.STORE_KEYS`: read when asked, since the kinds are found after this module is loaded."""

    def __get__(self, instance: object, owner: type | None = None) -> frozenset[str]:
        return _Validator.COMMON_STORE_KEYS | frozenset(
            key for spec in kinds.all_kinds().values() for key in spec.options.key_names())


def _line_from_toml_error(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


class _Validator:
    """Turns the parsed TOML into a Config, pointing every complaint at file and line."""

    TOP_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"drill", "tiers", "stores", "profiles", "repository", "notify", "controls"})
    CONTROL_KEYS: ClassVar[frozenset[str]] = frozenset({"title", "every"})
    REPOSITORY_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"path", "key_file", "hourly", "daily", "weekly", "monthly", "log_file"})
    NOTIFY_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"webhook_url_env", "email_to", "email_from", "smtp_host", "smtp_port", "smtp_user", "smtp_password_env",
         "smtp_starttls", "smtp_ssl", "on_success"})
    DRILL_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"backup_dir", "report_dir", "default_profile", "seed_scale", "plugins", "rollback", "stages",
         "signing_key_file", "signing_public_key", "history", "backup_time_zone", "self_test"})
    TIER_KEYS: ClassVar[frozenset[str]] = frozenset({"rto", "rpo"})
    COMMON_STORE_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"kind", "provision", "url_env", "destructive", "allow_writes", "depends_on", "restore_timeout", "stage",
         "rto", "backups", "canary_interval", "backup_time_zone"})
    STORE_KEYS = _EveryStoreKey()  # the common keys and every kind's own (docs: reference/configuration.md)
    PROFILE_KEYS: ClassVar[frozenset[str]] = frozenset({"stores", "seed_scale", "tiers", "backup_dir", "self_test"})

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def error(self, message: str, table: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, path=self.path, line=self.locate(table, key),
                           key=f"{table}.{key}" if key else table)

    def locate(self, table: str, key: str | None) -> int | None:
        """Line of `key` inside `[table]` (or of the table header); best effort, 1-based."""
        parts = [p.strip('"') for p in re.findall(r'"[^"]*"|[^.]+', table)]  # controls."SOC2-CC7.5": 2 parts
        header = re.compile(r"^\s*\[+\s*" + r"\s*\.\s*".join(
            rf'(?:{re.escape(p)}|"{re.escape(p)}")' for p in parts) + r"\s*\]+\s*(#.*)?$")
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
            seconds = float(value)
        elif isinstance(value, str):
            try:
                seconds = parse_duration(value)
            except DurationError as exc:
                raise self.error(str(exc), table, key) from None
        else:
            raise self.error("must be a duration string such as \"30m\" or \"2 hours\"", table, key)
        # TOML has inf and nan; a target or time limit of 0, below 0, inf or nan can never mean anything.
        if not math.isfinite(seconds) or seconds <= 0:
            raise self.error(f"must be a duration above zero such as \"30m\" or \"2 hours\" (got {value!r})",
                             table, key)
        return seconds

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
            repository=self.repository(self.table("", data, "repository"), base_dir),
            notify=self.notify(self.table("", data, "notify")),
            rollback=self.rollback_policy(drill_table),
            stages=tuple(self.string_list("drill", drill_table, "stages")) if "stages" in drill_table
            else defaults.stages,
            signing_key_file=self.optional_path("drill", drill_table, "signing_key_file", base_dir),
            signing_public_key=self.optional_path("drill", drill_table, "signing_public_key", base_dir),
            controls=self.controls(self.table("", data, "controls")),
            history=self.history_location(drill_table),
            backup_time_zone=self.time_zone("drill", drill_table) if "backup_time_zone" in drill_table
            else defaults.backup_time_zone,
            self_test=self.flag("drill", drill_table, "self_test", defaults.self_test),
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
        """The common keys are read here; the kind's own keys by the kind's options (drill.stores.kinds)."""
        if not isinstance(data, dict):
            raise self.error("must be a table", table)
        known = kinds.all_kinds()
        kind = data.get("kind", base.kind if base else None)
        if kind is None:
            raise self.error(f"missing; one of: {', '.join(known)}", table, "kind")
        if kind not in known:
            raise self.error(f"{kind!r} is not a store kind; one of: {', '.join(known)}", table, "kind")
        spec = known[kind]
        self.check_store_keys(table, data, spec)
        provision = data.get("provision", base.provision if base else "local")
        if provision not in PROVISION_MODES:
            raise self.error(f"{provision!r} is not allowed; one of: {', '.join(PROVISION_MODES)}",
                             table, "provision")
        if provision not in spec.provisioners:
            raise self.error(f"provision = {provision!r} is not available for {kind} stores; one of: "
                             f"{', '.join(spec.provisioners)}", table, "provision")
        for flag in ("destructive", "allow_writes"):
            if flag in data and not isinstance(data[flag], bool):
                raise self.error("must be true or false", table, flag)
        for text_key in ("url_env", "stage", "backups"):
            if text_key in data and not (isinstance(data[text_key], str) and data[text_key]):
                raise self.error("must be a non-empty string", table, text_key)
        if "url_env" in data and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", data["url_env"]):
            raise self.error("must be the NAME of an environment variable (the URL itself never goes in "
                             "drill.toml, so that its password stays out of files)", table, "url_env")
        same_kind = base is not None and base.kind == kind
        try:
            options = spec.options.read(data, base.options if same_kind and base else None)
        except OptionError as exc:
            raise self.error(exc.message, table, exc.key) from None
        merged = StoreConfig(
            name=name, kind=kind, provision=provision, options=options,
            url_env=data.get("url_env", base.url_env if base else None),
            destructive=data.get("destructive", base.destructive if base else False),
            allow_writes=data.get("allow_writes", base.allow_writes if base else False),
            depends_on=tuple(self.string_list(table, data, "depends_on")) if "depends_on" in data
            else (base.depends_on if base else ()),
            restore_timeout=self.duration(table, data, "restore_timeout") if "restore_timeout" in data
            else (base.restore_timeout if base else None),
            stage=data.get("stage", base.stage if base else None),
            rto=self.duration(table, data, "rto") if "rto" in data else (base.rto if base else None),
            backups=data.get("backups", base.backups if base else None),
            canary_interval=self.positive_duration(table, data, "canary_interval") if "canary_interval" in data
            else (base.canary_interval if base else None),
            backup_time_zone=self.time_zone(table, data) if "backup_time_zone" in data
            else (base.backup_time_zone if base else None),
        )
        try:
            options.check(merged)
        except OptionError as exc:
            raise self.error(exc.message, table, exc.key) from None
        if merged.provision == "live" and spec.live_url and not merged.url_env:
            raise self.error("a live store needs url_env: the name of the environment variable that holds "
                             "its connection URL", table, "provision")
        return merged

    def check_store_keys(self, table: str, data: dict[str, Any], spec: KindSpec) -> None:
        """Common keys and the kind's own; a key of another kind says which kinds it applies to."""
        allowed = self.COMMON_STORE_KEYS | frozenset(spec.options.key_names())
        for key in data:
            if key in allowed:
                continue
            owners = [k for k in kinds.all_kinds().values() if key in k.options.key_names()]
            if owners:
                names = [k.kind for k in owners]
                listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
                raise self.error(f"only applies to {listed} stores (this store is {spec.kind}): "
                                 f"{owners[0].options.docs()[key]}", table, key)
            raise self.error(f"unknown key {key!r}; allowed here: {', '.join(sorted(allowed))}", table, key)

    def repository(self, data: dict[str, Any], base: Path) -> RepositoryConfig:
        self.check_keys("repository", data, self.REPOSITORY_KEYS)
        gcs = data.get("path")
        if isinstance(gcs, str) and gcs.startswith("gs://"):
            if not re.fullmatch(r"gs://[a-z0-9][a-z0-9._-]{1,221}[a-z0-9](/[^\s]*)?", gcs):
                raise self.error(f"{gcs!r} is not a GCS location; write gs://BUCKET/PREFIX", "repository", "path")
            data = {k: v for k, v in data.items() if k != "path"}
        else:
            gcs = None
        counts = {}
        for key in ("hourly", "daily", "weekly", "monthly"):
            value = data.get(key, getattr(RepositoryConfig, key))
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise self.error("must be a whole number of at least 0 (0 keeps none of this class)",
                                 "repository", key)
            counts[key] = value
        paths = {key: self.path_value("repository", data, key, base, base) if key in data else None
                 for key in ("path", "key_file", "log_file")}
        return RepositoryConfig(path=paths["path"], gcs=gcs, key_file=paths["key_file"], log_file=paths["log_file"],
                                hourly=counts["hourly"], daily=counts["daily"], weekly=counts["weekly"],
                                monthly=counts["monthly"])

    def notify(self, data: dict[str, Any]) -> NotifyConfig:
        self.check_keys("notify", data, self.NOTIFY_KEYS)
        for key in ("webhook_url_env", "smtp_password_env"):
            if key in data and not (isinstance(data[key], str)
                                    and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", data[key])):
                raise self.error("must be the NAME of an environment variable (the secret itself never goes in "
                                 "drill.toml)", "notify", key)
        for key in ("email_from", "smtp_host", "smtp_user"):
            if key in data and not (isinstance(data[key], str) and data[key]):
                raise self.error("must be a non-empty string", "notify", key)
        for key in ("smtp_starttls", "smtp_ssl", "on_success"):
            if key in data and not isinstance(data[key], bool):
                raise self.error("must be true or false", "notify", key)
        port = data.get("smtp_port", 25)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise self.error("must be a TCP port number (1-65535)", "notify", "smtp_port")
        if data.get("smtp_user") and not (data.get("smtp_starttls") or data.get("smtp_ssl")) \
                and not is_loopback_host(str(data.get("smtp_host", NotifyConfig.smtp_host))):
            raise self.error("logging in to an SMTP server that is not on this machine needs TLS, or the password "
                             "travels in clear text: set smtp_starttls = true (or smtp_ssl = true for SMTPS, port "
                             "465)", "notify", "smtp_user")
        email_to = self.string_list("notify", data, "email_to")
        if any("@" not in address for address in email_to):
            raise self.error("must be a list of e-mail addresses", "notify", "email_to")
        return NotifyConfig(
            webhook_url_env=data.get("webhook_url_env"), email_to=tuple(email_to),
            email_from=data.get("email_from", NotifyConfig.email_from),
            smtp_host=data.get("smtp_host", NotifyConfig.smtp_host), smtp_port=port,
            smtp_user=data.get("smtp_user"), smtp_password_env=data.get("smtp_password_env"),
            smtp_starttls=data.get("smtp_starttls", False), smtp_ssl=data.get("smtp_ssl", False),
            on_success=data.get("on_success", False))

    def controls(self, data: dict[str, Any]) -> dict[str, ControlConfig]:
        controls = {}
        for control_id, body in data.items():
            bare = re.fullmatch(r"[A-Za-z0-9_-]+", control_id)  # a TOML bare key; anything else is quoted
            table = f"controls.{control_id}" if bare else f'controls."{control_id}"'
            if not isinstance(body, dict):
                raise self.error("must be a table with title and every", table)
            if not body.keys() & self.CONTROL_KEYS and body and all(isinstance(v, dict) for v in body.values()):
                # [controls.SOC2-CC7.5] is read by TOML as the table "5" inside "SOC2-CC7"
                dotted = f"{control_id}.{next(iter(body))}"
                raise self.error(f"a control id with a dot must be quoted: write [controls.\"{dotted}\"] "
                                 f"(TOML reads [controls.{dotted}] as nested tables)", table)
            if not _CONTROL_ID.fullmatch(control_id):
                raise self.error("a control id is letters, digits, '.', '_' and '-' (e.g. \"SOC2-CC7.5\", "
                                 "\"ISO27001-A.8.13\"), as in the tag @control:ID", table)
            self.check_keys(table, body, self.CONTROL_KEYS)
            for key in ("title", "every"):
                if key not in body:
                    raise self.error("missing; a control needs a title and every (e.g. every = \"90 days\")",
                                     table, key)
            if not (isinstance(body["title"], str) and body["title"].strip()):
                raise self.error("must be a non-empty string", table, "title")
            every = self.duration(table, body, "every")
            if every <= 0:
                raise self.error("must be a duration above zero, e.g. \"90 days\"", table, "every")
            controls[control_id] = ControlConfig(control_id, body["title"].strip(), every,
                                                 line=self.locate(table, None))
        return controls

    def flag(self, table: str, data: dict[str, Any], key: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.error("must be true or false", table, key)
        return value

    def positive_duration(self, table: str, data: dict[str, Any], key: str) -> float:
        seconds = self.duration(table, data, key)
        if not seconds > 0:
            raise self.error("must be a duration above zero, e.g. \"1h\"", table, key)
        return seconds

    def time_zone(self, table: str, data: dict[str, Any]) -> str:
        from drill.backup_dates import TimeZoneError, zone

        value = data["backup_time_zone"]
        try:
            zone(value)
        except TimeZoneError as exc:
            raise self.error(str(exc), table, "backup_time_zone") from None
        return str(value)

    def history_location(self, data: dict[str, Any]) -> str | None:
        value = data.get("history")
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error('must be a path to a history.jsonl, "repository", or gs://BUCKET/PREFIX/history.jsonl',
                             "drill", "history")
        if value.startswith("gs://"):
            from drill.report.history_store import GCS_URL

            if not GCS_URL.fullmatch(value):
                raise self.error(f"{value!r} is not a history object; write gs://BUCKET/PREFIX/history.jsonl "
                                 f"(the object name ends in .jsonl)", "drill", "history")
        return value

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
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise self.error("must be a number above 0 (1 = the sizes the features say)", table, "seed_scale")
        return float(value)

    def path_value(self, table: str, data: dict[str, Any], key: str, default: Path, base: Path) -> Path:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise self.error("must be a path (relative to drill.toml, or absolute)", table, key)
        return (base / value).resolve()

    def optional_path(self, table: str, data: dict[str, Any], key: str, base: Path) -> Path | None:
        return self.path_value(table, data, key, base, base) if key in data else None

    def apply_profile(self, config: Config, name: str) -> Config:
        if name not in config.profiles:
            available = ", ".join(sorted(config.profiles)) or "none defined"
            raise ConfigError(f"unknown profile {name!r}; profiles in this file: {available}",
                              path=self.path, key=f"profiles.{name}")
        prof = config.profiles[name]
        table = f"profiles.{name}"
        stores = dict(config.stores)
        for store_name, overrides in self.table(table, prof, "stores").items():
            stores[store_name] = replace(self.store(f"{table}.stores.{store_name}", store_name, overrides,
                                                    config.stores.get(store_name)), profile=name)
        tiers = dict(config.tiers)
        for tier_name, tier in self.table(table, prof, "tiers").items():
            tiers[tier_name] = self.tier(f"{table}.tiers.{tier_name}", tier_name, tier, tiers.get(tier_name))
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

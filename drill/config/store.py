"""One named store's settings ([stores.NAME]): the common keys, and its kind's own as a typed options object."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from drill.errors import ConfigError
from drill.stores import kinds
from drill.stores.kinds import KindOptions, OptionError

STORE_KINDS = kinds.KindTable(lambda: {k: k for k in kinds.all_kinds()})  # every kind's name (drill.stores.kinds)


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

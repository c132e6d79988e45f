"""[stores.NAME] tables: the common keys are read here, the kind's own keys by the kind (drill.stores.kinds).

A profile's [profiles.P.stores.NAME] table goes through the same reader, over the store it changes.
"""

from __future__ import annotations

import re
from typing import Any

from drill.config.reader import TomlReader
from drill.config.store import StoreConfig
from drill.stores import kinds
from drill.stores.kinds import PROVISION_MODES, KindSpec, OptionError

COMMON_STORE_KEYS: frozenset[str] = frozenset(
    {"kind", "provision", "url_env", "destructive", "allow_writes", "depends_on", "restore_timeout", "stage",
     "rto", "backups", "canary_interval", "backup_time_zone"})


def every_store_key() -> frozenset[str]:
    """The common keys and every kind's own (read when asked: the kinds are found after this module is loaded)."""
    return COMMON_STORE_KEYS | frozenset(
        key for spec in kinds.all_kinds().values() for key in spec.options.key_names())


def read_store(reader: TomlReader, table: str, name: str, data: Any, base: StoreConfig | None = None) -> StoreConfig:
    """The common keys are read here; the kind's own keys by the kind's options (drill.stores.kinds)."""
    if not isinstance(data, dict):
        raise reader.error("must be a table", table)
    known = kinds.all_kinds()
    kind = data.get("kind", base.kind if base else None)
    if kind is None:
        raise reader.error(f"missing; one of: {', '.join(known)}", table, "kind")
    if kind not in known:
        raise reader.error(f"{kind!r} is not a store kind; one of: {', '.join(known)}", table, "kind")
    spec = known[kind]
    check_store_keys(reader, table, data, spec)
    provision = data.get("provision", base.provision if base else "local")
    if provision not in PROVISION_MODES:
        raise reader.error(f"{provision!r} is not allowed; one of: {', '.join(PROVISION_MODES)}",
                           table, "provision")
    if provision not in spec.provisioners:
        raise reader.error(f"provision = {provision!r} is not available for {kind} stores; one of: "
                           f"{', '.join(spec.provisioners)}", table, "provision")
    _check_common_values(reader, table, data)
    same_kind = base is not None and base.kind == kind
    try:
        options = spec.options.read(data, base.options if same_kind and base else None)
    except OptionError as exc:
        raise reader.error(exc.message, table, exc.key) from None
    merged = StoreConfig(
        name=name, kind=kind, provision=provision, options=options,
        url_env=data.get("url_env", base.url_env if base else None),
        destructive=data.get("destructive", base.destructive if base else False),
        allow_writes=data.get("allow_writes", base.allow_writes if base else False),
        depends_on=tuple(reader.string_list(table, data, "depends_on")) if "depends_on" in data
        else (base.depends_on if base else ()),
        restore_timeout=reader.duration(table, data, "restore_timeout") if "restore_timeout" in data
        else (base.restore_timeout if base else None),
        stage=data.get("stage", base.stage if base else None),
        rto=reader.duration(table, data, "rto") if "rto" in data else (base.rto if base else None),
        backups=data.get("backups", base.backups if base else None),
        canary_interval=reader.positive_duration(table, data, "canary_interval") if "canary_interval" in data
        else (base.canary_interval if base else None),
        backup_time_zone=reader.time_zone(table, data) if "backup_time_zone" in data
        else (base.backup_time_zone if base else None),
    )
    try:
        options.check(merged)
    except OptionError as exc:
        raise reader.error(exc.message, table, exc.key) from None
    if merged.provision == "live" and spec.live_url and not merged.url_env:
        raise reader.error("a live store needs url_env: the name of the environment variable that holds "
                           "its connection URL", table, "provision")
    return merged


def _check_common_values(reader: TomlReader, table: str, data: dict[str, Any]) -> None:
    """The flags and names every kind has, before the kind reads its own keys."""
    for flag in ("destructive", "allow_writes"):
        if flag in data and not isinstance(data[flag], bool):
            raise reader.error("must be true or false", table, flag)
    for text_key in ("url_env", "stage", "backups"):
        if text_key in data and not (isinstance(data[text_key], str) and data[text_key]):
            raise reader.error("must be a non-empty string", table, text_key)
    if "url_env" in data and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", data["url_env"]):
        raise reader.error("must be the NAME of an environment variable (the URL itself never goes in "
                           "drill.toml, so that its password stays out of files)", table, "url_env")


def check_store_keys(reader: TomlReader, table: str, data: dict[str, Any], spec: KindSpec) -> None:
    """Common keys and the kind's own; a key of another kind says which kinds it applies to."""
    allowed = COMMON_STORE_KEYS | frozenset(spec.options.key_names())
    for key in data:
        if key in allowed:
            continue
        owners = [k for k in kinds.all_kinds().values() if key in k.options.key_names()]
        if owners:
            names = [k.kind for k in owners]
            listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
            raise reader.error(f"only applies to {listed} stores (this store is {spec.kind}): "
                               f"{owners[0].options.docs()[key]}", table, key)
        raise reader.error(f"unknown key {key!r}; allowed here: {', '.join(sorted(allowed))}", table, key)

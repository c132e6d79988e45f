"""reference/configuration.md: every drill.toml key the validator accepts, drill's own and each kind's."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from drill.config import DEFAULT_TIERS, _Validator
from drill.config_keys import TABLES, Table
from drill.durations import format_duration
from drill.errors import DrillError
from drill.reference.markdown import GENERATED, table
from drill.stores import kinds
from drill.stores.kinds import KindSpec


class UndocumentedKey(DrillError):
    """drill.config_keys and the validator disagree: the page would drift from the code."""


def _check(entry: Table) -> None:
    accepted = set(getattr(_Validator, entry.validator_keys))
    documented = {k.name for k in entry.keys}
    if accepted != documented:
        missing, extra = sorted(accepted - documented), sorted(documented - accepted)
        raise UndocumentedKey(
            f"{entry.header}: " + "; ".join(filter(None, [
                f"accepted by drill.config but not documented in drill/config_keys.py: {', '.join(missing)}"
                if missing else "",
                f"documented in drill/config_keys.py but not accepted by drill.config: {', '.join(extra)}"
                if extra else ""])))


def _anchor(header: str) -> str:
    return header.strip("[]").split(".")[0]


def _drills_tables() -> list[str]:
    lines: list[str] = []
    for entry in TABLES:
        _check(entry)
        lines += [f"## `{entry.header}` {{#{_anchor(entry.header)}}}", "", entry.intro, ""]
        lines += table(["Key", "Type", "Default", "Meaning"],
                       [[f"`{k.name}`", k.type, k.default, k.meaning] for k in entry.keys])
        if entry.header == "[tiers.NAME]":
            lines += table(["Built-in tier", "rto", "rpo"],
                           [[f"`{name}`", format_duration(rto), format_duration(rpo)]
                            for name, (rto, rpo) in DEFAULT_TIERS.items()])
        if entry.header == "[stores.NAME]":
            lines += _kind_keys()
    return lines


def _type_name(annotation: Any) -> str:
    """A kind option's type as drill.toml spells it, from its annotation."""
    hint = annotation
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        return "bool"
    if hint is int:
        return "integer"
    if hint is float:
        return "number"
    if hint is str:
        return "string"
    if typing.get_origin(hint) in (tuple, list):
        return "list of strings"
    return getattr(hint, "__name__", str(hint))


def _default(item: dataclasses.Field[Any]) -> str:
    if item.default is dataclasses.MISSING or item.default is None:
        return "see its meaning"
    if isinstance(item.default, bool):
        return f"`{str(item.default).lower()}`"
    if isinstance(item.default, tuple):
        return "`[]`" if not item.default else f"`{list(item.default)}`"
    return f"`{item.default!r}`"


def _options(spec: KindSpec) -> list[list[str]]:
    hints = typing.get_type_hints(spec.options)
    docs = spec.options.docs()
    return [[f"`{item.name}`", _type_name(hints[item.name]), _default(item), docs[item.name] or "-"]
            for item in dataclasses.fields(spec.options)]


def _kind_keys() -> list[str]:
    lines = ["### Keys of each store kind", "",
             "Each kind declares its own keys (`drill/stores/<kind>/__init__.py`, a `KindOptions` dataclass) and "
             "checks them itself, with the same `file:line` errors; a key of another kind says which kinds it "
             "applies to (`[stores.cache.bucket] only applies to gcs stores (this store is redis)`).", ""]
    for spec in kinds.all_kinds().values():
        extra = f" Extra: `{spec.extra}`." if spec.extra else ""
        lines += [f"#### `kind = \"{spec.kind}\"` {{#kind-{spec.kind}}}", "",
                  f"{spec.summary[:1].upper()}{spec.summary[1:]}. In sentences: {', '.join(spec.names)}. Provision: "
                  f"{', '.join(spec.provisioners)}.{extra}", ""]
        rows = _options(spec)
        lines += table(["Key", "Type", "Default", "Meaning"], rows) if rows else ["No keys of its own.", ""]
    return lines


def configuration_page() -> str:
    lines = ["# Configuration keys", "",
             GENERATED.format(source="drill.config's validator, drill/config_keys.py and the kinds' KindOptions"),
             "",
             "Every key drill.toml accepts. Where drill.toml is found, profiles, a complete example and the errors: "
             "[Configuration](../configuration.md). A key or table not listed here is an error that names the file "
             "and line.", "",
             *_drills_tables()]
    return "\n".join(lines).rstrip() + "\n"

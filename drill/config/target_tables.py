"""[tiers.NAME] and [controls.ID]: the recovery targets a drill is judged by, and how often it must pass."""

from __future__ import annotations

import re
from typing import Any

from drill.config.model import ControlConfig, Tier
from drill.config.reader import TomlReader

TIER_KEYS: frozenset[str] = frozenset({"rto", "rpo"})
CONTROL_KEYS: frozenset[str] = frozenset({"title", "every"})
_CONTROL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def read_tier(reader: TomlReader, table: str, name: str, data: Any, inherited: Tier | None) -> Tier:
    """A tier's rto and rpo; a tier that changes a known one (a profile's, a default's) may give only one."""
    if not isinstance(data, dict):
        raise reader.error("must be a table with rto and rpo", table)
    reader.check_keys(table, data, TIER_KEYS)
    if inherited is None and not {"rto", "rpo"} <= data.keys():
        raise reader.error("a new tier needs both rto and rpo", table)
    rto = reader.duration(table, data, "rto") if "rto" in data else inherited.rto  # type: ignore[union-attr]
    rpo = reader.duration(table, data, "rpo") if "rpo" in data else inherited.rpo  # type: ignore[union-attr]
    return Tier(name, rto, rpo)


def read_controls(reader: TomlReader, data: dict[str, Any]) -> dict[str, ControlConfig]:
    controls = {}
    for control_id, body in data.items():
        bare = re.fullmatch(r"[A-Za-z0-9_-]+", control_id)  # a TOML bare key; anything else is quoted
        table = f"controls.{control_id}" if bare else f'controls."{control_id}"'
        if not isinstance(body, dict):
            raise reader.error("must be a table with title and every", table)
        if not body.keys() & CONTROL_KEYS and body and all(isinstance(v, dict) for v in body.values()):
            # [controls.SOC2-CC7.5] is read by TOML as the table "5" inside "SOC2-CC7"
            dotted = f"{control_id}.{next(iter(body))}"
            raise reader.error(f"a control id with a dot must be quoted: write [controls.\"{dotted}\"] "
                               f"(TOML reads [controls.{dotted}] as nested tables)", table)
        if not _CONTROL_ID.fullmatch(control_id):
            raise reader.error("a control id is letters, digits, '.', '_' and '-' (e.g. \"SOC2-CC7.5\", "
                               "\"ISO27001-A.8.13\"), as in the tag @control:ID", table)
        reader.check_keys(table, body, CONTROL_KEYS)
        for key in ("title", "every"):
            if key not in body:
                raise reader.error("missing; a control needs a title and every (e.g. every = \"90 days\")",
                                   table, key)
        if not (isinstance(body["title"], str) and body["title"].strip()):
            raise reader.error("must be a non-empty string", table, "title")
        every = reader.duration(table, body, "every")
        if every <= 0:
            raise reader.error("must be a duration above zero, e.g. \"90 days\"", table, "every")
        controls[control_id] = ControlConfig(control_id, body["title"].strip(), every,
                                             line=reader.locate(table, None))
    return controls

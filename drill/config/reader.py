"""Reading drill.toml's values one key at a time: each wrong value is a ConfigError naming its file and line.

The table readers (drill.config.store_tables, targets, repository_table, notify_table, drill_table) and
the validator all read through one TomlReader.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from drill.config import toml_lines
from drill.durations import DurationError, parse_duration
from drill.errors import ConfigError


class TomlReader:
    """drill.toml's text (for line numbers) and the checks of single values: tables, durations, flags, paths."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def error(self, message: str, table: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, path=self.path, line=self.locate(table, key),
                           key=f"{table}.{key}" if key else table)

    def locate(self, table: str, key: str | None) -> int | None:
        """Line of `key` inside `[table]` (or of the table header); best effort, 1-based."""
        return toml_lines.locate(self.lines, table, key)

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

    def positive_duration(self, table: str, data: dict[str, Any], key: str) -> float:
        seconds = self.duration(table, data, key)
        if not seconds > 0:
            raise self.error("must be a duration above zero, e.g. \"1h\"", table, key)
        return seconds

    def flag(self, table: str, data: dict[str, Any], key: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.error("must be true or false", table, key)
        return value

    def time_zone(self, table: str, data: dict[str, Any]) -> str:
        from drill.backup_dates import TimeZoneError, zone

        value = data["backup_time_zone"]
        try:
            zone(value)
        except TimeZoneError as exc:
            raise self.error(str(exc), table, "backup_time_zone") from None
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

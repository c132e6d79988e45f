"""drill.toml: stores, target tiers, backup location and profiles, validated with file:line errors.

The file is optional. Without it every store a feature names is provisioned locally (the
embedded default) and the tiers of the seed runbook apply.

The parts: model.py (what a configuration is: Config, tiers, [repository], [notify], controls),
store.py (one store's settings), validator.py (drill.toml to Config) with a reader per table
(store_tables, target_tables, repository_table, notify_table, drill_table) over reader.py (single
values) and toml_lines.py (where a key sits, for messages). Everything is importable from here.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from drill.config.model import (
    DEFAULT_TIERS,
    Config,
    ControlConfig,
    NotifyConfig,
    RepositoryConfig,
    Tier,
    default_config,
    is_loopback_host,
)
from drill.config.store import STORE_KINDS, StoreConfig
from drill.config.toml_lines import line_from_toml_error
from drill.config.validator import _Validator
from drill.errors import ConfigError

__all__ = ["CONFIG_FILENAME", "DEFAULT_TIERS", "STORE_KINDS", "Config", "ControlConfig", "NotifyConfig",
           "RepositoryConfig", "StoreConfig", "Tier", "_Validator", "default_config", "find_config",
           "is_loopback_host", "load_config"]

CONFIG_FILENAME = "drill.toml"


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
        line = line_from_toml_error(str(exc))
        raise ConfigError(f"not valid TOML: {exc}", path=found, line=line) from None
    return _Validator(found, text).build(data, profile)

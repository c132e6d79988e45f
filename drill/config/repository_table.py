"""[repository]: where `drill backup` keeps backups (a directory or gs://BUCKET/PREFIX), their key and retention."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from drill.config.model import RepositoryConfig
from drill.config.reader import TomlReader

REPOSITORY_KEYS: frozenset[str] = frozenset(
    {"path", "key_file", "hourly", "daily", "weekly", "monthly", "log_file"})


def read_repository(reader: TomlReader, data: dict[str, Any], base: Path) -> RepositoryConfig:
    reader.check_keys("repository", data, REPOSITORY_KEYS)
    gcs = data.get("path")
    if isinstance(gcs, str) and gcs.startswith("gs://"):
        if not re.fullmatch(r"gs://[a-z0-9][a-z0-9._-]{1,221}[a-z0-9](/[^\s]*)?", gcs):
            raise reader.error(f"{gcs!r} is not a GCS location; write gs://BUCKET/PREFIX", "repository", "path")
        data = {k: v for k, v in data.items() if k != "path"}
    else:
        gcs = None
    counts = {}
    for key in ("hourly", "daily", "weekly", "monthly"):
        value = data.get(key, getattr(RepositoryConfig, key))
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise reader.error("must be a whole number of at least 0 (0 keeps none of this class)",
                               "repository", key)
        counts[key] = value
    paths = {key: reader.path_value("repository", data, key, base, base) if key in data else None
             for key in ("path", "key_file", "log_file")}
    return RepositoryConfig(path=paths["path"], gcs=gcs, key_file=paths["key_file"], log_file=paths["log_file"],
                            hourly=counts["hourly"], daily=counts["daily"], weekly=counts["weekly"],
                            monthly=counts["monthly"])

"""[drill]: where backups, reports and the history go, and the choices every drill of the file shares."""

from __future__ import annotations

from typing import Any

from drill.config.reader import TomlReader

DRILL_KEYS: frozenset[str] = frozenset(
    {"backup_dir", "report_dir", "default_profile", "seed_scale", "plugins", "rollback", "stages",
     "signing_key_file", "signing_public_key", "history", "backup_time_zone", "self_test",
     "shared_servers"})
ROLLBACK_POLICIES = ("always", "on-failure", "never")


def read_history_location(reader: TomlReader, data: dict[str, Any]) -> str | None:
    value = data.get("history")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise reader.error('must be a path to a history.jsonl, "repository", or gs://BUCKET/PREFIX/history.jsonl',
                           "drill", "history")
    if value.startswith("gs://"):
        from drill.report.history_store import GCS_URL

        if not GCS_URL.fullmatch(value):
            raise reader.error(f"{value!r} is not a history object; write gs://BUCKET/PREFIX/history.jsonl "
                               f"(the object name ends in .jsonl)", "drill", "history")
    return value


def read_rollback_policy(reader: TomlReader, data: dict[str, Any]) -> str:
    value = data.get("rollback", "never")
    if value not in ROLLBACK_POLICIES:
        raise reader.error("must be one of: always, on-failure, never", "drill", "rollback")
    return str(value)

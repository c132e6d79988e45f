"""`drill backups list|verify` over backups made outside drill: the `[stores.NAME] backups = "GLOB"` folders.

`list` shows each match with its date (from its name, else its mtime), size and format (read from its
content by the store's kind); `verify` reads each completely in its format (gzip to its end, a
pg_restore listing, an RDB header and CRC-64, a tar read through, BSON decoded, an export's metadata
and output files) and nothing more: no restore, no server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from drill import backup_dates, found_backups
from drill.config import Config
from drill.errors import BackupError
from drill.redact import redact_text
from drill.results import iso

Found = tuple[str, Path, float]  # store, the file or folder, its date (epoch seconds)


def matching(config: Config, store: str | None) -> list[Found]:
    """Every backup file (or folder) the `backups` globs of the configured stores match, oldest first."""
    names = [store] if store else sorted(config.stores)
    out = []
    for name in names:
        pattern = config.stores[name].backups if name in config.stores else None
        if pattern:
            zone = config.time_zone_of(name)
            dated = [(backup_dates.date_of(p, zone), p) for p in found_backups.matches(pattern, config.base_dir)]
            out += [(name, path, when) for when, path in sorted(dated)]
    return out


def row(config: Config, name: str, path: Path, when: float) -> dict[str, Any]:
    """A found backup as `drill backups list --json` shows it (the keys of a repository backup's row)."""
    from drill.stores import formats, kinds

    configured = kinds.spec(config.stores[name].kind)
    reader = formats.reader_of(configured)
    try:
        fmt = formats.identify(configured, reader, path).name if reader else found_backups.UNKNOWN_FORMAT
    except BackupError:
        fmt = "unknown"
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    return {"store": name, "id": path.name, "created": iso(when), "consistent": iso(when), "size": size,
            "format": fmt, "kind": configured.kind, "key_id": None, "verified": "-", "verified_at": None,
            "authenticated": False, "path": str(path), "source": "external"}


def print_rows(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    print(f"{'store':<12} {'backup made outside drill':<40} {'dated (UTC)':<21} {'size':>12}  format")
    for shown in rows:
        print(f"{shown['store']:<12} {shown['id']:<40} {shown['created']:<21} {shown['size']:>12}  {shown['format']}")


def verify(config: Config, found: list[Found], say: Callable[[str], None]) -> list[str]:
    """Each found backup readable in its format; the failures' messages (each names its file)."""
    failures = []
    for name, path, when in found:
        try:
            artifact = found_backups.found_backup(name, config.stores[name].kind, path, when)
            found_backups.check_found(artifact)
            say(f"ok      {name} {path.name} ({artifact.format}, {artifact.size} bytes, sha256 {artifact.sha256})")
        except BackupError as exc:
            failures.append(str(exc))
            print(f"FAILED  {name} {path.name}: {redact_text(str(exc))}", flush=True)
    return failures

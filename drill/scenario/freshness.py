"""Freshness without a restore: how old the latest backup of a store is, against a limit.

The age (now minus the date the backup claims: its name read in backup_time_zone, else its mtime;
a repository backup's consistent time) is RPO evidence: were the store lost now, that is the data
it would lose. A scenario that restores nothing takes its RPO from it (`rpo_method` "backup-age").
No store is provisioned for these checks: the glob form reads files only, the other the scenario's
latest backup or the repository's manifests. A repository backup whose recorded verification failed
(verified.json, written by `drill backup` and `drill backups verify`) is skipped, and named: the
newest one that did not fail counts.
"""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from drill import backup_dates, rpo
from drill.durations import format_duration, parse_duration
from drill.errors import BackupError, VerificationError
from drill.evidence import FreshnessEvidence
from drill.results import iso
from drill.scenario.state import ScenarioState

if TYPE_CHECKING:
    from drill.repository import Entry


class Freshness:
    def __init__(self, state: ScenarioState) -> None:
        self.state = state

    def check_glob(self, name: str, pattern: str, duration_text: str) -> None:
        """The newest backup matching `pattern` (a trailing `/` matches folders) is at most `duration_text` old."""
        state = self.state
        limit = parse_duration(duration_text)
        # normalized, as `drill restore --from` does: no dr/../backups in messages (a trailing `/` still means folders)
        full = os.path.normpath(pattern if os.path.isabs(pattern) else state.config.base_dir / pattern)
        folders = pattern.endswith("/")
        found = [Path(p) for p in glob.glob(full) if (Path(p).is_dir() if folders else Path(p).is_file())]
        if not found:
            raise BackupError(f"no backup of {name!r} matches {pattern!r} (searched {full}): the backups stopped, or "
                              f"the pattern is wrong")
        zone = state.config.time_zone_of(name)
        date, newest = max(((backup_dates.backup_date(p, zone), p) for p in found), key=lambda pair: pair[0].at)
        self._judge(name, newest.name, str(newest), date, limit)

    def check_latest(self, name: str, duration_text: str) -> None:
        """The store's latest backup (this scenario's, else the repository's newest) is at most that old."""
        state = self.state
        limit = parse_duration(duration_text)
        known = state.backups.get(name)
        if known:
            artifact = known[-1]
            if artifact.source == "external":  # a file found by glob: dated by its name, else its mtime, again
                date = backup_dates.backup_date(artifact.path, state.config.time_zone_of(name))
            else:  # taken by this drill, or fetched from the repository: its consistent time
                date = backup_dates.BackupDate(artifact.consistent_at, artifact.source, "UTC")
            self._judge(name, artifact.id, str(artifact.path), date, limit)
            return
        entry, skipped = self._repository_newest(name)
        self._judge(name, entry.id, str(entry.directory),
                    backup_dates.BackupDate(entry.manifest.consistent_at, "repository", "UTC"), limit, skipped)

    def _repository_newest(self, name: str) -> tuple[Entry, list[str]]:
        """The newest backup `drill backup` made of `name` whose recorded verification did not fail (key-checked),
        and the newer ones skipped because theirs failed (as "<id> (<why>)")."""
        from drill import crypto
        from drill.repository import open_repository

        config = self.state.config
        repo = open_repository(config)
        entries = repo.entries(name)
        if not entries:
            raise BackupError(f"no latest backup of {name!r} is known: name one first (`Given the latest backup of "
                              f"\"{name}\" in \"backups/{name}_*.sql.gz\"`) or back it up with `drill backup {name}` "
                              f"(the repository {repo.location} holds none)")
        skipped: list[str] = []
        for entry in reversed(entries):
            # `drill backup` verifies what it committed, `drill backups verify` again later: a backup whose
            # verification failed cannot be restored, so its date says nothing about the data a loss would cost.
            failure = entry.verification_failure
            if failure is None:
                key_file = config.repository.key_file
                repo.authenticate(entry, crypto.load_key(key_file) if key_file else None)  # a forged date is refused
                return entry, skipped
            skipped.append(f"{entry.id} ({failure})")
        raise BackupError(f"no usable backup of {name!r} in {repo.location}: the verification of every one failed: "
                          f"{'; '.join(skipped)}; fix the backups (`drill backup {name}`), then `drill backups verify`")

    def _judge(self, name: str, backup: str, path: str, date: backup_dates.BackupDate, limit: float,
               skipped: list[str] | None = None) -> None:
        state = self.state
        now = time.time()
        backup_dates.require_not_future(f"the latest backup of {name!r}, {path},", date, now)
        dated_at, dated_by = date.at, date.how
        age = max(0.0, now - dated_at)
        fresh = age <= limit
        state.evidence.freshness[name] = FreshnessEvidence(
            backup=backup, path=path, dated_at=dated_at, dated_by=date.source, age_seconds=age, limit_seconds=limit,
            fresh=fresh, checked_at=now, time_zone=date.zone, skipped=list(skipped or []))
        passed_over = f"; newer backup(s) skipped, their verification failed: {'; '.join(skipped)}" if skipped else ""
        if not state.restores and (state.result.rpo_seconds is None or age > state.result.rpo_seconds):
            # Nothing restored: the data a loss now would cost is the age of the latest backup.
            state.result.rpo_seconds, state.result.rpo_method = age, rpo.BACKUP_AGE
        state.info(f"latest backup of {name}: {path}, dated {iso(dated_at)} ({dated_by}), {format_duration(age)} old"
                   f"{passed_over}")
        if not fresh:
            raise VerificationError(f"stale backup: {path} is {format_duration(age)} old (dated {iso(dated_at)}, "
                                    f"{dated_by}), more than {format_duration(limit)}{passed_over}")


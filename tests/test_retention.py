"""Retention: a synthetic two-year history keeps exactly what the runbook's policy says; prune through
the repository deletes the rest and never the newest verified backup."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from drill.repository import Repository
from drill.retention import RetentionPolicy, decide
from drill.stores.base import BackupArtifact, sha256_file
from tests.conftest import run_drill

NOW = dt.datetime(2026, 11, 21, 10, 30, tzinfo=dt.UTC)  # a Saturday


def _history(step: dt.timedelta, years: int = 2) -> list[tuple[str, float]]:
    moment = NOW.replace(minute=5) - dt.timedelta(days=365 * years)
    found = []
    while moment <= NOW:
        found.append((moment.strftime("b-%Y%m%dT%H%M"), moment.timestamp()))
        moment += step
    return found


def _id(t: dt.datetime) -> str:
    return t.strftime("b-%Y%m%dT%H%M")


def test_two_years_of_hourly_backups_keep_exactly_the_runbook_policy() -> None:
    history = _history(dt.timedelta(hours=1))
    assert len(history) > 17000
    decision = decide(history, RetentionPolicy(hourly=24, daily=30, weekly=12, monthly=12), NOW.timestamp())
    latest = NOW.replace(minute=5)
    hourly = {_id(latest - dt.timedelta(hours=h)) for h in range(24)}
    daily = {_id(latest)} | {_id((latest - dt.timedelta(days=d)).replace(hour=23)) for d in range(1, 30)}
    monday = (latest - dt.timedelta(days=latest.weekday())).replace(hour=23)
    weekly = {_id(latest)} | {_id(monday - dt.timedelta(days=1 + 7 * (w - 1))) for w in range(1, 12)}
    monthly = {_id(latest)}
    first = latest.replace(day=1, hour=23)
    for _ in range(11):
        first = first - dt.timedelta(days=1)  # the last day of the month before
        monthly.add(_id(first))
        first = first.replace(day=1)
    expected = hourly | daily | weekly | monthly
    assert set(decision.keep) == expected
    assert len(decision.keep) + len(decision.delete) == len(history)
    assert sorted(decision.delete) == sorted(i for i, _ in history if i not in expected)
    # Reasons name the class and period: the auditor can see why each backup survives.
    assert "monthly 2025-12" in decision.keep[_id(dt.datetime(2025, 12, 31, 23, 5, tzinfo=dt.UTC))]
    assert any(r.startswith("weekly") for r in decision.keep[_id(dt.datetime(2026, 9, 6, 23, 5, tzinfo=dt.UTC))])
    # 24 hourly + 29 more daily (yesterday 23:05 is also hourly) + 11 more weekly (4 of them daily too) +
    # 11 more monthly (October 31 is daily too): 24 + 28 + 7 + 10.
    assert len(decision.keep) == 69


def test_periods_without_a_backup_are_not_filled_from_older_ones() -> None:
    # Daily backups, with the last ten days missing: daily=7 keeps nothing from the gap's older side.
    history = [(i, t) for i, t in _history(dt.timedelta(days=1), years=1) if t < NOW.timestamp() - 10 * 86400]
    decision = decide(history, RetentionPolicy(hourly=0, daily=7, weekly=0, monthly=0), NOW.timestamp())
    assert decision.keep == {}
    assert len(decision.delete) == len(history)


def test_zero_counts_disable_a_class_and_future_backups_are_kept() -> None:
    history = _history(dt.timedelta(hours=6), years=1)
    future = ("future", NOW.timestamp() + 7200)
    decision = decide([*history, future], RetentionPolicy(hourly=0, daily=0, weekly=0, monthly=3), NOW.timestamp())
    assert decision.keep["future"] == ["dated in the future"]
    assert sorted(r[0] for r in decision.keep.values() if r[0] != "dated in the future") == [
        "monthly 2026-09", "monthly 2026-10", "monthly 2026-11"]


def _fake_backup(repo: Repository, store: str, when: float, index: int) -> None:
    with repo.staging(store) as staging:
        data = staging / "work" / f"{store}-{index}.dump"
        data.parent.mkdir()
        data.write_bytes(f"backup {index}".encode())
        artifact = BackupArtifact(id=f"{store}-{index:05d}", store=store, kind="postgres", format="pg_dump-custom",
                                  path=data, sha256=sha256_file(data), size=data.stat().st_size, created_at=when,
                                  consistent_at=when)
        repo.commit(staging, artifact, None)


def test_prune_over_a_two_year_history_keeps_the_policy_and_the_newest_verified(tmp_path: Path) -> None:
    (tmp_path / "drill.toml").write_text('[repository]\npath = "repo"\nhourly = 0\ndaily = 30\nweekly = 12\n'
                                         'monthly = 12\n')
    repo = Repository(tmp_path / "repo")
    now = time.time()
    stamps = [now - day * 86400 - 60 for day in range(730, -1, -1)]  # daily, two years, newest a minute ago
    for index, when in enumerate(stamps):
        _fake_backup(repo, "userdb", when, index)
    entries = repo.entries("userdb")
    expected = decide([(e.id, e.manifest.created_at) for e in entries], RetentionPolicy(0, 30, 12, 12), now)
    # The three newest backups are damaged and were never verified; an older one was verified.
    for entry in entries[-3:]:
        (entry.directory / entry.manifest.files[0].name).write_bytes(b"X" * entry.manifest.size)
    repo.verify(entries[-4], None)
    # A crashed run's leftovers are swept by prune.
    (tmp_path / "repo" / "userdb" / ".partial-dead").mkdir()

    fixed = {"DRILL_NOW": repr(now)}  # drill decides as of the same moment: no period boundary in between
    dry = run_drill(tmp_path, "backups", "prune", "--dry-run", env=fixed)
    assert dry.code == 0, dry.output
    assert dry.stdout.count("would delete userdb") == len(expected.delete)
    assert len(repo.entries("userdb")) == 731  # a dry run deletes nothing

    done = run_drill(tmp_path, "backups", "prune", env=fixed)
    assert done.code == 0, done.output
    assert done.stdout == ""  # quiet on success (cron)
    left = {e.id for e in repo.entries("userdb")}
    assert left == set(expected.keep)
    assert not (tmp_path / "repo" / "userdb" / ".partial-dead").exists()
    log = (tmp_path / "repo" / "drill-backup.log").read_text().splitlines()
    assert len(log) == 2  # one line per run
    assert " drill prune all ok " in log[1] and f"deleted={len(expected.delete)}" in log[1]

    # Policy daily=1 only: it keeps just the (damaged) newest; prune also keeps the newest verified.

    (tmp_path / "drill.toml").write_text('[repository]\npath = "repo"\nhourly = 0\ndaily = 1\nweekly = 0\n'
                                         'monthly = 0\n')
    done = run_drill(tmp_path, "backups", "prune", "userdb", "-v", env=fixed)
    assert done.code == 0, done.output
    left = [e.id for e in repo.entries("userdb")]
    assert left == [entries[-4].id, entries[-1].id], done.output
    assert f"keep userdb {entries[-4].id}: newest verified backup" in done.stdout
    status = json.loads((repo.store_dir("userdb") / entries[-1].id / "verified.json").read_text())
    assert status["status"] == "failed" and "corrupt" in status["message"]

"""Sentences about point-in-time recovery and rollback: base backups, recovery to a time, safety copies,
planted failures."""

from __future__ import annotations

from drill.faults import CAUSES, SERVER_FAULTS
from drill.scenario import DrillScenario
from drill.stores.capabilities import PointInTime, ServerFaults
from drill.vocabulary import STORE, sentence

_POINT = r"(?P<when>\"[^\"]+\"|just before the disaster|\d[^\"]*? before the disaster)"


def _server_fault(words: dict[str, str]) -> type | None:
    """Killing the server or filling its disk needs a store that can; a corrupt backup or a timeout does not."""
    return ServerFaults if CAUSES.get(words.get("cause", "")) in SERVER_FAULTS else None


@sentence("given when", rf"a base backup of {STORE} is taken",
          "Takes a PostgreSQL base backup (pg_basebackup -Fp -X stream) of a store that archives its WAL "
          "(`pitr = true`).",
          'Given a base backup of "userdb" is taken', needs=PointInTime)
def take_base_backup(drill: DrillScenario, store: str) -> None:
    drill.take_base_backup(store)


@sentence("when", rf"{STORE} is restored to the point in time {_POINT}",
          "Point-in-time recovery: the latest base backup before that time, then the archived WAL replayed up to "
          "it. The time is an ISO 8601 timestamp with its zone, `just before the disaster` (the WAL position of "
          "the disaster, exactly) or `N seconds before the disaster`.",
          'When "userdb" is restored to the point in time "2026-01-01T10:00:00Z"', needs=PointInTime)
def restore_to_point(drill: DrillScenario, store: str, when: str) -> None:
    drill.restore_to_point(store, when)


@sentence("then", rf"{STORE} holds every marker written before the point in time and none after it",
          "After a point-in-time recovery: every RPO marker written before the target time survived and none "
          "written after it did (the one write in flight at that instant may go either way).",
          'Then "userdb" holds every marker written before the point in time and none after it',
          needs=PointInTime)
def markers_at_point(drill: DrillScenario, store: str) -> None:
    drill.assert_markers_at_point(store)


@sentence("given when", r"the rollback policy is (?P<policy>always|on-failure|never)",
          "Before a restore overwrites a store, keep a safety copy (its own backup and fingerprint) and roll back: "
          "`on-failure` when the restore fails, `always` also at the end of the scenario, `never` (the default).",
          "Given the rollback policy is on-failure")
def rollback_policy(drill: DrillScenario, policy: str) -> None:
    drill.set_rollback_policy(policy)


@sentence("given", rf"the restore of {STORE} may take at most (?P<duration>.+)",
          "A time limit for the store's restores: past it the restore is stopped and fails (and is rolled back "
          "under the rollback policy). Same as `restore_timeout` in drill.toml.",
          'Given the restore of "userdb" may take at most 10 minutes')
def restore_timeout(drill: DrillScenario, store: str, duration: str) -> None:
    drill.set_restore_timeout(store, duration)


@sentence("when", rf"the restore of {STORE} fails(?: because (?P<cause>{'|'.join(CAUSES)}))?",
          "Plants a real failure into the store's restore from its latest backup, runs it and requires it to fail: "
          "a corrupt copy of the backup (the default), the server is killed (SIGKILL) mid-restore, the disk is "
          "full (a small tmpfs tablespace; root), or it times out.",
          'When the restore of "userdb" fails because the server is killed', needs=_server_fault)
def restore_fails(drill: DrillScenario, store: str, cause: str | None = None) -> None:
    drill.restore_fails(store, cause)


@sentence("when", rf"{STORE} is rolled back",
          "Rolls the store back now to the safety copy kept before its restore (rollback policy `always`).",
          'When "userdb" is rolled back')
def roll_back(drill: DrillScenario, store: str) -> None:
    drill.roll_back(store)


@sentence("then", rf"{STORE} is rolled back to its state before the restore",
          "The store was rolled back and its fingerprint equals the one of its safety copy, taken right before "
          "the restore.",
          'Then "userdb" is rolled back to its state before the restore')
def rolled_back(drill: DrillScenario, store: str) -> None:
    drill.assert_rolled_back(store)

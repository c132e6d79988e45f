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
    """`pg_basebackup -Fp -X stream -c fast` of a store that archives its WAL. The sha256 of its
    `backup_manifest` is recorded; a fingerprint is kept when the data did not change while it ran
    (markers aside)."""
    drill.take_base_backup(store)


@sentence("when", rf"{STORE} is restored to the point in time {_POINT}",
          "Point-in-time recovery: the latest base backup before that time, then the archived WAL replayed up to "
          "it. The time is an ISO 8601 timestamp with its zone, `just before the disaster` (the WAL position of "
          "the disaster, exactly) or `N seconds before the disaster`.",
          'When "userdb" is restored to the point in time "2026-01-01T10:00:00Z"', needs=PointInTime)
def restore_to_point(drill: DrillScenario, store: str, when: str) -> None:
    """Point-in-time recovery from the newest base backup taken before that time and the archived WAL.
    The time is an ISO 8601 timestamp with a zone (`Z` for UTC), `just before the disaster` (the WAL
    position recorded right before the disaster, exclusive) or `N seconds before the disaster` (any
    duration). Starts the RTO clock if no disaster ran; the RPO comes from the markers, else from the
    target time."""
    drill.restore_to_point(store, when)


@sentence("then", rf"{STORE} holds every marker written before the point in time and none after it",
          "After a point-in-time recovery: every RPO marker written before the target time survived and none "
          "written after it did (the one write in flight at that instant may go either way).",
          'Then "userdb" holds every marker written before the point in time and none after it',
          needs=PointInTime)
def markers_at_point(drill: DrillScenario, store: str) -> None:
    """After a point-in-time recovery: every RPO marker written before the target survived and none
    written after it did. The one write in flight at the target instant may go either way. Failures list
    the marker numbers."""
    drill.assert_markers_at_point(store)


@sentence("given when", r"the rollback policy is (?P<policy>always|on-failure|never)",
          "Before a restore overwrites a store, keep a safety copy (its own backup and fingerprint) and roll back: "
          "`on-failure` when the restore fails, `always` also at the end of the scenario, `never` (the default).",
          "Given the rollback policy is on-failure")
def rollback_policy(drill: DrillScenario, policy: str) -> None:
    """The scenario's rollback policy: `on-failure` keeps a safety copy before every in-place restore and
    rolls back (verified) when the restore fails; `always` also rolls back at the end of the scenario,
    after a success; `never` (the default, or `[drill] rollback`) keeps nothing."""
    drill.set_rollback_policy(policy)


@sentence("given", rf"the restore of {STORE} may take at most (?P<duration>.+)",
          "A time limit for the store's restores: past it the restore is stopped and fails (and is rolled back "
          "under the rollback policy). Same as `restore_timeout` in drill.toml.",
          'Given the restore of "userdb" may take at most 10 minutes')
def restore_timeout(drill: DrillScenario, store: str, duration: str) -> None:
    """A time limit for the store's restores (like `restore_timeout` in drill.toml). Past it the restore is
    stopped (PostgreSQL: its sessions are terminated) and fails."""
    drill.set_restore_timeout(store, duration)


@sentence("when", rf"the restore of {STORE} fails(?: because (?P<cause>{'|'.join(CAUSES)}))?",
          "Plants a real failure into the store's restore from its latest backup, runs it and requires it to fail: "
          "a corrupt copy of the backup (the default), the server is killed (SIGKILL) mid-restore, the disk is "
          "full (a small tmpfs tablespace; root), or it times out.",
          'When the restore of "userdb" fails because the server is killed', needs=_server_fault)
def restore_fails(drill: DrillScenario, store: str, cause: str | None = None) -> None:
    """Plants a real failure into a restore from the latest backup, runs it, and requires it to fail.
    Causes: `the backup is corrupt` (a copy with flipped bytes; the default when `because ...` is left
    out), `the server is killed` (SIGKILL to the server process serving the restore), `the disk is full`
    (the database is created in a tablespace on a tmpfs just big enough for an empty database; needs
    root), `it times out`. The last three need a kind that can plant server faults (local PostgreSQL). A
    fault that cannot be planted fails the step."""
    drill.restore_fails(store, cause)


@sentence("when", rf"{STORE} is rolled back",
          "Rolls the store back now to the safety copy kept before its restore (rollback policy `always`).",
          'When "userdb" is rolled back')
def roll_back(drill: DrillScenario, store: str) -> None:
    """Rolls the store back now from the safety copy kept before its restore (policy `always`), and
    verifies it."""
    drill.roll_back(store)


@sentence("then", rf"{STORE} is rolled back to its state before the restore",
          "The store was rolled back and its fingerprint equals the one of its safety copy, taken right before "
          "the restore.",
          'Then "userdb" is rolled back to its state before the restore')
def rolled_back(drill: DrillScenario, store: str) -> None:
    """The store was rolled back and its fingerprint now equals the safety copy's, taken right before the
    restore (or the store is absent again, when it did not exist then). Every difference is listed."""
    drill.assert_rolled_back(store)

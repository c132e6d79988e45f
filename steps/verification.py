"""Sentences that verify a restored store, and the RTO/RPO targets."""

from __future__ import annotations

from drill.scenario import DrillScenario
from drill.vocabulary import COUNT, STORE, UNITS, parse_count, sentence

_OTHER = r'"(?P<other>[^"]+)"'


@sentence("then", rf"{STORE} matches its state at the backup",
          "Compares the store's fingerprint (counts, content hashes, schema) with the one taken at its backup.",
          'Then "userdb" matches its state at the backup')
def matches(drill: DrillScenario, store: str) -> None:
    """Takes the store's fingerprint now and compares it with the one taken at the backup it was restored
    from (or at its latest backup, if it was not restored). Every difference is listed in the failure. A
    success on a restored store stops the RTO clock (a later one moves the stop forward)."""
    drill.assert_matches(store)


@sentence("then", rf"{STORE} matches the state of {_OTHER} at the backup",
          "Compares a restored copy with the fingerprint of another store's latest backup.",
          'Then "userdb_restored" matches the state of "userdb" at the backup')
def matches_other(drill: DrillScenario, store: str, other: str) -> None:
    """Compares one store (typically a restored copy) with the fingerprint of another store's latest
    backup."""
    drill.assert_matches(store, source=other)


@sentence("then", rf"{STORE} holds {COUNT} {UNITS}",
          "Counts everything in the store (PostgreSQL: rows of every table but drill's markers).",
          'Then "userdb" holds 10000 rows', converters={"count": parse_count})
def holds(drill: DrillScenario, store: str, count: int, unit: str) -> None:
    """Counts everything in the store in its kind's unit (PostgreSQL: the rows of every table outside the
    system schemas), leaving drill's markers out. The expected number is scaled by `seed_scale`. A unit
    that does not fit the kind is an error ("a PostgreSQL store holds rows, not keys")."""
    drill.assert_count(store, count, unit)


@sentence("then", rf"{STORE} holds {COUNT} {UNITS} in \"(?P<part>[^\"]+)\"",
          "Counts one table/collection, as the runbook's `SELECT COUNT(*) FROM users`.",
          'Then "userdb" holds 2000 rows in "users"', converters={"count": parse_count})
def holds_in(drill: DrillScenario, store: str, count: int, unit: str, part: str) -> None:
    """Counts one part: a table (`users` means `public.users`; `schema.table` works too), a collection, a
    Redis database (`db0`), a GCS prefix, a Firestore collection path or pattern (`users/*/sessions`), a
    volume directory. The expected number is scaled by `seed_scale`."""
    drill.assert_count(store, count, unit, part)


@sentence("then", r"the recovery time is within (?P<duration>.+)",
          "RTO target: from the disaster to the verified restore.",
          "Then the recovery time is within 30 minutes")
def rto_within(drill: DrillScenario, duration: str) -> None:
    """RTO target, checked when the step runs: the RTO up to the last verification, or up to this moment
    if nothing has been verified yet. It fails if the scenario has no disaster or restore."""
    drill.check_target("rto", duration, drill.current_line)


@sentence("then", r"the data loss is at most (?P<duration>.+)",
          "RPO target: disaster time minus the newest surviving marker (or the backup's consistent time).",
          "Then the data loss is at most 1 hour")
def rpo_at_most(drill: DrillScenario, duration: str) -> None:
    """RPO target: the disaster time minus the recovery point (the newest marker that survived, else the
    backup's consistent time). It fails if nothing was restored."""
    drill.check_target("rpo", duration, drill.current_line)

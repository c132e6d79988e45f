"""Sentences that verify a restored store, and the RTO/RPO targets. Every count sentence counts in the
kind's unit and works for every kind that has what it counts (a kind declares it; `drill check` names a
store that lacks it): `holds 1500 documents in "notifications"` and `holds 40 objects in "models/"` are
the same sentence as `holds 2000 rows in "users"`."""

from __future__ import annotations

from drill.scenario import DrillScenario
from drill.stores.capabilities import CountsExpiring, CountsMatching
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
    system schemas), leaving drill's markers out. The expected number is scaled by `seed_scale` only when the
    store holds data drill seeded in this scenario (see [seed_scale](../configuration.md#seed_scale)). A unit
    that does not fit the kind is an error ("a PostgreSQL store holds rows, not keys")."""
    drill.assert_count(store, count, unit)


@sentence("then", rf"{STORE} holds {COUNT} {UNITS} in \"(?P<part>[^\"]+)\"",
          "Counts one table/collection, as the runbook's `SELECT COUNT(*) FROM users`.",
          'Then "userdb" holds 2000 rows in "users"', converters={"count": parse_count})
def holds_in(drill: DrillScenario, store: str, count: int, unit: str, part: str) -> None:
    """Counts one part: a table (`users` means `public.users`; `schema.table` works too), a collection, a
    Redis database (`db0`), a GCS prefix, a Firestore collection path or pattern (`users/*/sessions`), a
    volume directory. The expected number is scaled by `seed_scale` as for `holds N`. Every kind has parts: the
    Part column
    of [Store kinds](#store-kinds)."""
    drill.assert_count(store, count, unit, part)


@sentence("then", rf"{STORE} holds at least {COUNT} {UNITS}",
          "A lower bound, for production data that keeps growing: every kind's unit (rows, documents, keys, objects, "
          "files), as `holds N`.",
          'Then "userdb_verify" holds at least 4700 rows', converters={"count": parse_count})
def holds_at_least(drill: DrillScenario, store: str, count: int, unit: str) -> None:
    """Fails when fewer, naming both numbers: `'userdb_verify' holds 0 rows, expected at least 4700`.
    Scaled by `seed_scale` only for data drill seeded in this scenario, never for a live store or a backup made
    outside drill: a production dump must hold the figure as written. The evidence records the count with
    `at_least`, and `scaled_from` when the figure was scaled."""
    drill.assert_count(store, count, unit, at_least=True)


@sentence("then", rf"{STORE} holds at least {COUNT} {UNITS} in \"(?P<part>[^\"]+)\"",
          "A lower bound in one part: a table, a collection (MongoDB, Firestore), a prefix (GCS), a directory "
          "(volume), a logical database (Redis `db0`).",
          'Then "userdb_verify" holds at least 1500 rows in "users"', converters={"count": parse_count})
def holds_at_least_in(drill: DrillScenario, store: str, count: int, unit: str, part: str) -> None:
    drill.assert_count(store, count, unit, part, at_least=True)


@sentence("then", rf"{STORE} holds (?P<at_least>at least )?{COUNT} {UNITS} with a TTL",
          "Counts what expires on its own (Redis: keys with a TTL); `holds at least N keys with a TTL` is a lower "
          "bound.",
          'Then "cache" holds 800 keys with a TTL', needs=CountsExpiring, converters={"count": parse_count})
def holds_with_ttl(drill: DrillScenario, store: str, count: int, unit: str, at_least: str | None) -> None:
    drill.assert_count_expiring(store, count, unit, at_least=bool(at_least))


@sentence("then", rf"{STORE} holds (?P<at_least>at least )?{COUNT} {UNITS} matching \"(?P<pattern>[^\"]+)\"",
          "Counts what has a name matching the pattern: Redis keys (Redis's own patterns), GCS objects, Firestore "
          "document paths and volume files (`*` within one `/` segment, `**` across).",
          'Then "cache" holds 200 keys matching "session:*"', needs=CountsMatching, converters={"count": parse_count})
def holds_matching(drill: DrillScenario, store: str, count: int, unit: str, pattern: str,
                   at_least: str | None) -> None:
    drill.assert_count_matching(store, count, unit, pattern, at_least=bool(at_least))


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
    newest canary in the restored copy, else the backup's consistent time; with nothing restored, the age a
    freshness step measured). It fails when the scenario has neither a restore from a backup nor a freshness
    step. See
    [Measurement](../measurement.md)."""
    drill.check_target("rpo", duration, drill.current_line)

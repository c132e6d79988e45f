"""drill's Gherkin vocabulary. Each step is thin: it parses its words and calls the DrillScenario.

Every sentence is listed, with an example, in the README ("Vocabulary"); `drill check` matches
feature files against this same registry.
"""

from __future__ import annotations

from drill.faults import CAUSES as _FAULTS
from drill.faults import SERVER_FAULTS
from drill.scenario import DrillScenario
from drill.stores.capabilities import DumpsSql, ObjectStore, ObjectVersions, PointInTime, RunsSql, ServerFaults
from drill.vocabulary import COUNT, KINDS, STORE, UNITS, parse_count, sentence

_OTHER = r'"(?P<other>[^"]+)"'


def _server_fault(words: dict[str, str]) -> type | None:
    """Killing the server or filling its disk needs a store that can; a corrupt backup or a timeout does not."""
    return ServerFaults if _FAULTS.get(words.get("cause", "")) in SERVER_FAULTS else None


@sentence("given", rf"the {KINDS} store {STORE}",
          "Declares a store and provisions it as drill.toml says (local throwaway cluster by default).",
          'Given the PostgreSQL store "userdb"')
def declare_store(drill: DrillScenario, kind: str, store: str) -> None:
    drill.declare(kind, store)


@sentence("given when", rf"{STORE} is seeded with {COUNT} {UNITS}",
          "Fills the store with deterministic seed data: N rows in all (PostgreSQL: users, orders, order_items).",
          'Given "userdb" is seeded with 10000 rows')
def seed(drill: DrillScenario, store: str, count: str, unit: str) -> None:
    drill.seed(store, parse_count(count), unit)


@sentence("given when", rf"writes to {STORE} are recorded every (?P<interval>.+)",
          "Starts the RPO marker writer: a sequenced, timestamped marker every interval, until the disaster.",
          'Given writes to "userdb" are recorded every 1 second')
def start_writer(drill: DrillScenario, store: str, interval: str) -> None:
    drill.start_writer(store, interval)


@sentence("given when", rf"writes to {STORE} stop",
          "Stops the marker writer before the disaster (to leave a known gap).",
          'When writes to "userdb" stop')
def stop_writer(drill: DrillScenario, store: str) -> None:
    drill.stop_writer(store)


@sentence("given when", r"(?P<duration>\d[^\"]*?) pass(?:es)?",
          "Lets time pass (for example so that writes accumulate after a backup).",
          "When 2 seconds pass")
def wait(drill: DrillScenario, duration: str) -> None:
    drill.wait(duration)


@sentence("given when", rf"a backup of {STORE} is taken",
          "Takes a backup with the store's native tool (PostgreSQL: pg_dump -Fc) and fingerprints the same snapshot.",
          'Given a backup of "userdb" is taken')
def take_backup(drill: DrillScenario, store: str) -> None:
    drill.take_backup(store)


@sentence("given when", rf"a gzip'd SQL dump of {STORE} is saved as \"(?P<path>[^\"]+)\"",
          "Writes a runbook-style backup (pg_dump | gzip) to a path; {timestamp} becomes YYYYmmdd_HHMMSS.",
          'Given a gzip\'d SQL dump of "userdb" is saved as "backups/postgres/userdb_{timestamp}.sql.gz"',
          needs=DumpsSql)
def save_runbook_dump(drill: DrillScenario, store: str, path: str) -> None:
    drill.save_runbook_dump(store, path)


@sentence("given when", rf"the latest backup of {STORE} in \"(?P<pattern>[^\"]+)\"",
          "Uses the newest file matching a glob as the store's latest backup, dated by its name or mtime.",
          'Given the latest backup of "userdb" in "backups/postgres/userdb_*.sql.gz"')
def latest_backup_in(drill: DrillScenario, store: str, pattern: str) -> None:
    drill.use_latest_backup(store, pattern)


@sentence("when", rf"{STORE} is lost",
          "The disaster: the store's data is destroyed (PostgreSQL: DROP DATABASE). Starts the RTO clock.",
          'When "userdb" is lost')
def lose(drill: DrillScenario, store: str) -> None:
    drill.lose(store)


@sentence("when", rf"{STORE} is restored from its latest backup",
          "Restores the latest backup into the store itself (PostgreSQL: pg_restore -j).",
          'When "userdb" is restored from its latest backup')
def restore(drill: DrillScenario, store: str) -> None:
    drill.restore(store)


@sentence("when", rf"{STORE} is restored from its latest backup into {_OTHER}",
          "Restores the latest backup into a new target (a new database); the original is not touched.",
          'When "userdb" is restored from its latest backup into "userdb_restored"')
def restore_into(drill: DrillScenario, store: str, other: str) -> None:
    drill.restore(store, into=other)


@sentence("given when", rf"SQL is run on {STORE}:?",
          "Runs the SQL of the step's doc string on a PostgreSQL store (setup, or a planted fault).",
          'When SQL is run on "userdb":', needs=RunsSql)
def run_sql(drill: DrillScenario, store: str, docstring: str) -> None:
    drill.run_sql(store, docstring)


@sentence("then", rf"{STORE} matches its state at the backup",
          "Compares the store's fingerprint (counts, content hashes, schema) with the one taken at its backup.",
          'Then "userdb" matches its state at the backup')
def matches(drill: DrillScenario, store: str) -> None:
    drill.assert_matches(store)


@sentence("then", rf"{STORE} matches the state of {_OTHER} at the backup",
          "Compares a restored copy with the fingerprint of another store's latest backup.",
          'Then "userdb_restored" matches the state of "userdb" at the backup')
def matches_other(drill: DrillScenario, store: str, other: str) -> None:
    drill.assert_matches(store, source=other)


@sentence("then", rf"{STORE} holds {COUNT} {UNITS}",
          "Counts everything in the store (PostgreSQL: rows of every table but drill's markers).",
          'Then "userdb" holds 10000 rows')
def holds(drill: DrillScenario, store: str, count: str, unit: str) -> None:
    drill.assert_count(store, parse_count(count), unit)


@sentence("then", rf"{STORE} holds {COUNT} {UNITS} in \"(?P<part>[^\"]+)\"",
          "Counts one table/collection, as the runbook's `SELECT COUNT(*) FROM users`.",
          'Then "userdb" holds 2000 rows in "users"')
def holds_in(drill: DrillScenario, store: str, count: str, unit: str, part: str) -> None:
    drill.assert_count(store, parse_count(count), unit, part)


@sentence("then", r"the recovery time is within (?P<duration>.+)",
          "RTO target: from the disaster to the verified restore.",
          "Then the recovery time is within 30 minutes")
def rto_within(drill: DrillScenario, duration: str) -> None:
    drill.check_target("rto", duration, drill.current_line)


@sentence("then", r"the data loss is at most (?P<duration>.+)",
          "RPO target: disaster time minus the newest surviving marker (or the backup's consistent time).",
          "Then the data loss is at most 1 hour")
def rpo_at_most(drill: DrillScenario, duration: str) -> None:
    drill.check_target("rpo", duration, drill.current_line)


# --- backup repository ---


@sentence("given when", rf"the latest backup of {STORE} in the repository",
          "Uses the newest backup `drill backup` made of the store ([repository]), checked and decrypted.",
          'Given the latest backup of "userdb" in the repository')
def latest_repository_backup(drill: DrillScenario, store: str) -> None:
    from drill.repository import use_in_drill

    use_in_drill(drill, store)


# --- gcs ---


@sentence("given when", rf"a backup of {STORE} is taken into the bucket \"(?P<bucket>[^\"]+)\"",
          "GCS: backs the bucket up by server-side copy into another bucket (metadata and hashes kept).",
          'Given a backup of "models" is taken into the bucket "eyewearml-backups"', needs=ObjectStore)
def take_backup_into_bucket(drill: DrillScenario, store: str, bucket: str) -> None:
    drill.take_backup_into_bucket(store, bucket)


@sentence("then", rf"{STORE} holds the object \"(?P<object_name>[^\"]+)\"",
          "GCS: a named object exists (the runbook's critical files check).",
          'Then "models" holds the object "models/face-analysis-v2.0/model.pb"', needs=ObjectStore)
def holds_object(drill: DrillScenario, store: str, object_name: str) -> None:
    drill.assert_holds_object(store, object_name)


@sentence("when", rf"{STORE} is restored from its object versions to the time of its latest backup",
          "GCS: point-in-time restore of a versioned bucket from object generations, to when the backup was taken.",
          'When "eyewearml-assets" is restored from its object versions to the time of its latest backup',
          needs=ObjectVersions)
def restore_from_versions(drill: DrillScenario, store: str) -> None:
    drill.restore_from_versions(store)
# --- point-in-time recovery, rollback, whole-system restores and health checks ---

_POINT = r"(?P<when>\"[^\"]+\"|just before the disaster|\d[^\"]*? before the disaster)"


@sentence("given", rf"the (?P<kind>PostgreSQL) store {STORE} archiving its WAL",
          "Declares a local PostgreSQL store whose WAL is archived, for point-in-time recovery (as `pitr = true`).",
          'Given the PostgreSQL store "userdb" archiving its WAL')
def declare_pitr_store(drill: DrillScenario, kind: str, store: str) -> None:
    drill.declare(kind, store, options={"pitr": True})  # what `pitr = true` in drill.toml says


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


@sentence("when", rf"the restore of {STORE} fails(?: because (?P<cause>{'|'.join(_FAULTS)}))?",
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


@sentence("when", r"the whole system is restored",
          "Restores every store of the scenario that has a backup from its latest one, in the order of drill.toml "
          "(`[drill] stages`, each store's `stage` and `depends_on`), independent stores in parallel, each "
          "verified against its backup; records each store's own RTO.",
          "When the whole system is restored")
def restore_whole_system(drill: DrillScenario) -> None:
    drill.restore_whole_system()


@sentence("then", rf"the recovery time of {STORE} is within (?P<duration>.+)",
          "A store's own RTO in a whole-system restore: from the disaster to its own verified restore.",
          'Then the recovery time of "userdb" is within 10 minutes')
def store_rto_within(drill: DrillScenario, store: str, duration: str) -> None:
    drill.check_store_rto(store, duration)


@sentence("given when", r"a health service for the stores is running",
          "Starts drill's local health service: `{health}/health` answers 200 when every store answers, else "
          "503 naming those that do not (a stand-in for the application tier).",
          "Given a health service for the stores is running")
def health_service(drill: DrillScenario) -> None:
    drill.start_health_service()


@sentence("then", r"the HTTP endpoint \"(?P<url>[^\"]+)\" answers (?P<status>\d{3})",
          "GETs the URL (waiting while the connection is refused, up to 30 s) and requires that status; "
          "`{health}` is drill's health service.",
          'Then the HTTP endpoint "http://127.0.0.1:8080/health" answers 200')
def endpoint_answers(drill: DrillScenario, url: str, status: str) -> None:
    drill.check_endpoint(url, int(status))


@sentence("then", rf"the query \"(?P<query>[^\"]+)\" on {STORE} returns \"(?P<expected>[^\"]*)\"",
          "Runs a query on a PostgreSQL store; the first column of its first row must read as given.",
          'Then the query "SELECT count(*) FROM users" on "userdb" returns "200"', needs=RunsSql)
def query_returns(drill: DrillScenario, query: str, store: str, expected: str) -> None:
    drill.check_query(store, query, expected)

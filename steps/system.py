"""Sentences about the whole system and its health: every store restored in order, endpoints, queries."""

from __future__ import annotations

from drill.scenario import DrillScenario
from drill.stores.capabilities import RunsSql
from drill.vocabulary import STORE, parse_count, sentence


@sentence("when", r"the whole system is restored",
          "Restores every store of the scenario that has a backup from its latest one, in the order of drill.toml "
          "(`[drill] stages`, each store's `stage` and `depends_on`), independent stores in parallel, each "
          "verified against its backup; records each store's own RTO.",
          "When the whole system is restored")
def restore_whole_system(drill: DrillScenario) -> None:
    """Stores are restored in waves: by `stage` in the order of `[drill] stages`, then by `depends_on`;
    the stores of a wave in parallel, each verified against its backup. A failure stops the restore
    after its wave and names the stores not restored. Health checks that pass after a restore stop the
    RTO clock, like verifications."""
    drill.restore_whole_system()


@sentence("then", rf"the recovery time of {STORE} is within (?P<duration>.+)",
          "A store's own RTO in a whole-system restore: from the disaster to its own verified restore.",
          'Then the recovery time of "userdb" is within 10 minutes')
def store_rto_within(drill: DrillScenario, store: str, duration: str) -> None:
    """From the disaster to this store's own verified restore, in a whole-system restore."""
    drill.check_store_rto(store, duration)


@sentence("given when", r"a health service for the stores is running",
          "Starts drill's local health service: `{health}/health` answers 200 when every store answers, else "
          "503 naming those that do not (a stand-in for the application tier).",
          "Given a health service for the stores is running")
def health_service(drill: DrillScenario) -> None:
    """drill's local health service stands in for an application tier that a drill has none of:
    `{health}/health` answers 200 when every store of the scenario answers, else 503 with the failing
    stores."""
    drill.start_health_service()


@sentence("then", r"the HTTP endpoint \"(?P<url>[^\"]+)\" answers (?P<status>\d{3})",
          "GETs the URL (waiting while the connection is refused, up to 30 s) and requires that status; "
          "`{health}` is drill's health service.",
          'Then the HTTP endpoint "http://127.0.0.1:8080/health" answers 200', converters={"status": int})
def endpoint_answers(drill: DrillScenario, url: str, status: int) -> None:
    """GETs the URL and requires that status. A refused connection is retried for up to 30 s (a service
    starting); any other status fails with the body's first 300 characters. `{health}` in the URL is
    drill's health service."""
    drill.check_endpoint(url, status)


@sentence("then", rf"the query \"(?P<query>[^\"]+)\" on {STORE} returns \"(?P<expected>[^\"]*)\"",
          "Runs a query on a PostgreSQL store; the first column of its first row must read as given.",
          'Then the query "SELECT count(*) FROM users" on "userdb" returns "200"', needs=RunsSql)
def query_returns(drill: DrillScenario, query: str, store: str, expected: str) -> None:
    """Runs the query on a PostgreSQL store; the first column of the first row, as text, must equal the expected value
    (a boolean reads `t`/`f` as psql prints it, or `true`/`false`). A check only reads: one statement (a prepared
    statement: `DROP TABLE x; SELECT 1` fails), always rolled back, and on a live store without `allow_writes`
    inside a `READ ONLY` transaction."""
    drill.check_query(store, query, expected)


@sentence("then", rf"the query \"(?P<query>[^\"]+)\" on {STORE} returns at least (?P<minimum>\d[\d,_]*)",
          "Runs a query on a store that runs SQL; the first column of its first row must be a number of at least N "
          "(not scaled by `seed_scale`).",
          'Then the query "SELECT count(*) FROM users WHERE active" on "userdb" returns at least 1500',
          needs=RunsSql, converters={"minimum": parse_count})
def query_returns_at_least(drill: DrillScenario, query: str, store: str, minimum: int) -> None:
    """The same reading rules as `returns "VALUE"` (one statement, rolled back, read-only on a live store),
    as a lower bound: a value that is not a number fails too."""
    drill.check_query_at_least(store, query, minimum)

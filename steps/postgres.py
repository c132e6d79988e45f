"""Sentences only PostgreSQL stores understand (the kind names this module in KindSpec.steps)."""

from __future__ import annotations

from drill.scenario import DrillScenario
from drill.stores.capabilities import DumpsSql
from drill.vocabulary import STORE, sentence


@sentence("given", rf"the (?P<kind>PostgreSQL) store {STORE} archiving its WAL",
          "Declares a local PostgreSQL store whose WAL is archived, for point-in-time recovery (as `pitr = true`).",
          'Given the PostgreSQL store "userdb" archiving its WAL')
def declare_pitr_store(drill: DrillScenario, kind: str, store: str) -> None:
    """Declares a local PostgreSQL store whose cluster archives every WAL segment (as `pitr = true` in
    drill.toml), so that it can be recovered to a point in time."""
    drill.declare(kind, store, options={"pitr": True})  # what `pitr = true` in drill.toml says


@sentence("given when", rf"a gzip'd SQL dump of {STORE} is saved as \"(?P<path>[^\"]+)\"",
          "Writes a runbook-style backup (pg_dump | gzip) to a path; {timestamp} becomes YYYYmmdd_HHMMSS.",
          'Given a gzip\'d SQL dump of "userdb" is saved as "backups/postgres/userdb_{timestamp}.sql.gz"',
          needs=DumpsSql)
def save_runbook_dump(drill: DrillScenario, store: str, path: str) -> None:
    """Writes a runbook-style backup (`pg_dump -Fp -Z 6`: plain SQL, gzip'd) to the path; `{timestamp}`
    becomes the UTC `YYYYmmdd_HHMMSS`. A relative path is relative to the drill.toml folder (or the
    working directory). This step does not make it the latest backup: find it with `the latest backup of
    ... in "GLOB"`."""
    drill.save_runbook_dump(store, path)

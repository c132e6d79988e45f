"""Sentences about the RPO writer, the disaster and the restore."""

from __future__ import annotations

from drill.scenario import DrillScenario
from drill.vocabulary import STORE, sentence

_OTHER = r'"(?P<other>[^"]+)"'


@sentence("given when", rf"writes to {STORE} are recorded every (?P<interval>.+)",
          "Starts the RPO marker writer: a sequenced, timestamped marker every interval, until the disaster.",
          'Given writes to "userdb" are recorded every 1 second')
def start_writer(drill: DrillScenario, store: str, interval: str) -> None:
    """Starts the RPO marker writer: a background thread writes sequenced, timestamped markers
    (`(seq, written_at)`; PostgreSQL: rows of the table `drill_markers`) at the interval until the
    disaster step, which stops it. It fails if a writer already runs for this store. On a live store it
    needs `allow_writes`."""
    drill.start_writer(store, interval)


@sentence("given when", rf"writes to {STORE} stop",
          "Stops the marker writer before the disaster (to leave a known gap).",
          'When writes to "userdb" stop')
def stop_writer(drill: DrillScenario, store: str) -> None:
    """Stops the marker writer early, to leave a known gap before the disaster. If the writer had failed,
    this step fails."""
    drill.stop_writer(store)


@sentence("given when", r"(?P<duration>\d[^\"]*?) pass(?:es)?",
          "Lets time pass (for example so that writes accumulate after a backup).",
          "When 2 seconds pass")
def wait(drill: DrillScenario, duration: str) -> None:
    """Sleeps for the duration (`... pass` or `... passes`), for example to let writes build up after a
    backup."""
    drill.wait(duration)


@sentence("when", rf"{STORE} is lost",
          "The disaster: the store's data is destroyed (PostgreSQL: DROP DATABASE). Starts the RTO clock.",
          'When "userdb" is lost')
def lose(drill: DrillScenario, store: str) -> None:
    """The disaster: the store's data is destroyed (PostgreSQL: `DROP DATABASE ... WITH (FORCE)`; Redis:
    `FLUSHALL`; a bucket or a project emptied; a volume removed). It stops the store's marker writer and
    starts the RTO clock. On a live store it refuses, before touching anything or starting the clock,
    unless `destructive = true`."""
    drill.lose(store)


@sentence("when", rf"{STORE} is restored from its latest backup",
          "Restores the latest backup into the store itself (PostgreSQL: pg_restore -j).",
          'When "userdb" is restored from its latest backup')
def restore(drill: DrillScenario, store: str) -> None:
    """Restores the latest backup into the store itself, also on a live store: in place means in place. drill first
    checks the backup completely (checksum, format), then re-creates the target (a live PostgreSQL database with the
    owner, encoding and locale it had) and restores (PostgreSQL: custom-format archives through `pg_restore -j N
    --exit-on-error`, N = `restore_jobs`; `.sql` and `.sql.gz` files are checked as data first, then go through
    `psql -v ON_ERROR_STOP=1`; the format is read from the file's first bytes). It starts the RTO clock if no
    disaster step ran, and measures the RPO. On a live store it needs `destructive = true`; without it the step is
    refused before anything is touched, naming both ways out (the setting, or `... into "NAME"`)."""
    drill.restore(store)


@sentence("when", rf"{STORE} is restored from its latest backup into {_OTHER}",
          "Restores the latest backup into a new target (a new database); the original is not touched.",
          'When "userdb" is restored from its latest backup into "userdb_restored"')
def restore_into(drill: DrillScenario, store: str, other: str) -> None:
    """Restores into a new target on the same server (a new database, bucket, project, volume). The original is not
    touched. The new name becomes a store of the scenario that later steps can use. On a live server the target must
    not exist yet, and drill removes it at the end of the scenario (or `drill repair` does, after a drill killed
    with SIGKILL). A name that is the store's own database, project, bucket or volume (the live URL's database,
    say) is refused before anything is touched: that would be an in-place restore without its guards, so say it
    in place (`... is restored from its latest backup`) or name a new target. The name is an identifier: one with
    `=`, a `scheme:` prefix, a leading `-`, a `/` or a control character is refused by `drill check` and `drill run`
    (exit code 2)."""
    drill.restore(store, into=other)

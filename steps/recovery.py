"""Sentences about the RPO writer, the disaster and the restore."""

from __future__ import annotations

from drill.scenario import DrillScenario
from drill.vocabulary import STORE, sentence

_OTHER = r'"(?P<other>[^"]+)"'


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

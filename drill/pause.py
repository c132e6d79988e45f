"""Pause points: drill waits at a named point of a drill so that a test can act there.

A test that must kill, interrupt or inspect drill at an exact moment (right after the disaster,
half-way through a restore) sets `DRILL_PAUSE_AT` to the point's name and `DRILL_PAUSE_FILE` to a
path. When drill reaches that point it writes its pid to the file and waits until the file is
removed (or the process is killed). The test waits for the file to appear instead of sleeping and
hoping, which races on a loaded 2-core machine. Without both variables a pause point costs one
dictionary lookup.

`DRILL_PAUSE_AT` may name several points, separated by commas: drill pauses at each (the file is written
again at every one), e.g. `provisioned:first,provisioned:second` for two scenarios of one run.

Points (`<store>` is the name in the feature):
    provisioned:<store>      the store is provisioned (its server is up, its database exists), nothing else yet
    disaster:<store>         the store has just been lost
    restore:<store>          the backup is chosen; the store's restore is about to start
    restore-started:<store>  PostgreSQL: the target database exists, no data is loaded yet;
                             Redis (live, replayed): the first batch of keys is restored, the rest is not
    self-test:<store>        self_test = true: the fault is planted in the restored copy, not yet checked
    hashing:<store>          MongoDB, whole-system restore: the verification has handed its first batch of
                             documents to a worker process (drill/hash_workers.py)

A second hook fixes the clock of retention decisions: with `DRILL_NOW` set to epoch seconds,
`drill backups prune` decides as of that moment, so a test that computed the expected decision
cannot see UTC midnight (or an hour's end) pass before drill decides.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

POINT_VARIABLE = "DRILL_PAUSE_AT"
FILE_VARIABLE = "DRILL_PAUSE_FILE"


NOW_VARIABLE = "DRILL_NOW"


def retention_now() -> float:
    """Now, for retention decisions: DRILL_NOW when a test fixed it, else the wall clock."""
    fixed = os.environ.get(NOW_VARIABLE)
    return float(fixed) if fixed else time.time()


def pause_point(name: str) -> None:
    points = os.environ.get(POINT_VARIABLE)
    if points is None or name not in points.split(","):
        return
    signal_file = os.environ.get(FILE_VARIABLE)
    if not signal_file:
        return
    path = Path(signal_file)
    path.write_text(str(os.getpid()))
    while path.exists():
        time.sleep(0.01)  # released by the test removing the file (or ended by a signal)

"""Pause points: drill waits at a named point of a drill so that a test can act there.

A test that must kill, interrupt or inspect drill at an exact moment (right after the disaster,
half-way through a restore) sets `DRILL_PAUSE_AT` to the point's name and `DRILL_PAUSE_FILE` to a
path. When drill reaches that point it writes its pid to the file and waits until the file is
removed (or the process is killed). The test waits for the file to appear instead of sleeping and
hoping, which races on a loaded 2-core machine. Without both variables a pause point costs one
dictionary lookup.

Points (`<store>` is the name in the feature):
    disaster:<store>         the store has just been lost
    restore:<store>          the backup is chosen; the store's restore is about to start
    restore-started:<store>  PostgreSQL: the target database exists, no data is loaded yet
    self-test:<store>        self_test = true: the fault is planted in the restored copy, not yet checked
"""

from __future__ import annotations

import os
import time
from pathlib import Path

POINT_VARIABLE = "DRILL_PAUSE_AT"
FILE_VARIABLE = "DRILL_PAUSE_FILE"


def pause_point(name: str) -> None:
    if os.environ.get(POINT_VARIABLE) != name:
        return
    signal_file = os.environ.get(FILE_VARIABLE)
    if not signal_file:
        return
    path = Path(signal_file)
    path.write_text(str(os.getpid()))
    while path.exists():
        time.sleep(0.01)  # released by the test removing the file (or ended by a signal)

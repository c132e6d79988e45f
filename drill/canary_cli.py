"""`drill canary STORE`: one timestamped canary into a live store, for cron (drill.canary says why).

Cron-friendly as `drill backup` is: nothing on stdout on success (unless -v), one line appended to the
repository's log file, notifications on failure, exit 0 done / 1 failed / 2 refused (the store is not
live, or its configuration does not allow writes) / 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
from typing import Any

from drill import backup_cli, canary
from drill.config import Config
from drill.errors import ConfigError
from drill.results import iso


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("canary", help="write a timestamped canary into a live store, for the real RPO of "
                                                "its backups (cron-friendly; needs allow_writes)")
    parser.add_argument("store", help="a live store configured in drill.toml with allow_writes = true")
    parser.add_argument("--profile", default=None, help="a [profiles.NAME] of drill.toml")
    parser.add_argument("-v", "--verbose", action="store_true", help="say what is done, also on success")


def command(args: argparse.Namespace, config: Config) -> int:
    """`drill canary STORE`: quiet on success, one log line, exit 0 / 1 failed / 2 refused (as `drill backup`)."""
    run = backup_cli.Run(config, "canary", args.store, args.verbose)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # cron's timeout takes Ctrl-C's path: logged, 130
    try:
        return backup_cli.guarded(run, lambda: _canary(run, args.store))
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _canary(run: backup_cli.Run, name: str) -> str:
    config = backup_cli.configured(run.config, backup_cli.plain_name(name))
    if not config.is_live:
        raise ConfigError(f"drill canary writes into live stores; {name!r} has provision = {config.provision!r} (a "
                          f"throwaway server): set provision = \"live\" under [stores.{name}]")
    with backup_cli.provisioned(config, run) as (store, _):
        marker = canary.write(store)
    run.details.update({"seq": str(marker.seq), "at": iso(marker.written_at) or ""})
    run.say(f"canary {marker.seq} written into {name} at {iso(marker.written_at)}")
    return f"canary {marker.seq} written into {name}"

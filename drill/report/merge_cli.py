"""`drill report merge DIR... -o OUT` and `drill report merge --from gs://BUCKET/PREFIX`.

argparse cannot give `drill report` an optional positional (RESULTS) and a sub-command both, so
`report merge` is rewritten to the command `report-merge` before parsing; both spellings work.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from drill.config import Config
from drill.durations import parse_duration
from drill.errors import DrillError
from drill.progress import Reporter
from drill.report.merge import (
    MergeError,
    Share,
    SharesMissing,
    check,
    differences,
    find_results,
    load_share,
    merge,
    share_failures,
)
from drill.session import DrillSession, new_run_id

COMMAND = "report-merge"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
POLL_SECONDS = 10.0  # --wait: how often the GCS prefix is listed again


def spell_merge(argv: list[str]) -> list[str]:
    """`drill [--config F] report merge ...` -> `drill [--config F] report-merge ...`."""
    argv = list(argv)
    position = 0
    while position < len(argv) and argv[position].startswith("-"):
        position += 2 if argv[position] == "--config" else 1
    if argv[position:position + 2] == ["report", "merge"]:
        argv[position:position + 2] = [COMMAND]
    return argv


def add_parser(commands: Any) -> None:
    merge = commands.add_parser(COMMAND, prog="drill report merge",
                                help="`drill report merge`: join the shares of a sharded run (drill run --shard I/N) "
                                     "into one run, report and history entry")
    merge.add_argument("folders", nargs="*", type=Path,
                       help="the shares' results.json, or folders searched for them (e.g. downloaded CI artefacts)")
    merge.add_argument("--from", dest="source", default=None, metavar="gs://BUCKET/PREFIX",
                       help="read every share's results.json under this prefix (the shares' --output-dir)")
    merge.add_argument("--wait", default=None, metavar="DURATION",
                       help="with --from: wait up to DURATION (e.g. 2h) for every share to arrive")
    merge.add_argument("-o", "--output-dir", default=None, metavar="OUT",
                       help="also write results.json and the reports here under fixed names (a folder, or gs://)")
    merge.add_argument("--run-id", default=None, help="the merged run's id (default: time-stamped and random)")
    merge.add_argument("--report-dir", type=Path, default=None,
                       help="where the merged run goes as <run-id>/ (default: reports/)")
    merge.add_argument("--report-format", action="append", default=None, metavar="FORMAT",
                       help="reports written (html, md, junit, json, all (default) or none)")


def _shares(args: argparse.Namespace, work: Path) -> tuple[list[Share], str]:
    shares: list[Share] = []
    sources = []
    if args.source:
        from drill.report.outputs import download_runs

        for path in download_runs(args.source, work):
            where = f"{args.source.rstrip('/')}/{path.relative_to(work)}"
            shares.append(load_share(path, where))
        sources.append(args.source)
    for path in find_results(args.folders):
        shares.append(load_share(path, str(path)))
    sources += [str(f) for f in args.folders]
    if not sources:
        raise MergeError("name the shares: folders (or results.json files) after `drill report merge`, or --from "
                         "gs://BUCKET/PREFIX")
    return shares, ", ".join(sources)


def _checked_shares(args: argparse.Namespace, work: Path) -> list[Share]:
    deadline = time.monotonic() + (parse_duration(args.wait) if args.wait else 0.0)
    if args.wait and not args.source:
        raise DrillError("--wait applies to --from gs://… (shares arriving in a bucket)")
    while True:
        shares, sources = _shares(args, work)
        try:
            check(shares, sources)
            return shares
        except SharesMissing as exc:
            if time.monotonic() >= deadline:
                raise
            print(f"drill: waiting for the shares: {exc}", file=sys.stderr)
            time.sleep(POLL_SECONDS)  # a CI job's shares arrive over minutes: list the bucket again


def merge_command(args: argparse.Namespace, config: Config) -> int:
    from drill.report.cli import export_after_run, reports_after_run
    from drill.report.history_store import history_store
    from drill.report.terminal import summary_table

    report_dir = (args.report_dir or config.report_dir).resolve()
    with tempfile.TemporaryDirectory(prefix="drill-merge-") as tmp:
        shares = _checked_shares(args, Path(tmp))
    for note in differences(shares):
        print(f"drill: warning: {note}", file=sys.stderr)
    for note in share_failures(shares):
        print(f"drill: {note}", file=sys.stderr)
    session = DrillSession(config, Reporter(quiet=True), report_dir=report_dir, run_id=args.run_id or new_run_id())
    session.run = merge(shares, session.run.run_id, session.run.command)
    path = session.write()
    assert path is not None
    for line in summary_table(session.run):
        print(line)
    count = shares[0].shard.count
    print(f"merged {count} share(s) into run {session.run.run_id}: {path}")
    history = history_store(config, report_dir)
    reports_after_run(path, args.report_format, history)
    if not export_after_run(path, history, args):
        return EXIT_USAGE
    status = session.run.status
    if status == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_OK if status == "passed" else EXIT_FAILED

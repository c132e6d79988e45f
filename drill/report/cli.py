"""`drill report` and the reports `drill run` writes at its end."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from drill.config import Config
from drill.errors import DrillError
from drill.report.history import HISTORY_FILENAME, read_history, verify
from drill.report.history_store import HistoryStore, history_store
from drill.report.model import latest_results, load, resolve_results
from drill.report.render import parse_formats, render, write_reports

EXIT_OK, EXIT_TAMPERED, EXIT_USAGE = 0, 1, 2


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def report_command(args: argparse.Namespace, config: Config) -> int:
    report_dir: Path = (args.report_dir or config.report_dir).resolve()
    if args.verify:
        return _verify(report_dir, args.results, config)
    history = history_store(config, report_dir)
    results = resolve_results(args.results) if args.results else latest_results(report_dir)
    formats = parse_formats(args.format)
    if args.output == "-":
        if len(formats) != 1:
            raise DrillError("--output - prints one format: choose it with --format (e.g. --format md)")
        sys.stdout.write(render(load(results, history), formats[0]))
        return EXIT_OK
    written = write_reports(results, formats, Path(args.output) if args.output else None, history=history)
    loaded = load(results, history)
    for path in written:
        print(_rel(path))
    if loaded.seal_problem or loaded.history_problems:
        print(f"drill: warning: {_rel(results)} failed its integrity check; the reports say so "
              f"(see `drill report --verify`)", file=sys.stderr)
    return EXIT_OK


def _verify(report_dir: Path, results: Path | None, config: Config) -> int:
    only = resolve_results(results) if results else None
    if only is not None:
        report_dir = only.resolve().parent.parent
    history = history_store(config, report_dir)
    if not history.read_text().strip() and not list(report_dir.glob("*/results.json")):
        raise DrillError(f"{report_dir}: no runs and no {HISTORY_FILENAME} to verify ({history.location})")
    problems = verify(report_dir, only=only, store=history)
    if problems:
        for problem in problems:
            print(f"drill: TAMPERED: {problem}", file=sys.stderr)
        print(f"drill: verification failed: {len(problems)} problem(s) in {_rel(report_dir)}", file=sys.stderr)
        return EXIT_TAMPERED
    entries = read_history(report_dir, history)
    what = f"run {only.parent.name}" if only else f"{len(entries)} run(s)"
    head = entries[-1].hash if entries else "-"
    kept = "" if history.holds_runs_of(report_dir) else f", history {history.location}"
    print(f"drill: verified {what} in {_rel(report_dir)}{kept}: results match their sha256 and the history chain "
          f"is intact (chain head {head})")
    return EXIT_OK


def reports_after_run(results: Path, formats_option: list[str] | None, history: HistoryStore | None = None) -> None:
    """Write the reports at the end of `drill run`; a rendering problem never changes the run's verdict."""
    if formats_option and any(v.strip().lower() == "none" for v in formats_option):
        return
    problems: list[str] = []
    try:
        written = write_reports(results, parse_formats(formats_option), problems=problems, history=history)
    except (DrillError, OSError) as exc:
        print(f"drill: warning: reports not written: {exc}", file=sys.stderr)
        return
    for problem in problems:
        print(f"drill: warning: report not written: {problem}", file=sys.stderr)
    if written:
        print("reports: " + ", ".join(_rel(p) for p in written))


def export_after_run(results: Path, history: HistoryStore, args: argparse.Namespace) -> bool:
    """The stable copies `drill run` (or `drill report merge`) was asked for; False when one could not be written."""
    from drill.report.outputs import export_run

    output_dir = getattr(args, "output_dir", None)
    paths = {"results": getattr(args, "results_path", None), "junit": getattr(args, "junit_xml", None),
             "html": getattr(args, "html", None)}
    try:
        written = export_run(results, history, output_dir=output_dir, paths=paths)
    except (DrillError, OSError) as exc:
        print(f"drill: error: {exc}", file=sys.stderr)
        return False
    if written:
        print("copies: " + ", ".join(w if w.startswith("gs://") else _rel(Path(w)) for w in written))
    return True

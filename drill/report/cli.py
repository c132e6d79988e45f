"""`drill report` and the reports `drill run` writes at its end."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from drill.config import Config
from drill.errors import DrillError
from drill.report.history import HISTORY_FILENAME, read_history, verify
from drill.report.history_store import HistoryStore, history_store
from drill.report.model import latest_results, load, resolve_results
from drill.report.render import parse_formats, render, write_reports
from drill.report.signing import UNSIGNED, check_history_entry, check_results, load_public_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

EXIT_OK, EXIT_TAMPERED, EXIT_USAGE = 0, 1, 2
PACK_COMMAND = "report-pack"  # `drill report pack ...` is parsed as this command


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def public_key_of(config: Config, explicit: Path | None = None) -> Ed25519PublicKey | None:
    """The key signatures are checked with: --public-key, else [drill] signing_public_key, else none."""
    path = explicit or config.signing_public_key
    return load_public_key(path) if path is not None else None


def report_command(args: argparse.Namespace, config: Config) -> int:
    report_dir: Path = (args.report_dir or config.report_dir).resolve()
    public = public_key_of(config, getattr(args, "public_key", None))
    if args.verify:
        return _verify(report_dir, args.results, config, public)
    history = history_store(config, report_dir)
    results = resolve_results(args.results) if args.results else latest_results(report_dir)
    formats = parse_formats(args.format)
    if args.output == "-":
        if len(formats) != 1:
            raise DrillError("--output - prints one format: choose it with --format (e.g. --format md)")
        sys.stdout.write(render(load(results, public, history), formats[0]))
        return EXIT_OK
    written = write_reports(results, formats, Path(args.output) if args.output else None, public_key=public,
                            history=history)
    loaded = load(results, public, history)
    for path in written:
        print(_rel(path))
    if loaded.seal_problem or loaded.history_problems:
        print(f"drill: warning: {_rel(results)} failed its integrity check; the reports say so "
              f"(see `drill report --verify`)", file=sys.stderr)
    return EXIT_OK


def _verify(report_dir: Path, results: Path | None, config: Config, public: Ed25519PublicKey | None) -> int:
    only = resolve_results(results) if results else None
    if only is not None:
        report_dir = only.resolve().parent.parent
    history = history_store(config, report_dir)
    if not history.read_text().strip() and not list(report_dir.glob("*/results.json")):
        raise DrillError(f"{report_dir}: no runs and no {HISTORY_FILENAME} to verify ({history.location})")
    problems = verify(report_dir, only=only, store=history, public=public)
    if problems:
        for problem in problems:
            print(f"drill: TAMPERED: {problem}", file=sys.stderr)
        print(f"drill: verification failed: {len(problems)} problem(s) in {_rel(report_dir)}", file=sys.stderr)
        return EXIT_TAMPERED
    entries = read_history(report_dir, history)
    what = f"run {only.parent.name}" if only else f"{len(entries)} run(s)"
    head = entries[-1].hash if entries else "-"
    # What vouches for these results: a signature checked with the public key, or only hashes.
    signed = check_results(only, public) if only is not None else (
        check_history_entry(entries[-1].hash, entries[-1].signature, public) if entries else None)
    if signed is None or (signed.state == UNSIGNED and public is None):
        trust = "unsigned: checks accidental edits only"
    else:
        trust = signed.text
    kept = "" if history.holds_runs_of(report_dir) else f", history {history.location}"
    print(f"drill: verified {what} in {_rel(report_dir)}{kept}: results match their sha256 and the history chain "
          f"is intact (chain head {head}); {trust}")
    return EXIT_OK


def reports_after_run(results: Path, formats_option: list[str] | None, history: HistoryStore | None = None,
                      public_key: Ed25519PublicKey | None = None) -> None:
    """Write the reports at the end of `drill run`; a rendering problem never changes the run's verdict."""
    if formats_option and any(v.strip().lower() == "none" for v in formats_option):
        return
    problems: list[str] = []
    try:
        written = write_reports(results, parse_formats(formats_option), problems=problems, public_key=public_key,
                                history=history)
    except (DrillError, OSError) as exc:
        print(f"drill: warning: reports not written: {exc}", file=sys.stderr)
        return
    for problem in problems:
        print(f"drill: warning: report not written: {problem}", file=sys.stderr)
    if written:
        print("reports: " + ", ".join(_rel(p) for p in written))


def add_pack_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`drill report pack`: the command line routes `report pack` here (see drill.cli)."""
    pack = commands.add_parser(PACK_COMMAND, prog="drill report pack",
                               help="`drill report pack [RUN] -o evidence.zip`: one run's audit evidence in a zip; "
                                    "`drill report pack --verify evidence.zip` checks one")
    pack.add_argument("target", nargs="?", type=Path, default=None, metavar="RUN|PACK",
                      help="reports/<run-id> or its results.json (default: the latest run); with --verify, the zip")
    pack.add_argument("--output", "-o", type=Path, default=None,
                      help="the zip to write (default: evidence-<run-id>.zip in the working directory)")
    pack.add_argument("--verify", action="store_true", help="check a pack on its own; exit 1 naming what differs")
    pack.add_argument("--no-pdf", action="store_true", help="leave the PDF out (no Chromium needed)")
    pack.add_argument("--public-key", type=Path, default=None,
                      help="with --verify: check results.json's signature with this key (default: [drill] "
                           "signing_public_key)")
    pack.add_argument("--report-dir", type=Path, default=None, help="where runs are (default: reports/)")


def pack_command(args: argparse.Namespace, config: Config) -> int:
    from drill.report.pack import verify_pack, write_pack

    if args.verify:
        if args.target is None:
            raise DrillError("name the pack to check: drill report pack --verify evidence.zip")
        if not args.target.is_file():
            raise DrillError(f"{args.target}: no such file; name an evidence pack (a .zip `drill report pack` wrote)")
        verdict = verify_pack(args.target, public_key_of(config, args.public_key))
        if verdict.problems:
            for problem in verdict.problems:
                print(f"drill: TAMPERED: {problem}", file=sys.stderr)
            print(f"drill: {args.target}: verification failed: {len(verdict.problems)} problem(s)", file=sys.stderr)
            return EXIT_TAMPERED
        signature = verdict.signature.text if verdict.signature else "unsigned: checks accidental edits only"
        print(f"drill: verified {args.target}: {verdict.members} members match the index; results of run "
              f"{verdict.run_id} match their sha256; history chain of {verdict.chain_length} entries intact up to "
              f"this run (head {verdict.chain_head}); {signature}")
        return EXIT_OK
    report_dir: Path = (args.report_dir or config.report_dir).resolve()
    results = resolve_results(args.target) if args.target else latest_results(report_dir)
    output = args.output or Path(f"evidence-{results.resolve().parent.name}.zip")
    loaded, members = write_pack(results, output, config, pdf=not args.no_pdf)
    print(f"drill: wrote {_rel(output)}: run {loaded.run.run_id}, {len(members)} members "
          f"({', '.join(m.name for m in members)}) and index.json")
    return EXIT_OK


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

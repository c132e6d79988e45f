"""The `drill` command: run, list and check drills; report on their results.

Exit codes: 0 every scenario and every target passed; 1 a scenario failed or a target was
missed; 2 bad input (configuration, feature files, arguments); 130 interrupted (Ctrl-C/SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from drill import __version__, backup_cli, canary_cli, status_cli
from drill.config import Config, load_config
from drill.errors import DrillError, FeatureError, UnsupportedStep
from drill.features import check, find_features, unevidenced_controls
from drill.provision.processes import mark_owned, sweep_stale
from drill.session import new_run_id

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drill", description="Disaster-recovery drills as code.")
    parser.add_argument("--version", action="version", version=f"drill {__version__}")
    parser.add_argument("--config", type=Path, default=None, help="drill.toml (default: ./drill.toml if present)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run drills and write reports/<run-id>/results.json")
    run.add_argument("paths", nargs="*", type=Path, help=".feature files or folders (default: features/)")
    run.add_argument("--profile", default=None, help="a [profiles.NAME] of drill.toml (e.g. ci, quarterly)")
    run.add_argument("--tags", default=None, help='tag expression, e.g. "tier:critical and not slow"')
    run.add_argument("--report-dir", type=Path, default=None, help="where results go (default: reports/)")
    run.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    run.add_argument("--report-format", action="append", default=None, metavar="FORMAT",
                     help="reports written at the end: html, md, junit, json (Cucumber), all (default) or none")
    run.add_argument("--pytest-arg", action="append", default=[], metavar="ARG",
                     help="pass an argument through to pytest (repeatable), e.g. --pytest-arg=--tb=long")
    _add_ci_arguments(run)

    listing = commands.add_parser("list", help="list scenarios with their tags and targets")
    listing.add_argument("paths", nargs="*", type=Path, help=".feature files or folders (default: features/)")
    listing.add_argument("--profile", default=None, help="a [profiles.NAME] of drill.toml (its tiers set the targets)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    checking = commands.add_parser("check", help="validate features and configuration without running anything")
    checking.add_argument("paths", nargs="*", type=Path, help=".feature files or folders (default: features/)")
    checking.add_argument("--profile", default=None, help="a [profiles.NAME] of drill.toml to validate against")

    repair = commands.add_parser("repair", help="finish what a drill killed with SIGKILL left on live stores: "
                                                "drop its restore targets, put the stores back, verified")
    repair.add_argument("--profile", default=None, help="a [profiles.NAME] of drill.toml")

    report = commands.add_parser("report", help="render a run's results as HTML, Markdown, JUnit XML, Cucumber "
                                                "JSON; --verify checks results and history for tampering; "
                                                "`drill report pack` bundles a run's audit evidence")
    report.add_argument("results", nargs="?", type=Path, default=None,
                        help="reports/<run-id>/results.json or its folder (default: the latest run)")
    report.add_argument("--format", action="append", default=None, metavar="FORMAT",
                        help="html, md, junit, json (Cucumber) or all (default); repeat or comma-separate")
    report.add_argument("--output", "-o", default=None,
                        help="folder for the files (default: next to results.json); '-' prints one format")
    report.add_argument("--verify", action="store_true",
                        help="check every results.json digest and the history hash chain; exit 1 naming the run")
    report.add_argument("--report-dir", type=Path, default=None, help="where runs are (default: reports/)")
    report.add_argument("--public-key", type=Path, default=None, metavar="FILE",
                        help="ed25519 public key the signatures must verify with (default: [drill] signing_public_key)")
    keygen = commands.add_parser("keygen", help="make a backup key (an age identity) or, with --signing, an ed25519 "
                                                "key pair for signed results")
    keygen.add_argument("path", type=Path, help="the private key file to create (never overwritten; mode 0600)")
    keygen.add_argument("--signing", action="store_true",
                        help="an ed25519 signing key; its public key goes to PATH.pub")
    backup_cli.add_parsers(commands)  # backup, restore, backups list|verify|prune
    canary_cli.add_parser(commands)
    status_cli.add_parser(commands)
    from drill.report.cli import add_pack_parser
    from drill.report.merge_cli import add_parser as add_merge_parser

    add_pack_parser(commands)  # `drill report pack` (spelt report-pack for argparse)
    add_merge_parser(commands)  # `drill report merge` (spelt report-merge for argparse)
    return parser


def _add_ci_arguments(run: argparse.ArgumentParser) -> None:
    """`drill run`'s options for CI: stable output paths, parallel workers, shares across machines."""
    run.add_argument("--output-dir", default=None, metavar="DIR",
                     help="also write results.json, report.html, summary.md, junit.xml and cucumber.json here, "
                          "under those names (a folder, or gs://BUCKET/PREFIX)")
    run.add_argument("--results", dest="results_path", type=Path, default=None, metavar="PATH",
                     help="also write results.json to PATH")
    run.add_argument("--junit-xml", type=Path, default=None, metavar="PATH", help="also write the JUnit XML to PATH")
    run.add_argument("--html", type=Path, default=None, metavar="PATH", help="also write the HTML report to PATH")
    run.add_argument("-n", "--numprocesses", default=None, metavar="N",
                     help="run scenarios in N parallel worker processes (pytest-xdist): a number, or auto "
                          "(one per CPU); 0 runs them in this process")
    run.add_argument("--shard", default=None, metavar="I/N",
                     help="run share I of N (1-based) of the scenarios; join the shares with `drill report merge`")
    run.add_argument("--shard-by", default="history", choices=("history", "count"),
                     help="balance the shares by the durations in the history (default) or by count")


def _route_report_pack(argv: list[str]) -> list[str]:
    """`drill [--config F] report pack ...` is its own command: `report` takes a RESULTS path where `pack` stands."""
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        index += 1 if "=" in argv[index] or argv[index] in ("--version", "-h", "--help") else 2
    if argv[index:index + 2] == ["report", "pack"]:
        from drill.report.cli import PACK_COMMAND

        return [*argv[:index], PACK_COMMAND, *argv[index + 2:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    from drill.report.merge_cli import COMMAND as MERGE_COMMAND
    from drill.report.merge_cli import spell_merge

    args = _parser().parse_args(spell_merge(_route_report_pack(list(sys.argv[1:] if argv is None else argv))))
    try:
        config = load_config(args.config, profile=getattr(args, "profile", None))
        if args.command in backup_cli.COMMANDS:
            return backup_cli.main(args, config)
        if args.command == "canary":
            return canary_cli.command(args, config)
        if args.command == "repair":
            return _repair(config)
        if args.command == "report-pack":
            from drill.report.cli import pack_command

            return pack_command(args, config)
        if args.command == "status":
            return status_cli.status_command(args, config)
        if args.command == MERGE_COMMAND:
            from drill.report.merge_cli import merge_command

            return merge_command(args, config)
        if args.command == "report":
            from drill.report.cli import report_command

            return report_command(args, config)
        if args.command == "keygen":
            return _keygen(args)
        paths = args.paths or [config.base_dir / "features"]
        if args.command == "run":
            return _run(args, config, paths)
        if args.command == "list":
            return _list(args, config, paths)
        return _check(config, paths)
    except DrillError as exc:
        print(f"drill: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("drill: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _report_errors(errors: list[FeatureError]) -> None:
    for error in errors:
        print(f"drill: error: {error}", file=sys.stderr)
    print(f"drill: {len(errors)} problem(s) found; nothing was run", file=sys.stderr)


def _repair(config: Config) -> int:
    """`drill repair`: every safety-net journal whose drill is gone (drill.repair); exit 1 when one cannot be
    finished (it stays, and its message says why)."""
    from drill.redact import redact_text
    from drill.repair import repair_all, sweep_temp_folders

    swept = sweep_temp_folders()
    outcomes = repair_all(config, lambda text: print(f"  {redact_text(text)}", flush=True))
    for outcome in outcomes:
        verdict = "repaired" if outcome.ok else "NOT repaired"
        lines = [f"{outcome.store}: {verdict}: {outcome.interrupted or ''}", f"  outcome: {outcome.outcome}"
                 + (f" ({outcome.matched})" if outcome.matched else "")]
        lines += [f"  {change}" for change in outcome.changes]
        if outcome.message:
            lines.append(f"  {outcome.message}")
        print(redact_text("\n".join(lines)), flush=True)
    if not outcomes:
        print(f"drill: nothing to repair in {config.backup_dir}"
              + (f" (removed {len(swept)} temporary folder(s) left by killed drills)" if swept else ""))
    return EXIT_OK if all(o.ok for o in outcomes) else EXIT_FAILED


def _check(config: Config, paths: list[Path]) -> int:
    from drill.report.history_store import history_location

    history_location(config)  # DRILL_HISTORY is read from the environment: a CI preflight checks it too
    infos, errors = check(paths, config)
    errors += unevidenced_controls(infos, config)
    if errors:
        _report_errors(errors)
        return EXIT_USAGE
    where = config.path or "no drill.toml: every store local (embedded default)"
    print(f"drill: {len(infos)} scenario(s) in {len(find_features(paths))} feature file(s) are valid "
          f"(configuration: {where}{f', profile {config.profile}' if config.profile else ''})")
    return EXIT_OK


def _list(args: argparse.Namespace, config: Config, paths: list[Path]) -> int:
    infos, errors = check(paths, config, environment=False)  # listing needs no live URL
    rows: list[dict[str, Any]] = [
        {"location": f"{_rel(i.path)}:{i.line}", "feature": i.feature, "scenario": i.name, "tags": i.tags,
         "targets": i.targets} for i in infos]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            tags = " ".join(f"@{t}" for t in row["tags"]) or "-"
            targets = "; ".join(row["targets"]) or "no targets"
            print(f"{row['location']}  {row['scenario']}\n    tags: {tags}\n    targets: {targets}")
    if errors:
        _report_errors(errors)
        return EXIT_USAGE
    return EXIT_OK


def _run(args: argparse.Namespace, config: Config, paths: list[Path]) -> int:
    import pytest

    if args.report_format and not any(v.strip().lower() == "none" for v in args.report_format):
        from drill.report.render import parse_formats

        parse_formats(args.report_format)  # an unknown format is bad input: refused before anything runs
    features = find_features(paths)
    _, errors = check(features, config)
    for unsupported in [e for e in errors if isinstance(e, UnsupportedStep)]:
        # Other scenarios still run; this one fails at that step, saying the same.
        print(f"drill: warning: {unsupported}", file=sys.stderr)
    errors = [e for e in errors if not isinstance(e, UnsupportedStep)]
    if errors:  # refuse before provisioning anything
        _report_errors(errors)
        return EXIT_USAGE
    report_dir = (args.report_dir or config.report_dir).resolve()
    from drill.report.signing import load_signing_key

    signer = load_signing_key(config)  # a broken signing key is a configuration error, found before any drill
    parallel_args = _parallel_arguments(args)  # refused (exit 2) before anything is provisioned
    from drill.report.history_store import history_location

    history_location(config)  # a bad DRILL_HISTORY too
    if args.output_dir and args.output_dir.startswith("gs://"):
        from drill.report.outputs import check_gcs_prefix

        check_gcs_prefix(args.output_dir)
    run_id = new_run_id()
    # SIGTERM (CI cancelling a job) takes the same path as Ctrl-C: clean up, write results.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    previous_int = signal.getsignal(signal.SIGINT)
    # The generated test module's folder; one left by a drill killed with SIGKILL is swept here.
    sweep_stale("drill-run-", "generated test folder", lambda _folder: None)
    with tempfile.TemporaryDirectory(prefix="drill-run-") as tmp:
        mark_owned(Path(tmp))
        module = _write_test_module(Path(tmp), features)
        pytest_args = [str(module), "-c", str(Path(tmp) / "pytest.ini"), "--rootdir", str(Path.cwd()),
                       "-p", "no:cacheprovider", "-q", "--tb=no", "-rN", "--no-header", "--drill-mode",
                       # drill imported pytest-bdd and its steps (for `check`) before pytest started
                       "-W", "ignore::pytest.PytestAssertRewriteWarning",
                       "--drill-report-dir", str(report_dir), "--drill-run-id", run_id]
        if config.path:
            pytest_args += ["--drill-config", str(config.path)]
        if args.profile:
            pytest_args += ["--drill-profile", args.profile]
        if args.tags:
            pytest_args += ["-m", args.tags]
        if args.quiet:
            pytest_args.append("--drill-quiet")
        for plugin in config.plugins:
            pytest_args += ["-p", plugin]
        pytest_args += parallel_args
        if "-n" in parallel_args:  # workers: an interrupt goes to them first, so that they clean up
            workers = Path(tmp) / "workers"
            workers.mkdir()
            pytest_args += ["--drill-worker-pids", str(workers)]
            handler = _WorkerInterrupt(workers)
            signal.signal(signal.SIGTERM, handler)
            signal.signal(signal.SIGINT, handler)
        pytest_args += args.pytest_arg
        try:
            code = pytest.main(pytest_args)
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
    results = report_dir / run_id / "results.json"
    data = json.loads(results.read_text()) if results.is_file() else {}
    status = data.get("status")
    exported = True
    if results.is_file():
        from drill.report.cli import export_after_run, public_key_of, reports_after_run
        from drill.report.history_store import history_store

        history = history_store(config, report_dir)
        reports_after_run(results, args.report_format, history,
                          public_key_of(config) or (signer.public if signer else None))
        exported = export_after_run(results, history, args)
    if config.notify.enabled:
        backup_cli.notify_drill_run(config, run_id, status or "error", results)
    if code == pytest.ExitCode.INTERRUPTED or status == "interrupted":
        return EXIT_INTERRUPTED
    if not exported:
        return EXIT_USAGE
    if code == pytest.ExitCode.NO_TESTS_COLLECTED and data.get("shard") and status == "passed":
        print(f"drill: share {args.shard} has no scenario to run (more shares than scenarios)", file=sys.stderr)
        return EXIT_OK
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print(f"drill: no scenario matched{f' --tags {args.tags!r}' if args.tags else ''}", file=sys.stderr)
        return EXIT_USAGE
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    return EXIT_OK if (code == pytest.ExitCode.OK and status == "passed") else EXIT_FAILED


def _keygen(args: argparse.Namespace) -> int:
    if args.signing:
        from drill.report.signing import generate

        public = args.path.with_name(args.path.name + ".pub")
        key_id = generate(args.path, public)
        print(f"signing key {args.path} (key id {key_id}); public key {public}\n"
              f"set [drill] signing_key_file = \"{args.path}\" (or the env var DRILL_SIGNING_KEY) where drills run, "
              f"and signing_public_key = \"{public}\" where results are checked")
        return EXIT_OK
    from drill import age_files, crypto

    key = crypto.new_key_file(args.path)
    print(f"backup key {args.path} (key id {key.id}; age recipient {age_files.recipient(key)})\n"
          f"set [repository] key_file = \"{args.path}\" and keep a copy away from the backups: without it no "
          f"backup can be restored")
    return EXIT_OK


def _parallel_arguments(args: argparse.Namespace) -> list[str]:
    """pytest arguments for -n (pytest-xdist) and --shard (drill's plugin)."""
    found: list[str] = []
    if args.numprocesses is not None:
        value = str(args.numprocesses).strip().lower()
        if value not in ("auto", "logical") and not (value.isdigit()):
            raise DrillError(f"-n {args.numprocesses!r}: give a number of worker processes, or auto (one per CPU)")
        if value != "0":
            found += ["-n", value]
    if args.shard is not None:
        from drill.sharding import parse_shard

        parse_shard(args.shard)
        found += ["--drill-shard", args.shard, "--drill-shard-by", args.shard_by]
    return found


class _WorkerInterrupt:
    """Ctrl-C or SIGTERM with -n: the first is sent on to the workers (they stop their scenarios, clean up and
    report them, then the run ends as interrupted); a second stops this process at once."""

    def __init__(self, workers: Path) -> None:
        self.workers = workers
        self.forwarded = False

    def __call__(self, signum: int, frame: object) -> None:
        if self.forwarded:
            raise KeyboardInterrupt(f"signal {signum}")
        self.forwarded = True
        from drill.parallel import forward_interrupt

        reached = forward_interrupt(self.workers, signum)
        print(f"drill: interrupted: {len(reached)} worker(s) stop and clean up (again to stop at once)",
              file=sys.stderr, flush=True)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _write_test_module(directory: Path, features: list[Path]) -> Path:
    """A generated test module that binds every scenario of the features (pytest-bdd's scenarios())."""
    module = directory / "test_drills.py"
    listed = ", ".join(repr(str(f.resolve())) for f in features)
    module.write_text("from pytest_bdd import scenarios\n\n"
                      f"scenarios({listed})\n", encoding="utf-8")
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    return module


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())

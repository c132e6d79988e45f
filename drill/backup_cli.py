"""`drill backup`, `drill restore` and `drill backups list|verify|prune`: the day-to-day commands.

Fit for cron: nothing on stdout when all went well (unless --verbose), one line appended to the
repository's log file per run, notifications on failure, a lock per store, and exit codes:
0 done; 1 the backup/restore/verification failed (also on an unexpected error: it is logged and
notified like any failure, its traceback printed only with -v); 2 bad input, a wrong or missing key,
or refused for safety (nothing was touched, no backup marked failed); 75 another drill run holds the
store's lock (EX_TEMPFAIL: try again later); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from drill import (
    age_files,
    backup_dates,
    canary,
    crypto,
    found_backups,
    notify,
    restore_checks,
    safe_paths,
)
from drill.cleanup import CleanupStack
from drill.config import Config, StoreConfig
from drill.durations import format_duration
from drill.errors import BackupError, ConfigError, DrillError, SafetyError, VerificationError
from drill.fingerprint import compare
from drill.lock import LockBusy
from drill.names import check_name
from drill.redact import redact_text
from drill.repository import AUTHENTICATED, Entry, Repository, open_repository
from drill.results import iso
from drill.stores.base import BackupArtifact, Store, require_new_restore_target
from drill.stores.capabilities import ScratchTargets

COMMANDS = ("backup", "restore", "backups")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY, EXIT_INTERRUPTED = 0, 1, 2, 75, 130
_GLOB_CHARS = set("*?[")


def add_parsers(commands: Any) -> None:
    """The backup subcommands, added to `drill`'s subparsers."""
    backup = commands.add_parser("backup", help="back up a configured store into the repository (cron-friendly)")
    backup.add_argument("store", help="a store configured in drill.toml")
    _common(backup)

    restore = commands.add_parser("restore", help="restore a store from the repository or a backup file")
    restore.add_argument("store", help="a store configured in drill.toml")
    restore.add_argument("--from", dest="source", default="latest", metavar="ID|latest|PATH",
                         help="a repository backup id, latest (default), or a file path or glob made outside drill")
    where = restore.add_mutually_exclusive_group()
    where.add_argument("--into", default=None, metavar="TARGET",
                       help="restore into a new target (PostgreSQL: a new database) instead of the store itself")
    where.add_argument("--test-mode", action="store_true",
                       help="restore into a throwaway local store and verify it; production is not touched")
    restore.add_argument("--overwrite", action="store_true",
                         help="allow restoring over the store itself when its configuration lacks destructive = true")
    restore_checks.add_arguments(restore)  # --max-age, --expect-rows, --expect-at-least
    _common(restore)

    backups = commands.add_parser("backups", help="list, verify or prune the repository's backups")
    actions = backups.add_subparsers(dest="backups_command", required=True)
    listing = actions.add_parser("list", help="list backups, oldest first")
    listing.add_argument("store", nargs="?", default=None, help="one configured store (default: every store)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    _common(listing)
    verify = actions.add_parser("verify", help="check every backup's checksums and decryption")
    verify.add_argument("store", nargs="?", default=None, help="one configured store (default: every store)")
    verify.add_argument("--id", default=None, help="only this backup")
    _common(verify)
    prune = actions.add_parser("prune", help="delete backups the retention policy does not keep")
    prune.add_argument("store", nargs="?", default=None, help="one configured store (default: every store)")
    prune.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    _common(prune)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default=None, help="a [profiles.NAME] of drill.toml")
    parser.add_argument("-v", "--verbose", action="store_true", help="say what is done, also on success")


@dataclass
class Run:
    """One command's outcome: what the log line, the notification and the exit code say."""

    config: Config
    action: str
    subject: str
    verbose: bool
    started: float = field(default_factory=time.time)
    details: dict[str, str] = field(default_factory=dict)

    def say(self, text: str) -> None:
        if self.verbose:
            print(redact_text(text), flush=True)

    def finish(self, status: str, message: str, code: int) -> int:
        seconds = time.time() - self.started
        self.details.setdefault("seconds", f"{seconds:.1f}")
        fields = " ".join(f"{k}={v}" for k, v in self.details.items())
        line = redact_text(f"{iso(time.time())} drill {self.action} {self.subject} {status} {fields} "
                           f"{json.dumps(message) if message else ''}".rstrip())
        log_file = self.config.repository.log_file or self.config.repository_path / "drill-backup.log"
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            descriptor = safe_paths.open_nofollow(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except (OSError, DrillError) as exc:
            print(f"drill: warning: cannot write the log file {log_file}: {getattr(exc, 'strerror', None) or exc}",
                  file=sys.stderr)
        event = notify.Event(self.action, "ok" if status == "ok" else "failed", self.subject,
                             message or f"{self.action} of {self.subject} succeeded", dict(self.details))
        for problem in notify.send(self.config.notify, event):
            print(f"drill: warning: notification failed: {problem}", file=sys.stderr)
        if status != "ok":
            print(f"drill: error: {redact_text(message)}", file=sys.stderr)
        return code


def main(args: argparse.Namespace, config: Config) -> int:
    # SIGTERM (cron's timeout, systemd stopping) takes Ctrl-C's path: clean up, log, exit 130.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return _dispatch(args, config)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _dispatch(args: argparse.Namespace, config: Config) -> int:
    if args.command == "backup":
        run = Run(config, "backup", args.store, args.verbose)
        return _guarded(run, lambda: _backup(run, args.store))
    if args.command == "restore":
        run = Run(config, "restore", args.store, args.verbose)
        return _guarded(run, lambda: _restore(run, args))
    from drill import backups_cli  # it builds on this module's Run, guard and repository

    return backups_cli.dispatch(args, config)


def _guarded(run: Run, action: Any, log: bool = True) -> int:
    """Run one command; turn its outcome into a log line, a notification and an exit code."""
    try:
        message: str = action()
    except LockBusy as exc:
        return run.finish("busy", str(exc), EXIT_BUSY)
    except (ConfigError, SafetyError) as exc:
        return run.finish("refused", str(exc), EXIT_USAGE)
    except DrillError as exc:
        return run.finish("failed", str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return run.finish("interrupted", "interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # a bug or an error nobody named: cron still gets its log line and notification
        if run.verbose:
            traceback.print_exc()
        return run.finish("failed", f"unexpected error: {type(exc).__name__}: {exc}"
                          + ("" if run.verbose else " (run again with -v for the traceback)"), EXIT_FAILED)
    if not log:
        return EXIT_OK
    return run.finish("ok", message, EXIT_OK)


def _plain_name(name: str) -> str:
    """A store name from the command line, checked before any file or lock is touched."""
    try:
        return safe_paths.store_name(name)
    except BackupError as exc:
        raise ConfigError(str(exc)) from None


def _repository(config: Config) -> tuple[Repository, crypto.Key | None]:
    key_file = config.repository.key_file
    return open_repository(config), crypto.load_key(key_file) if key_file else None


def _configured(config: Config, name: str) -> StoreConfig:
    found = config.stores.get(name)
    if found is None:
        known = ", ".join(sorted(config.stores)) or "none"
        where = config.path or "no drill.toml found"
        raise ConfigError(f"store {name!r} is not configured ({where}; configured: {known}); add a "
                          f"[stores.{name}] table with kind, provision = \"live\" and url_env")
    return found


@contextlib.contextmanager
def _provisioned(config: StoreConfig, run: Run, *,
                 allow_missing: bool = False) -> Iterator[tuple[Store, CleanupStack]]:
    from drill.provision.factory import provision

    cleanup = CleanupStack()
    try:
        yield provision(config, cleanup, run.say, allow_missing=allow_missing), cleanup
    finally:
        cleanup.run()


# The machinery other cron-friendly commands share (drill canary): one log line, notifications, exit codes.
guarded, configured, plain_name, provisioned = _guarded, _configured, _plain_name, _provisioned


# -- drill backup ---------------------------------------------------------------------------------------

def _backup(run: Run, name: str) -> str:
    config = _configured(run.config, _plain_name(name))
    if not config.is_live:
        raise ConfigError(f"drill backup backs up live stores; {name!r} has provision = {config.provision!r} "
                          f"(a throwaway server): set provision = \"live\" and url_env under [stores.{name}]")
    repo, key = _repository(run.config)
    with repo.lock(name, "backup"):
        for stale in repo.sweep_partials(name):
            run.say(f"removed {stale.name}, left by an interrupted run")
        with _provisioned(config, run) as (store, _), repo.staging(name) as staging, _dump_dir(staging, key) as work:
            artifact = store.backup(work, run.say)
            store.verify_backup(artifact)  # the store's own check of what it wrote, before it is kept
            entry = repo.commit(staging, artifact, key)
        repo.verify(entry, key)  # read back what is stored: checksums and, when encrypted, every chunk
    m = entry.manifest
    run.details.update({"id": m.id, "size": str(m.size), "sha256": m.files[0].sha256,
                        "encrypted": (m.encryption or {}).get("key_id", "no")})
    run.say(f"backup {m.id} of {name}: {m.size} bytes in {entry.directory}"
            f"{' (encrypted, key id ' + key.id + ')' if key else ''}")
    return f"backup {m.id} of {name} written and verified ({m.size} bytes)"


@contextlib.contextmanager
def _dump_dir(staging: Path, key: crypto.Key | None) -> Iterator[Path]:
    """Where the store writes its dump: with a key, a private 0700 folder off the repository (removed on every
    exit path, swept after a kill), so plaintext never reaches the backup disk; without one, the staging folder."""
    if key is None:
        yield staging / "work"
        return
    private = safe_paths.private_temp("drill-backup-")
    try:
        yield private / "work"
    finally:
        shutil.rmtree(private, ignore_errors=True)


@contextlib.contextmanager
def _restore_dir() -> Iterator[Path]:
    """A private 0700 folder for decrypted copies; removed on every exit path, swept after a kill."""
    private = safe_paths.private_temp("drill-restore-")
    try:
        yield private
    finally:
        shutil.rmtree(private, ignore_errors=True)


# -- drill restore --------------------------------------------------------------------------------------

def _restore(run: Run, args: argparse.Namespace) -> str:
    name: str = _plain_name(args.store)
    if args.into is not None:  # a name, never a connection string: refused before anything is read or reached
        check_name(args.into, "restore target (--into)")
    repo, key = _repository(run.config)
    configured = run.config.stores.get(name)
    with repo.lock(name, "restore"), _restore_dir() as work:
        # 1. The backup, checked completely (checksums, decryption, the store's own check), and dated ...
        artifact = _source(run, repo, key, name, args.source, work, configured)
        kind = configured.kind if configured else artifact.kind
        expected = restore_checks.Expectations.of(args)
        label = run.details.get("file") or f"backup {artifact.id}"
        date = (backup_dates.backup_date(Path(run.details["file"]), run.config.time_zone_of(name))
                if "file" in run.details else backup_dates.BackupDate(artifact.consistent_at, "repository", "UTC"))
        aged = restore_checks.check_age(label, date, expected.max_age)
        # 2. ... and only then a target.
        if args.test_mode:
            target_config = StoreConfig(name=name, kind=kind, provision="local",
                                        options=configured.options.throwaway() if configured else None)
            target_label = "a throwaway local store (test mode)"
        else:
            target_config = _configured(run.config, name)
            if args.into is None and not target_config.destructive:
                if not args.overwrite:
                    raise SafetyError(
                        f"refusing to restore over store {name!r}: its configuration ({target_config.consent()}) "
                        f"does not say `destructive = true`. Pass --overwrite to replace its data with backup "
                        f"{artifact.id}, or restore next to it with --into NEW_TARGET, or check the backup with "
                        f"--test-mode")
                target_config = replace(target_config, destructive=True)
            target_label = f"{args.into!r}" if args.into else f"{name!r} itself (overwritten)"
        # In place, a database that no longer exists is created again (the runbook: dropdb, createdb, restore).
        in_place = args.into is None and not args.test_mode
        with _provisioned(target_config, run, allow_missing=in_place) as (store, cleanup):
            if args.into is not None:  # its own database (project, bucket, volume) is no new target
                require_new_restore_target(store, args.into, f"restore it in place (`drill restore {name}` without "
                                                            f"--into; --overwrite unless `destructive = true`)")
            store.verify_backup(artifact)
            run.say(f"restoring {artifact.id} into {target_label}")
            restored = store.restore(artifact, args.into, run.say)
            if args.into is not None:
                if isinstance(store, ScratchTargets):
                    store.keep_target(args.into)  # asked for: kept, not dropped as a drill's scratch copy
            else:
                cleanup.push("close the restored store", restored.close)
            checked = _check_restored(restored, artifact)
            counted = restore_checks.check_counts(label, restored, expected)
            interval = (configured.canary_interval if configured else None) or canary.DEFAULT_INTERVAL
            from_canary = restore_checks.canary_point(name, restored, artifact, interval)
    point = from_canary if from_canary is not None else artifact.consistent_at
    rpo = max(0.0, time.time() - point)
    run.details.update({"backup": artifact.id, "into": "test-mode" if args.test_mode else (args.into or name),
                        "recovery_point": iso(point) or "", "data_since": format_duration(rpo),
                        "rpo_method": "canary" if from_canary is not None else "backup-date"})
    asserted = "".join(f"; {text}" for text in (aged, counted) if text)
    summary = (f"restored {name} from {artifact.id} into {target_label}: {checked}{asserted}; recovery point "
               f"{iso(point)} ({format_duration(rpo)} ago{', from its newest canary' if from_canary else ''})")
    print(redact_text(summary), flush=True)  # the on-call engineer's answer, also on success
    return summary


def _source(run: Run, repo: Repository, key: crypto.Key | None, name: str, source: str, work: Path,
            configured: StoreConfig | None) -> BackupArtifact:
    path = Path(source)
    from_file = source != "latest" and (path.is_file() or bool(_GLOB_CHARS & set(source)) or "/" in source)
    if not from_file:
        entry = repo.get(name, source)
        run.say(f"checking backup {entry.id} ({entry.manifest.size} bytes)")
        if repo.authenticate(entry, key) != AUTHENTICATED:
            print(f"drill: warning: {_trust_note(entry, key)}", file=sys.stderr)
        return repo.materialize(entry, key, work)
    if configured is None:
        raise ConfigError(f"store {name!r} is not configured, so the kind of {source!r} is unknown; add a "
                          f"[stores.{name}] table with its kind")
    zone = run.config.time_zone_of(name)
    found, when = found_backups.newest(source, run.config.base_dir, repr(name), zone) \
        if not (path.is_file() or path.is_dir()) else (path, _date(path, zone))
    run.say(f"newest backup: {found} (dated {iso(when)})")
    run.details["file"] = str(found)
    plain = found
    if found.is_file() and (crypto.is_encrypted(found) or age_files.is_age(found)):
        if key is None:
            raise ConfigError(f"{found} is encrypted; set key_file under [repository] to the key it was made with")
        plain = work / (found.name.removesuffix(".enc").removesuffix(".age") or "backup")
        if age_files.is_age(found):
            age_files.decrypt_file(found, plain, key)
        else:
            crypto.decrypt_file(found, plain, key)
    artifact = found_backups.found_backup(name, configured.kind, plain, when)  # its format, read from its content
    run.say(f"{found.name}: {artifact.format}, {artifact.size} bytes, sha256 {artifact.sha256}")
    return artifact


def _date(path: Path, zone: str) -> float:
    from drill.repository import date_of

    return date_of(path, zone)


def _check_restored(restored: Store, artifact: BackupArtifact) -> str:
    """Compare with the fingerprint taken with the backup; without one (external files), count."""
    if artifact.fingerprint is None:
        return f"{restored.count()} {restored.unit} (no fingerprint recorded with this backup to compare)"
    differences = compare(artifact.fingerprint, restored.fingerprint())
    if differences:
        listed = "\n  - ".join(d.message for d in differences)
        raise VerificationError(f"the restored data does not match backup {artifact.id}:\n  - {listed}")
    return f"{artifact.fingerprint.total} {restored.unit}, matching the fingerprint taken with the backup"


def _trust_note(entry: Entry, key: crypto.Key | None) -> str:
    if entry.manifest.mac is None and entry.manifest.encryption is not None:
        return (f"backup {entry.id} was made by an older drill (AES-GCM): its data is authenticated by the key, "
                f"but its metadata (id, times, file list) is not; a swapped or replayed backup cannot be detected")
    return (f"backup {entry.id}: metadata unauthenticated (no key_file under [repository]): checks find accidental "
            f"damage only; anyone who can write to the repository can swap or alter backups unnoticed")


def notify_drill_run(config: Config, run_id: str, status: str, results: Path) -> None:
    """After `drill run`: tell [notify] when the drills failed (or passed, with on_success)."""
    event = notify.Event("drill", "ok" if status == "passed" else "failed", f"run {run_id}",
                         f"drill run {run_id}: {status}", {"results": str(results)})
    for problem in notify.send(config.notify, event):
        print(f"drill: warning: notification failed: {problem}", file=sys.stderr)

"""`drill backups list | verify | prune`: what the repository (and a store's backups glob) holds, every backup
checked, and retention applied; on backup_cli's Run, guard and repository (as canary_cli)."""

from __future__ import annotations

import argparse
import contextlib
import json
from typing import Any

from drill import crypto, found_listing, safe_paths
from drill.backup_cli import Run, _guarded, _plain_name, _repository
from drill.config import Config
from drill.errors import BackupError
from drill.pause import retention_now
from drill.redact import redact_text
from drill.repository import Entry, Repository
from drill.results import iso
from drill.retention import RetentionPolicy, decide


def dispatch(args: argparse.Namespace, config: Config) -> int:
    subject = args.store or "all"
    run = Run(config, args.backups_command, subject, args.verbose)
    if args.backups_command == "list":
        return _guarded(run, lambda: _list(run, args.store, args.json), log=False)
    if args.backups_command == "verify":
        return _guarded(run, lambda: _verify(run, args.store, args.id))
    return _guarded(run, lambda: _prune(run, args.store, args.dry_run))


def _unauthenticated_note(entries: list[Entry], key: crypto.Key | None) -> str | None:
    plain = [e for e in entries if e.manifest.mac is None]
    if not plain:
        return None
    if key is None:
        return (f"note: metadata unauthenticated: {len(plain)} backup(s) carry no authentication code and no "
                f"key_file is set; checks find accidental damage only, not a swapped or altered backup")
    return (f"note: {len(plain)} backup(s) have unauthenticated metadata (made by an older drill, or without "
            f"the key); see `drill backups verify`")


def _list(run: Run, store: str | None, as_json: bool) -> str:
    repo, key = _repository(run.config)
    entries = repo.entries(_plain_name(store) if store else None)
    rows = [_row(e) for e in entries]
    found = [found_listing.row(run.config, name, path, when)
             for name, path, when in found_listing.matching(run.config, _plain_name(store) if store else None)]
    if as_json:
        print(json.dumps(rows + found, indent=2))
        return ""
    found_listing.print_rows(found)
    if not rows:
        if not found:
            print(f"no backups{f' of {store}' if store else ''} in {repo.location}")
    else:
        print(f"{'store':<12} {'id':<40} {'created (UTC)':<21} {'size':>12}  {'format':<15} {'encrypted':<17} verified")
        for row in rows:
            print(f"{row['store']:<12} {row['id']:<40} {row['created']:<21} {row['size']:>12}  {row['format']:<15} "
                  f"{row['key_id'] or 'no':<17} {row['verified']}")
        note = _unauthenticated_note(entries, key)
        if note:
            print(note)
    return ""


def _row(entry: Entry) -> dict[str, Any]:
    m = entry.manifest
    verification = entry.verification or {}
    return {"store": m.store, "id": m.id, "created": iso(m.created_at), "consistent": iso(m.consistent_at),
            "size": m.size, "format": m.format, "kind": m.kind, "key_id": (m.encryption or {}).get("key_id"),
            "verified": verification.get("status", "never"), "verified_at": verification.get("at"),
            "authenticated": m.mac is not None, "path": str(entry.directory)}


def _verify(run: Run, store: str | None, backup_id: str | None) -> str:
    repo, key = _repository(run.config)
    if backup_id is not None:
        safe_paths.backup_id(backup_id)
    entries = [e for e in repo.entries(_plain_name(store) if store else None) if backup_id is None or e.id == backup_id]
    found = [f for f in found_listing.matching(run.config, _plain_name(store) if store else None)
             if backup_id is None or f[1].name == backup_id]
    if backup_id is not None and not entries and not found:
        raise BackupError(f"no backup {backup_id!r} in {repo.location} or in a `backups` glob")
    failures = found_listing.verify(run.config, found, run.say)
    note = _unauthenticated_note(entries, key)
    if note:
        print(note, flush=True)
    for entry in entries:
        try:  # a wrong or missing key (ConfigError) stops here: exit 2, no backup marked failed
            trust = repo.verify(entry, key)
            run.say(f"ok      {entry.manifest.store} {entry.id} ({trust})")
        except BackupError as exc:
            failures.append(str(exc))
            print(f"FAILED  {entry.manifest.store} {entry.id}: {redact_text(str(exc))}", flush=True)
    checked = len(entries) + len(found)
    run.details["checked"] = str(checked)
    if failures:
        run.details["failed"] = str(len(failures))
        raise BackupError(f"{len(failures)} of {checked} backup(s) failed verification: {failures[0]}")
    unauthenticated = sum(1 for e in entries if e.manifest.mac is None)
    return f"{checked} backup(s) verified" + (f" ({unauthenticated} with unauthenticated metadata)"
                                               if unauthenticated else "")


def _prune(run: Run, store: str | None, dry_run: bool) -> str:
    repo, key = _repository(run.config)
    r = run.config.repository
    policy = RetentionPolicy(hourly=r.hourly, daily=r.daily, weekly=r.weekly, monthly=r.monthly)
    deleted = kept = 0
    for name in [_plain_name(store)] if store else repo.stores():
        with repo.lock(name, "prune"):
            if not dry_run:
                repo.sweep_partials(name)
            entries = repo.entries(name)
            decision = decide([(e.id, e.manifest.created_at) for e in entries], policy, retention_now())
            protected = _newest_verified(repo, entries, key)
            if protected is not None and protected.id not in decision.keep:
                decision.keep[protected.id] = ["newest verified backup"]
                decision.delete.remove(protected.id)
            by_id = {e.id: e for e in entries}
            kept += len(decision.keep)
            for backup_id in decision.delete:
                if dry_run:
                    print(f"would delete {name} {backup_id} (created {iso(by_id[backup_id].manifest.created_at)})")
                else:
                    repo.delete(by_id[backup_id])
                    run.say(f"deleted {name} {backup_id}")
                deleted += 1
            for backup_id, reasons in decision.keep.items():
                run.say(f"keep {name} {backup_id}: {', '.join(reasons)}")
    run.details.update({"deleted" if not dry_run else "would_delete": str(deleted), "kept": str(kept)})
    return f"{'would delete' if dry_run else 'deleted'} {deleted} backup(s), kept {kept}"


def _newest_verified(repo: Repository, entries: list[Entry], key: crypto.Key | None) -> Entry | None:
    """The newest backup whose verification passes (verified now if it never was): prune keeps it."""
    for entry in reversed(entries):
        if entry.verified:
            return entry
        with contextlib.suppress(BackupError):
            repo.verify(entry, key)
            return entry
    return None

"""`drill report pack`: one run's audit evidence in one zip, and `--verify` of such a zip on its own.

Members (every one listed with its sha256 and size in index.json):
    results.json            the run's results, byte for byte (sealed with its content_sha256)
    results.json.sig        its signature, when the run was signed
    report.html, report.pdf the report (with the Controls section); the PDF printed by headless Chromium
    backups.json            every backup the drills used: id, store, format, sha256, size, times, tools
    backups/SHA256SUMS      the same sha256s in `sha256sum -c` form
    backups/<store>/<id>/manifest.json   the repository manifest of each backup taken from the repository
    environment.json        configuration digest, drill and tool versions, host, operator, git commit
    drill.toml              the configuration file (secrets masked), when the run had one
    controls.json           the controls as the report evaluates them
    history.jsonl           the history chain from its first entry to this run's
`--verify` needs nothing but the zip: every member against the index, the results against their
own seal, the chain link by link up to this run, and the derived members against the results.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import platform
import re
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drill import __version__
from drill.config import Config, load_config
from drill.errors import DrillError
from drill.redact import redact_text
from drill.report.history import GENESIS, HISTORY_FILENAME
from drill.report.history_store import HistoryStore, history_store
from drill.report.integrity import DIGEST_KEY, seal_problem
from drill.report.model import LoadedRun, load, resolve_results
from drill.report.signing import INVALID, SignatureCheck, check_results_bytes

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PACK_FORMAT = "drill-evidence-pack"
PACK_VERSION = 1
INDEX = "index.json"
SIGNATURE = "results.json.sig"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class PackError(DrillError):
    """An evidence pack cannot be built or read."""


@dataclass
class Member:
    name: str
    data: bytes
    what: str


@dataclass
class PackVerdict:
    path: Path
    problems: list[str] = field(default_factory=list)
    run_id: str | None = None
    members: int = 0
    chain_length: int = 0
    chain_head: str | None = None
    signed: bool = False
    signature: SignatureCheck | None = None  # set when verified: valid, invalid, unchecked (no key) or unsigned


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _history_lines(loaded: LoadedRun, store: HistoryStore) -> list[str]:
    """The chain from its first entry to this run's, as the history holds it (byte for byte)."""
    entry = loaded.history_entry
    if entry is None:
        raise PackError(f"run {loaded.run.run_id} is not in the history ({store.location}): a pack carries the "
                        f"history chain up to its run; `drill report --verify` says what is wrong")
    lines = [line for line in store.read_text().splitlines() if line.strip()]
    return lines[:entry.seq]


def _backups(loaded: LoadedRun, config: Config) -> tuple[list[dict[str, Any]], list[Member]]:
    used: list[dict[str, Any]] = []
    manifests: list[Member] = []
    for scenario in loaded.run.scenarios:
        for backup in scenario.evidence.backups:
            item = {"scenario": scenario.name, **{k: getattr(backup, k) for k in (
                "id", "store", "format", "source", "sha256", "size", "created_at", "consistent_at",
                "tool_versions", "server_version", "path")}, "manifest": None}
            store, backup_id = backup.store, backup.id
            if backup.source == "repository" and _SAFE_NAME.fullmatch(store) and _SAFE_NAME.fullmatch(
                    backup_id) and config.repository.gcs is None:
                manifest = config.repository_path / store / backup_id / "manifest.json"
                if manifest.is_file() and not manifest.is_symlink():
                    name = f"backups/{store}/{backup_id}/manifest.json"
                    if all(m.name != name for m in manifests):
                        manifests.append(Member(name, manifest.read_bytes(), "the backup's repository manifest"))
                    item["manifest"] = name
            used.append(item)
    return used, manifests


def _sha256sums(used: list[dict[str, Any]]) -> bytes:
    lines = sorted({f"{b['sha256']}  {Path(str(b.get('path') or b['id'])).name}" for b in used if b.get("sha256")})
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def _tool_versions(loaded: LoadedRun) -> dict[str, Any]:
    stores: dict[str, Any] = {}
    backups: dict[str, Any] = {}
    for scenario in loaded.run.scenarios:
        for name, store in scenario.evidence.stores.items():
            if isinstance(store, dict):
                stores[name] = {k: store.get(k) for k in ("kind", "server_version", "tools", "provision")
                                if store.get(k) is not None}
        for backup in scenario.evidence.backups:
            if backup.tool_versions:
                backups[backup.id] = backup.tool_versions
    return {"stores": stores, "backups": backups}


def _config_file(loaded: LoadedRun) -> tuple[Member | None, dict[str, Any]]:
    run = loaded.run
    if not run.config_path:
        return None, {"config_path": None}
    path = Path(run.config_path)
    if not path.is_file():
        return None, {"config_path": run.config_path, "included": False, "why": "the file is no longer there"}
    try:
        matches = load_config(path, profile=run.profile).digest() == run.config_digest
    except DrillError:
        matches = False
    text = redact_text(path.read_text(encoding="utf-8"))
    return (Member("drill.toml", text.encode("utf-8"), "the configuration file (secrets masked)"),
            {"config_path": run.config_path, "included": True, "member": "drill.toml",
             "digest_matches_run": matches})


def build_members(results: Path, config: Config, *, pdf: bool = True) -> tuple[LoadedRun, list[Member], str | None]:
    """Everything the pack holds, in order (index excluded); the browser that printed the PDF."""
    from drill.report.controls import control_statuses
    from drill.report.html import render_html

    store = history_store(config, resolve_results(results).resolve().parent.parent)
    loaded = load(results, history=store)
    problems = ([f"results.json: {loaded.seal_problem}"] if loaded.seal_problem else []) + [
        str(p) for p in loaded.history_problems]
    if problems:
        raise PackError(f"{results}: the results failed their integrity check, and a pack would vouch for them: "
                        + "; ".join(problems))
    history = _history_lines(loaded, store)
    members = [Member("results.json", loaded.path.read_bytes(), "the run's results, sealed with content_sha256")]
    signature = loaded.path.parent / SIGNATURE
    if signature.is_file():
        members.append(Member(SIGNATURE, signature.read_bytes(), "the signature of results.json"))
    html = render_html(loaded)
    members.append(Member("report.html", html.encode("utf-8"), "the HTML report"))
    browser = None
    if pdf:
        from drill.report.pdf import html_to_pdf

        with tempfile.TemporaryDirectory(prefix="drill-pack-") as tmp:
            page, printed = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
            page.write_text(html, encoding="utf-8")
            browser = html_to_pdf(page, printed)
            members.append(Member("report.pdf", printed.read_bytes(), "the report printed to PDF (A4)"))
    used, manifests = _backups(loaded, config)
    members.append(Member("backups.json", _json({"backups": used}), "the backups the drills used"))
    sums = _sha256sums(used)
    if sums:
        members.append(Member("backups/SHA256SUMS", sums, "the backups' sha256s (sha256sum -c)"))
    members.extend(manifests)
    config_member, config_facts = _config_file(loaded)
    run = loaded.run
    members.append(Member("environment.json", _json({
        "run_id": run.run_id, "config_digest": run.config_digest, "profile": run.profile, **config_facts,
        "drill_version": run.drill_version, "git_commit": run.git_commit,
        "git_commit_note": run.git_commit_note, "host": run.host,
        "operator": run.operator, "command": run.command, "tool_versions": _tool_versions(loaded),
        "packed_by": {"drill_version": __version__, "python": sys.version.split()[0],
                      "platform": platform.platform(), "pdf_printed_by": browser}}), "configuration digest and "
                                                                                        "tool versions"))
    if config_member is not None:
        members.append(config_member)
    members.append(Member("controls.json", _json([c.to_dict() for c in control_statuses(loaded)]),
                          "the controls as the report evaluates them"))
    members.append(Member(HISTORY_FILENAME, ("\n".join(history) + "\n").encode("utf-8"),
                          "the history chain up to this run"))
    return loaded, members, browser


def write_pack(results: Path, output: Path, config: Config, *, pdf: bool = True) -> tuple[LoadedRun, list[Member]]:
    loaded, members, _ = build_members(results, config, pdf=pdf)
    index = {"format": PACK_FORMAT, "version": PACK_VERSION, "run_id": loaded.run.run_id,
             "results_sha256": loaded.content_sha256, "created_at": dt.datetime.now(tz=dt.UTC).isoformat(
                 timespec="seconds"), "created_by": f"drill {__version__}",
             "members": [{"name": m.name, "sha256": _sha256(m.data), "size": len(m.data), "what": m.what}
                         for m in members]}
    when = _zip_time(loaded.run.started_at)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    try:  # written aside and renamed: a reader never sees half a pack
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in [(INDEX, _json(index)), *((m.name, m.data) for m in members)]:
                info = zipfile.ZipInfo(name, date_time=when)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    return loaded, members


def _zip_time(started_at: str) -> tuple[int, int, int, int, int, int]:
    try:
        value = dt.datetime.fromisoformat(started_at).astimezone(dt.UTC)
    except ValueError:
        value = dt.datetime.now(tz=dt.UTC)
    return (max(value.year, 1980), value.month, value.day, value.hour, value.minute, value.second)


# --- verification -------------------------------------------------------------------------------------------


def _read_members(archive: zipfile.ZipFile, verdict: PackVerdict) -> dict[str, bytes]:
    names = [info.filename for info in archive.infolist()]
    for name in sorted({n for n in names if names.count(n) > 1}):
        verdict.problems.append(f"member {name}: appears more than once in the zip")
    data: dict[str, bytes] = {}
    for name in dict.fromkeys(names):
        try:
            data[name] = archive.read(name)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            verdict.problems.append(f"member {name}: corrupt in the zip ({exc})")
    return data


def _check_index(index: dict[str, Any], data: dict[str, bytes], verdict: PackVerdict) -> None:
    listed = {}
    for entry in index.get("members") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            listed[entry["name"]] = entry
    for name in sorted(set(data) - set(listed) - {INDEX}):
        verdict.problems.append(f"member {name}: not in the index (added to the pack)")
    for name, entry in listed.items():
        if name not in data:
            if not any(p.startswith(f"member {name}:") for p in verdict.problems):
                verdict.problems.append(f"member {name}: listed in the index but missing from the pack")
            continue
        actual = _sha256(data[name])
        if actual != entry.get("sha256") or len(data[name]) != entry.get("size"):
            verdict.problems.append(f"member {name}: sha256 {actual[:16]}… ({len(data[name])} bytes) does not match "
                                    f"the index ({str(entry.get('sha256'))[:16]}…, {entry.get('size')} bytes): "
                                    f"it was changed")
    verdict.members = len(listed)


def _check_results(index: dict[str, Any], data: dict[str, bytes], verdict: PackVerdict) -> dict[str, Any] | None:
    if "results.json" not in data:
        verdict.problems.append("member results.json: missing; a pack without its results proves nothing")
        return None
    try:
        results = json.loads(data["results.json"])
    except ValueError as exc:
        verdict.problems.append(f"member results.json: not readable JSON ({exc})")
        return None
    problem = seal_problem(results) if isinstance(results, dict) else "it is not a JSON object"
    if problem:
        verdict.problems.append(f"member results.json: {problem}")
    verdict.run_id = results.get("run_id")
    if index.get("run_id") != verdict.run_id or index.get("results_sha256") != results.get(DIGEST_KEY):
        verdict.problems.append("index.json: names another run than results.json holds")
    return results if isinstance(results, dict) else None


def _check_history(data: dict[str, bytes], results: dict[str, Any], verdict: PackVerdict) -> None:
    from drill.report.history import HistoryEntry, ScenarioPoint

    raw = data.get(HISTORY_FILENAME)
    if raw is None:
        verdict.problems.append(f"member {HISTORY_FILENAME}: missing")
        return
    prev, last = GENESIS, None
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        try:
            fields = json.loads(line)
            points = [ScenarioPoint(**p) for p in fields.pop("scenarios", [])]
            entry = HistoryEntry(**fields, scenarios=points)
        except (ValueError, TypeError) as exc:
            verdict.problems.append(f"member {HISTORY_FILENAME}: line {number} is not a history entry ({exc})")
            return
        if entry.hash != entry.compute_hash() or entry.prev != prev or entry.seq != number:
            verdict.problems.append(f"member {HISTORY_FILENAME}: entry {number} breaks the chain (edited, removed "
                                    f"or reordered)")
            return
        prev, last = entry.hash, entry
    verdict.chain_length, verdict.chain_head = (last.seq, last.hash) if last else (0, None)
    if last is None or last.run_id != results.get("run_id") or last.results_sha256 != results.get(DIGEST_KEY):
        verdict.problems.append(f"member {HISTORY_FILENAME}: its last entry is not this run's results")


def _check_derived(data: dict[str, bytes], results: dict[str, Any], verdict: PackVerdict) -> None:
    """Members made from the results must agree with them (the results are sealed; these are not)."""
    recorded = {(b.get("id"), b.get("sha256")) for s in results.get("scenarios", [])
                for b in (s.get("evidence") or {}).get("backups") or [] if isinstance(b, dict)}
    try:
        packed = {(b.get("id"), b.get("sha256")) for b in json.loads(data.get("backups.json", b"{}"))["backups"]}
        if packed != recorded:
            verdict.problems.append("member backups.json: its backups and sha256s differ from the results'")
    except (ValueError, KeyError, TypeError, AttributeError):
        verdict.problems.append("member backups.json: missing or not readable")
    try:
        environment = json.loads(data.get("environment.json", b"{}"))
        if environment.get("config_digest") != results.get("config_digest"):
            verdict.problems.append("member environment.json: its configuration digest is not the results'")
    except (ValueError, AttributeError):
        verdict.problems.append("member environment.json: not readable JSON")
    if SIGNATURE in data:
        verdict.signed = True
        try:
            signed = json.loads(data[SIGNATURE]).get("signed_sha256")
        except (ValueError, AttributeError):
            signed = None
        if signed is not None and signed not in (results.get(DIGEST_KEY), _sha256(data.get("results.json", b""))):
            verdict.problems.append(f"member {SIGNATURE}: signs other results (signed_sha256 {str(signed)[:16]}…)")


def verify_pack(path: Path, public: Ed25519PublicKey | None = None) -> PackVerdict:
    """Check a pack on its own: members against the index, the results' seal, the chain, derived members and,
    with `public`, the signature of results.json (a pack whose index and seals were recomputed after an edit
    still fails there)."""
    verdict = PackVerdict(path)
    try:
        archive = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    except OSError as exc:
        raise PackError(f"{path}: cannot be read ({exc})") from None
    except zipfile.BadZipFile as exc:
        verdict.problems.append(f"{path.name}: not a zip file ({exc})")
        return verdict
    with archive:
        data = _read_members(archive, verdict)
    try:
        index = json.loads(data[INDEX])
        if not isinstance(index, dict) or index.get("format") != PACK_FORMAT:
            raise ValueError("not a drill evidence pack index")
    except (KeyError, ValueError) as exc:
        verdict.problems.append(f"member {INDEX}: missing or unreadable ({exc}); this is not a drill evidence pack")
        return verdict
    _check_index(index, data, verdict)
    results = _check_results(index, data, verdict)
    if results is not None:
        _check_history(data, results, verdict)
        _check_derived(data, results, verdict)
    verdict.signature = check_results_bytes(data.get("results.json", b""), data.get(SIGNATURE), public)
    if verdict.signature.state == INVALID:
        verdict.problems.append(f"member {SIGNATURE}: {verdict.signature.text}")
    return verdict

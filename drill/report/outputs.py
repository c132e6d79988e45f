"""Stable output paths for CI: a run's files under names that do not depend on its run id.

`drill run` always writes `<report_dir>/<run-id>/` (the history records it there). For a CI step
that must name its files in advance, it also writes:

    --output-dir DIR          results.json, report.html, summary.md, junit.xml, cucumber.json
    --output-dir gs://B/P     the same files as objects under the prefix (a Kubernetes pod has no
                              artefact store; `drill report merge --from gs://B/…` reads them back)
    --results PATH, --junit-xml PATH, --html PATH    one file each, at exactly that path

A file that exists already is replaced (a CI job retried writes its files again).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from drill.errors import DrillError
from drill.redact import redact_text
from drill.report.history_store import RUN_FILES, HistoryStore
from drill.report.model import load
from drill.report.render import FORMATS, render
from drill.results import RESULTS_FILENAME

CONTENT_TYPES = {".json": "application/json", ".html": "text/html", ".xml": "application/xml", ".md": "text/markdown"}
GCS_PREFIX = re.compile(r"gs://([a-z0-9][a-z0-9._-]{1,221}[a-z0-9])(?:/(.*))?")


class OutputError(DrillError):
    """An output file or object could not be written or read."""


def run_files(results: Path, history: HistoryStore | None = None, formats: list[str] | None = None
              ) -> dict[str, bytes]:
    """results.json (and its signature, if any) and every report, by their fixed names.

    A report already written next to results.json is taken as it is; a missing one is rendered.
    """
    files = {name: (results.parent / name).read_bytes() for name in RUN_FILES if (results.parent / name).is_file()}
    loaded = None
    for fmt in formats if formats is not None else list(FORMATS):
        name = FORMATS[fmt][0]
        written = results.parent / name
        if written.is_file():
            files[name] = written.read_bytes()
            continue
        loaded = loaded or load(results, history=history)
        files[name] = render(loaded, fmt).encode("utf-8")
    return files


def write_files(destination: str, files: dict[str, bytes]) -> list[str]:
    """Write `files` (name -> bytes) into a folder or a gs:// prefix; where each went."""
    if destination.startswith("gs://"):
        return _upload(destination, files)
    folder = Path(destination)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        _write_atomic(folder / name, data)
        written.append(str(folder / name))
    return written


def write_file(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, data)
    return str(path)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def check_gcs_prefix(url: str) -> None:
    if GCS_PREFIX.fullmatch(url.rstrip("/")) is None:
        raise OutputError(f"{url!r} is not a GCS location; write gs://BUCKET/PREFIX")


def _bucket_and_prefix(url: str) -> tuple[object, str]:
    found = GCS_PREFIX.fullmatch(url.rstrip("/"))
    if found is None:
        raise OutputError(f"{url!r} is not a GCS location; write gs://BUCKET/PREFIX")
    from drill.repository_gcs import _client

    prefix = (found.group(2) or "").strip("/")
    try:
        return _client().bucket(found.group(1)), f"{prefix}/" if prefix else ""
    except DrillError:
        raise
    except Exception as exc:  # no credentials, a bad project: google.auth errors
        raise OutputError(f"cannot reach {url}: {redact_text(str(exc))}") from None


def _upload(url: str, files: dict[str, bytes]) -> list[str]:
    bucket, prefix = _bucket_and_prefix(url)
    written = []
    for name, data in files.items():
        kind = CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")
        try:
            bucket.blob(prefix + name).upload_from_string(data, content_type=kind)  # type: ignore[attr-defined]
        except Exception as exc:  # google.api_core errors, transport errors
            raise OutputError(f"cannot upload {name} to {url}: {redact_text(str(exc))}") from None
        written.append(f"{url.rstrip('/')}/{name}")
    return written


def download_runs(url: str, into: Path) -> list[Path]:
    """Every `…/results.json` (with its signature) under a gs:// prefix, copied into `into` as they are laid out."""
    bucket, prefix = _bucket_and_prefix(url)
    found: list[Path] = []
    try:
        blobs = list(bucket.client.list_blobs(bucket, prefix=prefix))  # type: ignore[attr-defined]
    except Exception as exc:
        raise OutputError(f"cannot list {url}: {redact_text(str(exc))}") from None
    for blob in blobs:
        relative = blob.name[len(prefix):]
        if Path(relative).name not in RUN_FILES or ".." in Path(relative).parts:
            continue
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            blob.download_to_filename(str(target))
        except Exception as exc:
            raise OutputError(f"cannot download gs://{blob.bucket.name}/{blob.name}: {redact_text(str(exc))}") from None
        if target.name == RESULTS_FILENAME:
            found.append(target)
    return sorted(found)


def export_run(results: Path, history: HistoryStore | None, *, output_dir: str | None,
               paths: dict[str, Path | None]) -> list[str]:
    """The stable copies a CI step asked for: `output_dir` (every file) and `paths` (format -> one file).

    `paths` keys: "results" (results.json), or a report format (junit, html, md, json).
    """
    written: list[str] = []
    if output_dir:
        written += write_files(output_dir, run_files(results, history))
    for what, path in paths.items():
        if path is None:
            continue
        if what == "results":
            written.append(write_file(path, results.read_bytes()))
        else:
            written.append(write_file(path, run_files(results, history, [what])[FORMATS[what][0]]))
    return written

"""Where the history of runs is kept: a local file, or an object in a GCS bucket.

A history location holds `history.jsonl` (the hash chain, drill.report.history) and, beside it, a
copy of every run's `results.json` as `<run-id>/results.json`, so that `drill report --verify`
can check every run from any machine, and a CI runner that is thrown away after each run loses
nothing. `[drill] history` chooses it:

    (not set)                            <report_dir>/history.jsonl; the runs are already beside it
    ($DRILL_HISTORY, when set, overrides it with any of the values below: CI sets it per pipeline)
    "path/to/history.jsonl"              a file (relative to drill.toml): a shared disk, a CI cache
    "repository"                         <repository>/.history/history.jsonl (a local folder or gs://)
    "gs://bucket/prefix/history.jsonl"   an object; appends use generation preconditions

An append reads the chain, builds the next entry on its last line, and writes it back only if no
one else wrote in between: a file is locked (fcntl) for the whole read-build-write; a GCS object
is rewritten with `if_generation_match` and, when another run won the race, read again and
retried, so two shards finishing together both land, one after the other.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from drill.errors import ConfigError, DrillError
from drill.redact import redact_text
from drill.results import RESULTS_FILENAME

if TYPE_CHECKING:
    from drill.config import Config

HISTORY_FILENAME = "history.jsonl"
REPOSITORY_FOLDER = ".history"  # inside a backup repository; store names cannot start with "."
# The files of a run copied beside a history kept elsewhere (a signature, where there is one).
RUN_FILES = (RESULTS_FILENAME, f"{RESULTS_FILENAME}.sig")
GCS_URL = re.compile(r"gs://([a-z0-9][a-z0-9._-]{1,221}[a-z0-9])/((?:[^\s]+/)?[^/\s]+\.jsonl)")
APPEND_ATTEMPTS = 30  # conflicting appends retried; 30 concurrent writers still all land
T = TypeVar("T")


class HistoryStoreError(DrillError):
    """The history location cannot be read or written."""


class HistoryStore(ABC):
    """A place for history.jsonl and the runs' results beside it."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the chain is, for messages (a path or a gs:// URL)."""

    @abstractmethod
    def read_text(self) -> str:
        """The whole history.jsonl ("" when there is none yet)."""

    @abstractmethod
    def append(self, build: Callable[[list[str]], tuple[T, str]]) -> T:
        """Append the line `build(current lines)` returns, atomically with respect to other appenders."""

    @abstractmethod
    def put_run(self, run_id: str, results: Path) -> str:
        """Keep the run's results beside the history; the path the history entry records (relative)."""

    @abstractmethod
    def get(self, relative: str) -> bytes | None:
        """A file recorded by an entry (None when it is missing)."""

    @abstractmethod
    def display(self, relative: str) -> str:
        """Where `relative` is, for messages."""

    def local_path(self, relative: str) -> Path | None:
        """The file on this machine, when the history is a local file."""
        return None

    def holds_runs_of(self, report_dir: Path) -> bool:
        """Whether the runs under `report_dir` are this history's own files (the default history)."""
        return False


class FileHistory(HistoryStore):
    """history.jsonl on a local (or mounted) disk; `copy_runs`: keep copies of the runs beside it."""

    def __init__(self, path: Path, *, copy_runs: bool) -> None:
        self.path = path
        self.folder = path.parent
        self.copy_runs = copy_runs

    @property
    def location(self) -> str:
        return str(self.path)

    def read_text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise HistoryStoreError(f"cannot read the history {self.path}: {exc}") from None

    def append(self, build: Callable[[list[str]], tuple[T, str]]) -> T:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # two runs finishing together still make one chain
            handle.seek(0)
            lines = [line for line in handle.read().splitlines() if line.strip()]
            result, line = build(lines)
            handle.seek(0, 2)
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return result

    def put_run(self, run_id: str, results: Path) -> str:
        try:  # a run written under this folder (the default: reports/<run-id>/) is recorded where it is
            return str(results.resolve().relative_to(self.folder.resolve()))
        except ValueError:
            if not self.copy_runs:
                return str(results.resolve())
        relative = f"{run_id}/{RESULTS_FILENAME}"
        target = self.folder / run_id
        target.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            source = results.parent / name
            if not source.is_file():
                continue
            data = source.read_bytes()
            existing = target / name
            if existing.is_file():
                if existing.read_bytes() != data:
                    raise HistoryStoreError(f"{existing} already holds a different {name} for run {run_id}; "
                                            f"run ids are unique, so this one was edited: see `drill report --verify`")
                continue
            tmp = target / f".{name}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, existing)
        return relative

    def get(self, relative: str) -> bytes | None:
        try:
            return (self.folder / relative).read_bytes()
        except OSError:
            return None

    def display(self, relative: str) -> str:
        path = (self.folder / relative).resolve()
        with contextlib.suppress(ValueError):  # reports/<run-id>/results.json, as before
            return str(path.relative_to(self.folder.resolve().parent))
        return str(path)

    def local_path(self, relative: str) -> Path | None:
        return (self.folder / relative).resolve()

    def holds_runs_of(self, report_dir: Path) -> bool:
        return self.folder.resolve() == report_dir.resolve()


class GcsHistory(HistoryStore):
    """history.jsonl as an object; the runs as `<prefix>/<run-id>/results.json` objects beside it."""

    def __init__(self, url: str, *, attempts: int = APPEND_ATTEMPTS) -> None:
        found = GCS_URL.fullmatch(url)
        if found is None:
            raise ConfigError(f"{url!r} is not a history object; write gs://BUCKET/PREFIX/history.jsonl")
        self.url = url
        self.object_name = found.group(2)
        self.prefix = self.object_name.rpartition("/")[0]
        self.attempts = attempts
        from drill.repository_gcs import _client  # the same client (and emulator handling) as the repository

        try:
            self.bucket = _client().bucket(found.group(1))
        except ConfigError:
            raise
        except Exception as exc:  # no credentials, a bad project: google.auth errors
            raise HistoryStoreError(f"cannot reach the history {url}: {redact_text(str(exc))}") from None

    @property
    def location(self) -> str:
        return self.url

    def _name(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def display(self, relative: str) -> str:
        return f"gs://{self.bucket.name}/{self._name(relative)}"

    def _read(self) -> tuple[str, int]:
        """The chain and its generation (0: no object yet), read as one consistent version."""
        from google.api_core import exceptions

        for _ in range(self.attempts):
            blob = self.bucket.get_blob(self.object_name)
            if blob is None:
                return "", 0
            try:
                data = blob.download_as_bytes(if_generation_match=blob.generation)
            except (exceptions.PreconditionFailed, exceptions.NotFound):
                continue  # replaced between the two calls: read the new one
            return data.decode("utf-8"), int(blob.generation)
        raise HistoryStoreError(f"cannot read the history {self.url}: it changed under every read")

    def read_text(self) -> str:
        try:
            return self._read()[0]
        except DrillError:
            raise
        except Exception as exc:  # google.api_core errors, transport errors
            raise HistoryStoreError(f"cannot read the history {self.url}: {redact_text(str(exc))}") from None

    def append(self, build: Callable[[list[str]], tuple[T, str]]) -> T:
        from google.api_core import exceptions

        for attempt in range(self.attempts):
            try:
                text, generation = self._read()
                lines = [line for line in text.splitlines() if line.strip()]
                result, line = build(lines)
                self.bucket.blob(self.object_name).upload_from_string(
                    "".join(f"{existing}\n" for existing in lines) + line + "\n",
                    content_type="application/x-ndjson", if_generation_match=generation)
                return result
            except exceptions.PreconditionFailed:
                # Another run appended first: read its entry and chain after it.
                time.sleep(min(2.0, 0.05 * 2 ** attempt) * random.uniform(0.5, 1.5))
            except DrillError:
                raise
            except Exception as exc:
                raise HistoryStoreError(f"cannot append to the history {self.url}: {redact_text(str(exc))}") from None
        raise HistoryStoreError(f"cannot append to the history {self.url}: other runs appended first "
                                f"{self.attempts} times in a row")

    def put_run(self, run_id: str, results: Path) -> str:
        from google.api_core import exceptions

        for name in RUN_FILES:
            source = results.parent / name
            if not source.is_file():
                continue
            data = source.read_bytes()
            blob = self.bucket.blob(self._name(f"{run_id}/{name}"))
            try:
                blob.upload_from_string(data, content_type="application/json", if_generation_match=0)
            except exceptions.PreconditionFailed:
                if self.get(f"{run_id}/{name}") != data:  # the same bytes again (a retried upload) are fine
                    raise HistoryStoreError(f"{self.display(f'{run_id}/{name}')} already holds a different {name} "
                                            f"for run {run_id}; run ids are unique, so it was edited") from None
            except Exception as exc:
                raise HistoryStoreError(f"cannot upload {name} of run {run_id} to {self.display(run_id)}: "
                                        f"{redact_text(str(exc))}") from None
        return f"{run_id}/{RESULTS_FILENAME}"

    def get(self, relative: str) -> bytes | None:
        from google.api_core import exceptions

        try:
            data: bytes = self.bucket.blob(self._name(relative)).download_as_bytes()
        except exceptions.NotFound:
            return None
        except Exception as exc:
            raise HistoryStoreError(f"cannot read {self.display(relative)}: {redact_text(str(exc))}") from None
        return data


def default_store(report_dir: Path) -> FileHistory:
    """The history of a report directory: `<report_dir>/history.jsonl`, the runs in their own folders."""
    return FileHistory(report_dir / HISTORY_FILENAME, copy_runs=False)


def history_location(config: Config) -> str | None:
    """$DRILL_HISTORY, else `[drill] history` (None: the report directory's); a bad value is refused here,
    before a run provisions anything."""
    where = os.environ.get("DRILL_HISTORY") or config.history
    if where is not None and where != "repository" and where.startswith("gs://") and not GCS_URL.fullmatch(where):
        raise ConfigError(f"DRILL_HISTORY / [drill] history {where!r} is not a history object; write "
                          f"gs://BUCKET/PREFIX/history.jsonl (the object name ends in .jsonl)")
    if where is not None and not where.strip():
        raise ConfigError("DRILL_HISTORY is empty: unset it, or name a history.jsonl path, repository, or gs://…")
    return where


def history_store(config: Config, report_dir: Path) -> HistoryStore:
    """The history location: $DRILL_HISTORY, else `[drill] history`, else the report directory's."""
    where = history_location(config)
    if where is None:
        return default_store(report_dir)
    if where == "repository":
        if config.repository.gcs:
            return GcsHistory(f"{config.repository.gcs.rstrip('/')}/{REPOSITORY_FOLDER}/{HISTORY_FILENAME}")
        return FileHistory(config.repository_path / REPOSITORY_FOLDER / HISTORY_FILENAME, copy_runs=True)
    if where.startswith("gs://"):
        return GcsHistory(where)
    path = Path(where)
    path = (path if path.is_absolute() else config.base_dir / path).resolve()
    if path == (report_dir / HISTORY_FILENAME).resolve():
        return default_store(report_dir)
    return FileHistory(path, copy_runs=True)


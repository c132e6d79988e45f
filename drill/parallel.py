"""Scenarios in parallel (pytest-xdist, `drill run -n N`) and in shares across machines (`--shard I/N`).

With xdist, workers run the scenarios and the controller (the `drill run` process) writes the one
results.json, the reports and the history entry, exactly as a serial run does. A worker sends each
scenario's result to the controller on its teardown report (pytest serialises a report's extra
attributes), with the scenario's position in the collection, so that the results keep the serial
run's order whatever order the workers finished in.

Privacy: each worker gets a private folder (drill-worker-*) for its throwaway stores' backups and
rollback state (Config.worker_dir); servers already take free ports and private temporary folders.
Live stores are shared by nature, so a scenario that touches a live store takes that store's turn
(a blocking lock, live_store_turn): two workers never act on the same live store at once. (xdist's
`loadgroup` would schedule such scenarios onto one worker, but it renames node ids in a way that
pytest 9.2 no longer honours, so drill does not rely on it.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from drill import vocabulary
from drill.errors import DrillError
from drill.redact import redact_text
from drill.results import ErrorResult, ScenarioResult, ShardInfo
from drill.session import PLACEHOLDER_INDEX
from drill.sharding import key_of, parse_shard, plan, recent_durations, shard_info
from drill.stores.base import KIND_NAMES

if TYPE_CHECKING:
    from drill.config import Config
    from drill.session import DrillSession

WORKER_DIR_PREFIX = "drill-worker-"
LIVE_LOCK_DIR = "drill-live-store-locks"
REPORT_ATTRIBUTE = "drill_scenario"
INTERRUPT_FORWARDED = threading.Event()  # set by `drill run` when it passed Ctrl-C/SIGTERM on to the workers


def is_worker(config: pytest.Config) -> bool:
    """Whether this pytest process is an xdist worker (the controller has no `workerinput`)."""
    return hasattr(config, "workerinput")


def worker_input(config: pytest.Config, key: str) -> str | None:
    value = getattr(config, "workerinput", {}).get(key)
    return value if isinstance(value, str) else None


def encode_result(index: int, result: ScenarioResult) -> str:
    """A scenario's result and its place in the collection, as a worker sends it to the controller."""
    return json.dumps({"index": index, "result": dataclasses.asdict(result)}, default=str)


def decode_result(payload: str) -> tuple[int, ScenarioResult]:
    from drill.report.model import run_from_dict

    data = json.loads(payload)
    [result] = run_from_dict({"run_id": "", "started_at": "", "scenarios": [data["result"]]}).scenarios
    return int(data["index"]), result


def crashed_worker_result(report: pytest.TestReport) -> str:
    """The result of a scenario whose worker died while running it (xdist reports only its node id).

    After an interrupt was passed on to the workers (INTERRUPT_FORWARDED), a worker that ends before reporting
    its scenario was stopped by it: that scenario is `interrupted`; otherwise the worker crashed: `error`."""
    if INTERRUPT_FORWARDED.is_set():
        status, error = "interrupted", ErrorResult(type="Interrupted", message="the worker was stopped by the "
                                                   "interrupt before it reported this scenario")
    else:
        status, error = "error", ErrorResult(type="WorkerCrashed", message=redact_text(report.longreprtext[-2000:]))
    result = ScenarioResult(feature="", feature_name="", name=report.nodeid.rpartition("::")[2], line=0, tags=[],
                            status=status, nodeid=report.nodeid, errors=[error])
    return encode_result(PLACEHOLDER_INDEX, result)  # no known place in the collection: it goes last


def register_worker(folder: str) -> None:
    """A worker writes its pid where `drill run` finds it, so that Ctrl-C or SIGTERM reaches it (see forward)."""
    Path(folder, str(os.getpid())).touch()


def forward_interrupt(folder: Path, signum: int) -> list[int]:
    """Send SIGINT to every worker registered in `folder`: each stops its scenario and cleans up as after a
    Ctrl-C, then reports what it ran. (Left alone, xdist would stop the workers after 10 s, before clean-up.)"""
    INTERRUPT_FORWARDED.set()
    reached = []
    for entry in folder.iterdir() if folder.is_dir() else []:
        with contextlib.suppress(ValueError, OSError):
            os.kill(int(entry.name), signal.SIGINT)
            reached.append(int(entry.name))
    return reached


@dataclass
class ScenarioOf:
    """What a collected item runs: its feature, line, example and the rendered scenario."""

    feature: str
    line: int
    example_id: str | None
    name: str
    steps: list[Any]

    @property
    def key(self) -> str:
        return key_of(self.feature, self.line, self.example_id)


def scenario_of(item: pytest.Item) -> ScenarioOf | None:
    """The pytest-bdd scenario behind a test item (None for any other test).

    pytest-bdd has no public accessor: 8.x marks the test function with `__scenario__`, 9.x keeps a
    registry. Both are read here, in one place.
    """
    function = getattr(item, "function", None)
    if function is None:
        return None
    template = getattr(function, "__scenario__", None)
    if template is None:
        try:
            from pytest_bdd.scenario import scenario_wrapper_template_registry
        except ImportError:
            return None
        template = scenario_wrapper_template_registry.get(function)
    if template is None:
        return None
    callspec = getattr(item, "callspec", None)
    example = callspec.params.get("_pytest_bdd_example") if callspec is not None else None
    rendered = template.render(example or {})
    from drill.plugin import _relative

    return ScenarioOf(_relative(template.feature.filename), template.line_number,
                      callspec.id if example is not None and callspec is not None else None, rendered.name,
                      list(rendered.steps))


def live_stores(scenario: ScenarioOf, config: Config) -> set[str]:
    """The live stores a scenario declares (the same reading as `drill check`)."""
    found = set()
    for step in scenario.steps:
        match = vocabulary.find(step.type, step.name)
        if match is None:
            continue
        groups = match[1].groupdict()
        if groups.get("kind") and groups.get("store"):
            try:
                if config.store(groups["store"], KIND_NAMES[groups["kind"]]).is_live:
                    found.add(groups["store"])
            except DrillError:
                continue  # `drill check` reports it
    return found


@contextmanager
def live_store_turn(item: pytest.Item, config: Config) -> Iterator[None]:
    """On a parallel worker, hold (blocking) a lock per live store the scenario declares, for the whole scenario.

    Live stores are shared by nature: two workers must not lose, restore or even seed the same one at once.
    The lock is an flock on a file named by a digest of the store's address (never the address, which may
    hold a password), so it also keeps apart two runs on this machine that name the same server differently;
    the kernel drops it if the worker dies. Locks are taken in name order, so two scenarios never deadlock.
    """
    scenario = scenario_of(item) if is_worker(item.config) else None
    stores = sorted(live_stores(scenario, config)) if scenario is not None else []
    if not stores:
        yield
        return
    folder = Path(tempfile.gettempdir()) / LIVE_LOCK_DIR
    folder.mkdir(exist_ok=True)
    descriptors = []
    try:
        for name in sorted(stores, key=lambda n: _address_digest(config, n)):
            descriptor = os.open(folder / f"{_address_digest(config, name)}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            descriptors.append(descriptor)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        for descriptor in reversed(descriptors):
            os.close(descriptor)  # closing drops the flock


def _address_digest(config: Config, name: str) -> str:
    store = next((s for s in config.stores.values() if s.name == name), None)
    address = name
    if store is not None:
        # A live store is where its URL points; a kind located by its own options (a Docker volume's name)
        # is where those options point.
        located_by = os.environ.get(store.url_env, "") if store.url_env else ""
        address = located_by or json.dumps(asdict(store.options), sort_keys=True, default=str) or name
        address = f"{store.kind}:{address}"
    return hashlib.sha256(address.encode()).hexdigest()[:24]


@dataclass
class ShardRequest:
    """`--shard I/N`: which share this process runs, and the durations the plan balances by."""

    index: int
    count: int
    by: str
    durations: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_options(cls, text: str, by: str, session: DrillSession, durations_json: str | None) -> ShardRequest:
        index, count = parse_shard(text)
        if durations_json is not None:  # an xdist worker: the controller read the history once for all
            durations = {str(k): float(v) for k, v in json.loads(durations_json).items()}
        elif by == "history":
            from drill.report.history_store import history_store

            report_dir = session.report_dir or session.config.report_dir
            durations = recent_durations(history_store(session.config, report_dir), report_dir)
        else:
            durations = {}
        return cls(index, count, by, durations)

    def select(self, items: list[pytest.Item]) -> tuple[list[pytest.Item], list[pytest.Item], ShardInfo]:
        """The items of this share, the others, and the plan (the same in every share)."""
        from drill.report.history import scenario_id

        keys: list[str] = []
        durations: list[float | None] = []
        for item in items:
            scenario = scenario_of(item)
            keys.append(scenario.key if scenario is not None else item.nodeid)
            durations.append(self.durations.get(scenario_id(scenario.feature, scenario.name))
                             if scenario is not None else None)
        shares, balanced_by = plan(keys, durations, self.count, self.by)
        keep = [item for item, share in zip(items, shares, strict=True) if share == self.index]
        drop = [item for item, share in zip(items, shares, strict=True) if share != self.index]
        return keep, drop, shard_info(keys, shares, self.index, self.count, balanced_by)

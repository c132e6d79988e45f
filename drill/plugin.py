"""The pytest plugin (entry point `pytest11: drill`): drill's vocabulary, lifecycle and results.

Any pytest-bdd scenario gets a DrillScenario: the `drill` fixture the steps use. Its clean-up
runs in fixture teardown, which pytest also runs at session end after a Ctrl-C. With
--drill-report-dir the run's results.json is written at session end, interrupted or not.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from drill import parallel, vocabulary
from drill.config import load_config
from drill.durations import format_duration
from drill.errors import DrillError, FeatureError, LiveStoreNotRestored
from drill.progress import Reporter
from drill.provision import sharing
from drill.provision.processes import mark_owned, sweep_stale
from drill.redact import install_log_redaction, redact_text
from drill.results import ErrorResult, ScenarioResult, ShardInfo, StepResult, iso
from drill.scenario import DrillScenario
from drill.session import DrillSession
from drill.targets import TagError

# The vocabulary: registered as plugins so pytest-bdd finds every step definition, drill's own and the
# sentences that store kinds bring (KindSpec.steps, e.g. from a kind another package installs).
pytest_plugins = vocabulary.step_modules()

SESSION_KEY = pytest.StashKey["DrillSession"]()
HOLDER_KEY = pytest.StashKey["ScenarioHolder"]()
_configs: list[pytest.Config] = []


@dataclass
class ScenarioHolder:
    result: ScenarioResult | None = None
    scenario: DrillScenario | None = None
    current_step: StepResult | None = None
    step_started: float = 0.0
    failed_step: StepResult | None = None
    errors_at_close: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("drill", "disaster-recovery drills")
    group.addoption("--drill-config", default=None, help="drill.toml to use (default: ./drill.toml if present)")
    group.addoption("--drill-profile", default=None, help="profile of drill.toml to apply")
    group.addoption("--drill-report-dir", default=None,
                    help="write <dir>/<run-id>/results.json at the end of the session")
    group.addoption("--drill-run-id", default=None, help="run id (default: time-stamped and random)")
    group.addoption("--drill-quiet", action="store_true", default=False, help="no progress lines")
    group.addoption("--drill-mode", action="store_true", default=False,
                    help="set by `drill run`: drill's own terminal output instead of pytest's")
    group.addoption("--drill-shard", default=None, metavar="I/N",
                    help="run share I of N (1-based) of the scenarios; `drill report merge` joins the shares")
    group.addoption("--drill-shard-by", default="history", choices=("history", "count"),
                    help="balance the shares by the durations in the history (default; by count without one)")
    group.addoption("--drill-worker-pids", default=None, metavar="DIR",
                    help="set by `drill run -n`: where each worker writes its pid, so that Ctrl-C reaches it")


def pytest_configure(config: pytest.Config) -> None:
    install_log_redaction()
    _configs.append(config)
    try:
        drill_config = load_config(
            Path(config.getoption("drill_config")) if config.getoption("drill_config") else None,
            profile=config.getoption("drill_profile"))
    except DrillError as exc:
        raise pytest.UsageError(str(exc)) from None
    report_dir = config.getoption("drill_report_dir")
    worker = parallel.is_worker(config)
    if worker:
        # A parallel worker's throwaway stores keep their backups and rollback state in a folder of its own
        # (0700, removed at the end, swept when the worker was killed): two workers never share one.
        sweep_stale(parallel.WORKER_DIR_PREFIX, "parallel worker's folder", lambda _folder: None)
        private = Path(tempfile.mkdtemp(prefix=parallel.WORKER_DIR_PREFIX))
        mark_owned(private)
        config.stash[_WORKER_DIR] = private
        drill_config = dataclasses.replace(drill_config, worker_dir=private)
        if config.getoption("drill_worker_pids"):
            parallel.register_worker(config.getoption("drill_worker_pids"))
    # A worker's progress lines would be lost: the controller prints each scenario as its result arrives.
    reporter = Reporter(_terminal_writer(config), quiet=bool(config.getoption("drill_quiet")) or worker)
    session = DrillSession(drill_config, reporter, report_dir=Path(report_dir).resolve() if report_dir else None,
                           run_id=config.getoption("drill_run_id"))
    config.stash[SESSION_KEY] = session
    if config.getoption("drill_shard"):
        try:
            session.shard_request = parallel.ShardRequest.from_options(
                config.getoption("drill_shard"), config.getoption("drill_shard_by"), session,
                parallel.worker_input(config, "drill_shard_durations"))
        except DrillError as exc:
            raise pytest.UsageError(str(exc)) from None


_WORKER_DIR = pytest.StashKey[Path]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Before any scenario: finish what a drill killed with SIGKILL left on live stores (drill.repair) and remove
    the temporary folders of decrypted backups it left."""
    if SESSION_KEY not in session.config.stash or hasattr(session.config, "workerinput"):
        return  # on `drill run -n`, the controller repairs before xdist starts its workers (xdist's hook is trylast)
    from drill.repair import repair_all, sweep_temp_folders

    drill_session = _session(session.config)
    sweep_temp_folders()
    for outcome in repair_all(drill_session.config, lambda text: drill_session.reporter.info(text, force=True)):
        drill_session.run.repairs.append(outcome)
        verdict = "repaired" if outcome.ok else "NOT repaired"
        drill_session.reporter.line(f"drill: live store {outcome.store} left by a killed drill: {verdict} "
                                    f"({outcome.outcome}){': ' + outcome.message if outcome.message else ''}")


def pytest_unconfigure(config: pytest.Config) -> None:
    if config in _configs:
        _configs.remove(config)
    # The run's shared servers (drill.provision.sharing): pytest gets here after a failed or interrupted run too.
    sharing.stop_shared_servers()
    private = config.stash.get(_WORKER_DIR, None)
    if private is not None:
        shutil.rmtree(private, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: every worker plans its share from the same durations, read once here."""
    request = _session(node.config).shard_request
    if request is not None:
        node.workerinput["drill_shard_durations"] = json.dumps(request.durations)


@pytest.hookimpl(trylast=True)  # after -m/--tags has deselected what it does
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    request = _session(config).shard_request
    if request is None:
        return
    keep, drop, info = request.select(items)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
    _session(config).run.shard = info


def _terminal_writer(config: pytest.Config) -> Any:
    def write(text: str) -> None:
        terminal = config.pluginmanager.getplugin("terminalreporter")
        capture = config.pluginmanager.getplugin("capturemanager")
        if terminal is None:
            return
        if capture is not None:
            with capture.global_and_fixture_disabled():
                terminal.write_line(text)
        else:
            terminal.write_line(text)

    return write


@pytest.hookimpl(tryfirst=True)
def pytest_bdd_apply_tag(tag: str, function: Any) -> bool:
    """Tags become markers (so `--tags`/-m can select them) and are registered, so none is 'unknown'."""
    if _configs:
        _configs[-1].addinivalue_line("markers", f"{tag}: tag from a .feature file")
    with warnings.catch_warnings():
        # pytest cannot register marker names that contain ':' (tier:critical); they are drill's own.
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        getattr(pytest.mark, tag)(function)
    return True


def _session(config: pytest.Config) -> DrillSession:
    return config.stash[SESSION_KEY]


@pytest.fixture(autouse=True)
def _drill_scenario_lifecycle(request: pytest.FixtureRequest) -> Any:
    """Owns a scenario's clean-up: runs on pass, fail, and (at session end) after Ctrl-C."""
    if "_pytest_bdd_example" not in request.fixturenames:  # not a pytest-bdd scenario
        yield
        return
    holder = ScenarioHolder()
    request.node.stash[HOLDER_KEY] = holder
    # On a parallel worker, a scenario on a live store waits for that store's turn (drill.parallel).
    with parallel.live_store_turn(request.node, _session(request.config).config):
        yield
        if holder.scenario is not None:
            errors = holder.scenario.close()
            if errors:
                holder.errors_at_close = errors
                raise DrillError("clean-up failed: " + "; ".join(errors))


@pytest.fixture
def drill(request: pytest.FixtureRequest) -> DrillScenario:
    """The running DrillScenario: what every step of the vocabulary acts through."""
    holder = request.node.stash.get(HOLDER_KEY, None)
    if holder is None or holder.scenario is None:
        raise DrillError("the drill fixture is only available inside a pytest-bdd scenario")
    scenario: DrillScenario = holder.scenario
    return scenario


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    holder = request.node.stash.get(HOLDER_KEY, None)
    if holder is None:
        return
    session = _session(request.config)
    tags = set(scenario.tags) | set(feature.tags)
    result = ScenarioResult(
        feature=_relative(feature.filename), feature_name=feature.name or "", name=scenario.name,
        line=scenario.line_number, tags=sorted(tags), started_at=iso(time.time()), nodeid=request.node.nodeid,
        steps=[StepResult(step.keyword, step.name, step.line_number) for step in scenario.steps])
    session.run.scenarios.append(result)
    holder.result = result
    session.reporter.scenario_start(f"{result.feature}:{result.line}", result.name)
    try:
        holder.scenario = DrillScenario(session.config, result, session.reporter, tags)
    except TagError as exc:
        raise FeatureError(str(exc), path=feature.filename, line=scenario.line_number) from None


def _step_result(holder: ScenarioHolder, step: Any) -> StepResult | None:
    if holder.result is None:
        return None
    for candidate in holder.result.steps:
        if candidate.line == step.line_number and candidate.text == step.name:
            return candidate
    return None


def pytest_bdd_before_step(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                           step_func: Any) -> None:
    holder = request.node.stash.get(HOLDER_KEY, None)
    if holder is None:
        return
    holder.current_step = _step_result(holder, step)
    holder.step_started = time.monotonic()
    if holder.scenario is not None:
        holder.scenario.current_line = step.line_number
    if holder.current_step is not None:
        holder.current_step.status = "running"


def pytest_bdd_after_step(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                          step_func: Any, step_func_args: Any) -> None:
    holder = request.node.stash.get(HOLDER_KEY, None)
    if holder is not None and holder.current_step is not None:
        holder.current_step.status = "passed"
        holder.current_step.seconds = time.monotonic() - holder.step_started


def pytest_bdd_step_error(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                          step_func: Any, step_func_args: Any, exception: Exception) -> None:
    holder = request.node.stash.get(HOLDER_KEY, None)
    if holder is not None and holder.current_step is not None:
        holder.current_step.status = "failed"
        holder.current_step.seconds = time.monotonic() - holder.step_started
        holder.current_step.error = redact_text(str(exception))
        holder.failed_step = holder.current_step


def pytest_bdd_step_func_lookup_error(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                                      exception: Exception) -> None:
    holder = request.node.stash.get(HOLDER_KEY, None)
    if holder is None:
        return
    found = _step_result(holder, step)
    if found is not None:
        found.status = "failed"
        found.error = f"undefined step: {step.keyword} {step.name} (see `drill check` and the manual's vocabulary)"
        holder.failed_step = found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """The end of a scenario's steps, passed or failed: the live stores' final check (drill.safety_net), then the
    tag targets. A scenario whose steps passed still fails if a live store was not as it should be, or if a tag
    target (@tier, @rto, @rpo) was missed."""
    holder = item.stash.get(HOLDER_KEY, None)
    try:
        outcome = yield
    except Exception:
        if holder is not None and holder.scenario is not None:
            for problem in holder.scenario.end():
                if holder.result is not None:
                    holder.result.errors.append(ErrorResult("LiveStoreNotRestored", redact_text(problem)))
            holder.scenario.enforce_targets(raise_on_miss=False)  # measured values still reach the report
        raise
    if holder is not None and holder.scenario is not None:
        try:
            holder.scenario.prove_checks_bite()  # self_test = true: each restored copy's checks must bite
        except Exception:
            for problem in holder.scenario.end():  # the live stores' final check still runs, and is reported
                if holder.result is not None:
                    holder.result.errors.append(ErrorResult("LiveStoreNotRestored", redact_text(problem)))
            holder.scenario.enforce_targets(raise_on_miss=False)
            raise
        problems = holder.scenario.end()
        if problems:
            holder.scenario.enforce_targets(raise_on_miss=False)
            raise LiveStoreNotRestored("\n".join(problems))
        holder.scenario.enforce_targets(raise_on_miss=True)
    return outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    holder = item.stash.get(HOLDER_KEY, None)
    if holder is None or holder.result is None:
        return report
    result = holder.result
    if report.failed:
        failed = holder.failed_step
        raised = call.excinfo.value if call.excinfo is not None else None
        result.errors.append(ErrorResult(
            type=type(raised).__name__ if raised is not None else "Error",
            message=redact_text(str(raised) if raised is not None else report.longreprtext[-2000:]),
            step=f"{failed.keyword} {failed.text}" if failed and report.when == "call" else None,
            line=failed.line if failed and report.when == "call" else None))
    if report.when == "call":
        result.status = "passed" if report.passed else ("skipped" if report.skipped else "failed")
    elif report.failed:
        result.status = "error" if result.status in ("running", "passed") else result.status
    if report.when == "teardown":
        ended = time.time()
        result.ended_at = iso(ended)
        if result.status == "running":
            result.status = "error"
        _session(item.config).reporter.scenario_end(result.status, _scenario_line(result))
        result.seconds = time.monotonic() - holder.started
        for error in result.errors:
            _session(item.config).reporter.line(f"    {error.type}: {error.message}")
        if parallel.is_worker(item.config):  # the controller writes the run's results: send it this scenario
            setattr(report, parallel.REPORT_ATTRIBUTE,
                    parallel.encode_result(item.session.items.index(item), result))
            _session(item.config).sent.add(result.nodeid)
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """xdist controller: a scenario a worker finished joins the run (and its lines are printed here)."""
    payload = getattr(report, parallel.REPORT_ATTRIBUTE, None)
    if not _configs or parallel.is_worker(_configs[-1]):
        return
    drill_session = _session(_configs[-1])
    if payload is None and report.failed and report.when not in ("setup", "call", "teardown"):
        payload = parallel.crashed_worker_result(report)  # a worker died mid-scenario: it must not read as passed
    if payload is None:
        return
    index, result = parallel.decode_result(payload)
    drill_session.add_worker_result(index, result)
    drill_session.reporter.scenario_start(f"{result.feature}:{result.line}", result.name)
    drill_session.reporter.scenario_end(result.status, _scenario_line(result))
    for error in result.errors:
        drill_session.reporter.line(f"    {error.type}: {error.message}")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist controller: a worker's share of a sharded run (every worker planned the same one)."""
    output = getattr(node, "workeroutput", {})
    if node.config.stash.get(SESSION_KEY, None) is None:
        return
    drill_session = _session(node.config)
    if output.get("drill_shard"):
        drill_session.run.shard = ShardInfo(**json.loads(output["drill_shard"]))
    if output.get("exitstatus") == pytest.ExitCode.INTERRUPTED:
        drill_session.interrupted = True
    for payload in json.loads(output.get("drill_unfinished") or "[]"):  # scenarios an interrupt cut short
        drill_session.add_worker_result(*parallel.decode_result(payload))


def _scenario_line(result: ScenarioResult) -> str:
    parts = []
    for metric, measured in (("RTO", result.rto_seconds), ("RPO", result.rpo_seconds)):
        targets = [t for t in result.targets if t.metric == metric.lower()]
        target = min((t.target_seconds for t in targets), default=None)
        parts.append(f"{metric} {format_duration(measured)}"
                     + (f" / {format_duration(target)}" if target is not None else ""))
    return "  ".join(parts)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """In `drill run`, drill prints its own progress: no pytest dots between its lines."""
    if not config.getoption("drill_mode"):
        return None
    if report.when == "call":
        return report.outcome, "", ""
    if report.failed:
        return "error", "", ""
    return "", "", ""


def pytest_keyboard_interrupt(excinfo: Any) -> None:
    for config in _configs:
        _session(config).interrupted = True


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    drill_session = _session(session.config)
    if parallel.is_worker(session.config):  # the controller writes results and history, never a worker
        output = session.config.workeroutput  # type: ignore[attr-defined]
        if drill_session.run.shard is not None:
            output["drill_shard"] = json.dumps(dataclasses.asdict(drill_session.run.shard))
        unsent = [s for s in drill_session.run.scenarios if s.nodeid not in drill_session.sent]
        if unsent:  # interrupted: its clean-up has run (fixture teardown); send what it got to
            drill_session.interrupted = drill_session.interrupted or exitstatus == pytest.ExitCode.INTERRUPTED
            drill_session.settle_scenarios(time.time())
            order = {item.nodeid: index for index, item in enumerate(session.items)}
            output["drill_unfinished"] = json.dumps(
                [parallel.encode_result(order.get(s.nodeid, len(order)), s) for s in unsent])
        return
    if not drill_session.run.scenarios and drill_session.report_dir is None:
        return
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        drill_session.interrupted = True
    path = drill_session.finish()
    if path is not None:
        session.config.stash[_RESULTS_PATH] = path


_RESULTS_PATH = pytest.StashKey[Path]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    drill_session = _session(config)
    if not drill_session.run.scenarios or parallel.is_worker(config):
        return
    from drill.report.terminal import summary_table

    terminalreporter.write_sep("=", "drill summary")
    for line in summary_table(drill_session.run):
        terminalreporter.write_line(line)
    path = config.stash.get(_RESULTS_PATH, None)
    if path is not None:
        terminalreporter.write_line(f"results: {_relative(str(path))}")


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path

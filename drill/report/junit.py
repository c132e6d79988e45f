"""JUnit XML: a testsuite per feature, a testcase per scenario, targets and measurements as properties."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from drill.durations import format_duration
from drill.report.model import LoadedRun
from drill.results import ScenarioResult


def _properties(parent: ET.Element, scenario: ScenarioResult) -> None:
    props = ET.SubElement(parent, "properties")

    def add(name: str, value: object) -> None:
        ET.SubElement(props, "property", name=name, value="" if value is None else str(value))

    add("drill.status", scenario.status)
    add("drill.tags", " ".join(f"@{t}" for t in scenario.tags))
    add("drill.rto_seconds", scenario.rto_seconds)
    add("drill.rpo_seconds", scenario.rpo_seconds)
    if scenario.rpo_method:
        add("drill.rpo_method", scenario.rpo_method)
    for target in scenario.targets:
        key = f"drill.target.{target.metric}[{target.source}]"
        add(key, target.target_seconds)
        add(f"{key}.measured", target.measured_seconds)
        add(f"{key}.met", {True: "true", False: "false", None: "not measured"}[target.met])
    for check in scenario.live_stores:  # the safety net's final check of each live store
        add(f"drill.live_store[{check.store}].outcome", check.outcome)
        add(f"drill.live_store[{check.store}].ok", "true" if check.ok else "false")
        add(f"drill.live_store[{check.store}].verified", "true" if check.verified else "false")
    for backup in scenario.evidence.backups:
        add(f"drill.backup[{backup.id}].sha256", backup.sha256)
        add(f"drill.backup[{backup.id}].size", backup.size)
        add(f"drill.backup[{backup.id}].format", backup.format)
        add(f"drill.backup[{backup.id}].source", backup.source)
        if backup.files is not None:  # a folder: its sha256 is that of its files' sha256sum lines
            add(f"drill.backup[{backup.id}].files", len(backup.files))
    for store, fresh in scenario.evidence.freshness.items():
        add(f"drill.freshness[{store}].age_seconds", fresh.age_seconds)
        add(f"drill.freshness[{store}].fresh", "true" if fresh.fresh else "false")
    for store, test in scenario.evidence.self_test.items():  # checks proven to bite
        add(f"drill.self_test[{store}]", test.status)
        if test.fault:
            add(f"drill.self_test[{store}].fault", test.fault)


def _steps_text(scenario: ScenarioResult) -> str:
    return "\n".join(f"{st.status:>11}  {format_duration(st.seconds):>7}  line {st.line}: {st.keyword} {st.text}"
                     for st in scenario.steps)


def render_junit(loaded: LoadedRun) -> str:
    run = loaded.run
    root = ET.Element("testsuites", name=f"drill run {run.run_id}")
    suites: dict[str, ET.Element] = {}
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    counts: dict[str, dict[str, int]] = {}
    for s in run.scenarios:
        suite = suites.get(s.feature)
        if suite is None:
            suite = suites[s.feature] = ET.SubElement(root, "testsuite", name=s.feature_name or s.feature,
                                                      file=s.feature, timestamp=s.started_at or run.started_at,
                                                      hostname=run.host)
            counts[s.feature] = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0}
        case = ET.SubElement(suite, "testcase", name=s.name, classname=s.feature_name or s.feature,
                             file=s.feature, line=str(s.line), time=f"{s.seconds or 0:.3f}")
        _properties(case, s)
        c = counts[s.feature]
        c["tests"] += 1
        message = "; ".join(e.message.splitlines()[0] for e in s.errors if e.message) or s.status
        detail = "\n\n".join(f"{e.type}" + (f" in step {e.step} (line {e.line})" if e.step else "") + f":\n{e.message}"
                             for e in s.errors)
        if s.status == "failed":
            c["failures"] += 1
            kind = s.errors[0].type if s.errors else "failed"
            ET.SubElement(case, "failure", message=message, type=kind).text = detail
        elif s.status in ("error", "interrupted", "running"):
            c["errors"] += 1
            ET.SubElement(case, "error", message=message if s.errors else f"scenario {s.status}",
                          type=s.status).text = detail or _steps_text(s)
        elif s.status == "skipped":
            c["skipped"] += 1
            ET.SubElement(case, "skipped", message="skipped")
        ET.SubElement(case, "system-out").text = _steps_text(s)
    for feature, suite in suites.items():
        c = counts[feature]
        for key in ("tests", "failures", "errors", "skipped"):
            suite.set(key, str(c[key]))
            totals[key] += c[key]
        suite.set("time", f"{sum(s.seconds or 0 for s in run.scenarios if s.feature == feature):.3f}")
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{run.seconds or 0:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

"""Cucumber JSON (the format Cucumber reporters and CI plugins read): features, scenarios, steps, results."""

from __future__ import annotations

import json
import re
from typing import Any

from drill.report.model import LoadedRun
from drill.results import ScenarioResult

# Cucumber's statuses; drill's "not_run" is Cucumber's "skipped", an interrupted step failed.
STEP_STATUS = {"passed": "passed", "failed": "failed", "not_run": "skipped", "interrupted": "failed",
               "running": "failed", "undefined": "undefined"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _scenario(s: ScenarioResult) -> dict[str, Any]:
    steps = []
    for st in s.steps:
        result: dict[str, Any] = {"status": STEP_STATUS.get(st.status, "failed")}
        if st.seconds is not None:
            result["duration"] = int(st.seconds * 1e9)  # nanoseconds, as Cucumber writes them
        if st.error:
            result["error_message"] = st.error
        elif st.status == "interrupted":
            result["error_message"] = "interrupted (Ctrl-C or SIGTERM) while this step ran"
        steps.append({"keyword": f"{st.keyword} ", "name": st.text, "line": st.line, "result": result,
                      "match": {"location": f"{s.feature}:{st.line}"}})
    element: dict[str, Any] = {
        "id": f"{_slug(s.feature_name or s.feature)};{_slug(s.name)}", "keyword": "Scenario", "type": "scenario",
        "name": s.name, "line": s.line, "description": "", "tags": [{"name": f"@{t}", "line": s.line - 1}
                                                                     for t in s.tags], "steps": steps}
    if s.started_at:
        element["start_timestamp"] = s.started_at
    if s.status in ("failed", "error") and s.errors and all(st.status != "failed" for st in s.steps):
        # a missed target fails the scenario after its steps passed: show it where Cucumber looks
        element["after"] = [{"result": {"status": "failed", "error_message": "\n".join(e.message for e in s.errors)},
                             "match": {"location": "drill targets"}}]
    return element


def render_cucumber(loaded: LoadedRun) -> str:
    features: dict[str, dict[str, Any]] = {}
    for s in loaded.run.scenarios:
        feature = features.setdefault(s.feature, {
            "uri": s.feature, "id": _slug(s.feature_name or s.feature), "keyword": "Feature",
            "name": s.feature_name, "line": 1, "description": "", "tags": [], "elements": []})
        feature["elements"].append(_scenario(s))
    return json.dumps(list(features.values()), indent=2, ensure_ascii=False) + "\n"

"""A Markdown summary for a CI job summary (e.g. >> $GITHUB_STEP_SUMMARY): verdict, table, failures."""

from __future__ import annotations

from drill.durations import format_duration
from drill.report.model import LoadedRun
from drill.report.sanitize import code_fence, code_span, markdown_text
from drill.report.view import measure_text, summarize

ICONS = {"passed": "✅", "failed": "❌", "error": "❌", "interrupted": "⏹️", "skipped": "⏭️"}


def _cell(text: str) -> str:
    return markdown_text(text).replace("\n", " ")


def _controls(loaded: LoadedRun) -> list[str]:
    from drill.report.controls import controls_view

    rows = controls_view(loaded)
    if not rows:
        return []
    lines = ["", "### Controls", "", "| Control | Every | Last success | Frequency |", "|---|---|---|---|"]
    for row in rows:
        control = f"{_cell(str(row['id']))}: {_cell(str(row['title']))}"
        lines.append(f"| {control} | {row['every']} | {row['last_success']} | "
                     f"{'✅' if row['kept'] else '❌'} {_cell(str(row['verdict']))} |")
    return lines


def _self_tests(loaded: LoadedRun) -> list[str]:
    """Checks proven to bite (self_test = true): per store, the fault planted and whether its check caught it."""
    rows = [(s, store, test) for s in loaded.run.scenarios for store, test in s.evidence.self_test.items()]
    if not rows:
        return []
    lines = ["", "### Checks proven to bite", "", "| Drill | Store | Fault planted | Result |", "|---|---|---|---|"]
    marks = {"proven": "✅ caught", "not-caught": "❌ not caught"}
    for scenario, store, test in rows:
        result = marks.get(test.status, f"⏭️ {test.status}: {test.message}")
        lines.append(f"| {_cell(scenario.name)} | {_cell(store)} | {_cell(test.fault or '-')} | {_cell(result)} |")
    return lines


def render_markdown(loaded: LoadedRun) -> str:
    run, summary = loaded.run, summarize(loaded)
    lines = [f"## Drill run {run.run_id}: {ICONS.get(run.status, '')} {summary.verdict}".replace("  ", " "), "",
             f"**{summary.passed}/{summary.scenarios} drills passed**, "
             f"**{summary.targets_met}/{summary.targets} targets met**"
             + (f" ({summary.targets_missed} missed)" if summary.targets_missed else "")
             + (f", {summary.interrupted} interrupted" if summary.interrupted else "")
             + f"; run time {format_duration(run.seconds)}, by {run.operator} on {run.host}.", ""]
    if loaded.seal_problem or loaded.history_problems:
        lines += ["> [!CAUTION]", "> Integrity check failed: "
                  + _cell("; ".join([*([f"results.json: {loaded.seal_problem}"] if loaded.seal_problem else []),
                                     *(str(p) for p in loaded.history_problems)])), ""]
    lines += ["| Drill | Status | RTO measured / target | RPO measured / target | Duration |",
              "|---|---|---|---|---|"]
    for s in run.scenarios:
        lines.append(f"| {_cell(s.name)} | {ICONS.get(s.status, '')} {s.status} | {_cell(measure_text(s, 'rto'))} | "
                     f"{_cell(measure_text(s, 'rpo'))} | {format_duration(s.seconds)} |")
    if run.repairs:
        lines += ["", "### Live stores left by a killed drill, finished before this run", ""]
        lines += [f"- {'✅' if c.ok else '❌'} {_cell(c.store)}: {'repaired' if c.ok else 'NOT repaired'} ({c.outcome})"
                  f"{'; ' + _cell(c.interrupted) if c.interrupted else ''}" for c in run.repairs]
    checked = [(s, c) for s in run.scenarios for c in s.live_stores]
    if checked:
        lines += ["", "### Live stores at the end of each drill", ""]
        lines += [f"- {'✅' if c.ok else '❌'} **{_cell(s.name)}**: {_cell(c.store)}: {c.outcome}"
                  f"{' (verified by fingerprint)' if c.verified else ''}"
                  f"{'; changes: ' + _cell('; '.join(c.changes)) if c.changes else ''}" for s, c in checked]
    failures = [s for s in run.scenarios if s.errors or s.status not in ("passed", "skipped")]
    if failures:
        lines += ["", "### Failures", ""]
        for s in failures:
            lines.append(f"**{_cell(s.name)}** ({_cell(s.feature)}:{s.line}): {s.status}")
            for e in s.errors:
                where = f" in step {code_span(e.step)} (line {e.line})" if e.step else ""
                shown = e.message.splitlines()[:20]
                fence = code_fence(e.message)
                lines += [f"- {_cell(e.type)}{where}:", "", f"  {fence}", *[f"  {x}" for x in shown], f"  {fence}"]
            if not s.errors:
                stopped = [st for st in s.steps if st.status in ("interrupted", "failed")]
                if stopped:
                    lines.append(f"- stopped at step {code_span(stopped[0].keyword + ' ' + stopped[0].text)} "
                                 f"(line {stopped[0].line}): {stopped[0].status}")
            lines.append("")
    lines += _self_tests(loaded)
    lines += _controls(loaded)
    commit = run.git_commit or f"none ({markdown_text(run.git_commit_note or 'not recorded')})"
    lines += ["", f"<sub>drill {run.drill_version} · commit {commit} · config digest "
                  f"{run.config_digest[:12]} · results sha256 {(loaded.content_sha256 or '-')[:12]} · "
                  f"{loaded.signature.text}</sub>", ""]
    return "\n".join(lines)

"""Charts as inline SVG, drawn here from numbers (nothing fetched, no script; they print as drawn)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape

from drill.durations import format_duration
from drill.results import PhaseResult

PASS, FAIL, NEUTRAL, RTO_COLOUR, OTHER, TARGET = "#2e7d32", "#c62828", "#9e9e9e", "#ef6c00", "#1565c0", "#37474f"
FONT = 'font-family="Helvetica,Arial,sans-serif" font-size="11"'


def _svg(width: int, height: int, body: list[str], chart: str, label: str) -> str:
    return (f'<svg class="chart" data-chart="{chart}" role="img" aria-label="{escape(label)}" '
            f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" {FONT}><title>{escape(label)}</title>{"".join(body)}</svg>')


def _percent(ratio: float) -> str:
    pct = ratio * 100
    return f"{pct:.2g}%" if pct < 10 else f"{pct:.0f}%"


def gauge(metric: str, measured: float | None, target: float | None, met: bool | None) -> str:
    """Measured against target: a bar for the measurement, a line at the target."""
    width, height, left, right = 420, 38, 44, 16
    span = width - left - right
    values = [v for v in (measured, target) if v is not None]
    top = max(values) * 1.08 if values and max(values) > 0 else 1.0
    colour = NEUTRAL if met is None else (PASS if met else FAIL)
    label = f"{metric.upper()} {'not measured' if measured is None else format_duration(measured)}"
    if target is not None:
        share = f" ({_percent(measured / target)} of target)" if measured is not None and target > 0 else ""
        label += f" / target {format_duration(target)}{share}{'' if met is not False else ' MISSED'}"
    body = [f'<text x="0" y="17" font-weight="bold">{metric.upper()}</text>',
            f'<rect x="{left}" y="6" width="{span}" height="14" fill="#eceff1"/>']
    if measured is not None:
        bar = max(2.0, span * measured / top)
        body.append(f'<rect class="measured" x="{left}" y="6" width="{bar:.1f}" height="14" fill="{colour}">'
                    f'<title>measured {escape(format_duration(measured))}</title></rect>')
    if target is not None:
        x = left + span * target / top
        body.append(f'<line class="target" x1="{x:.1f}" y1="2" x2="{x:.1f}" y2="24" stroke="{TARGET}" '
                    f'stroke-width="2" stroke-dasharray="3,2"><title>target {escape(format_duration(target))}'
                    f'</title></line>')
    body.append(f'<text x="{left}" y="35">{escape(label)}</text>')
    return _svg(width, height, body, f"gauge-{metric}", label)


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def timeline(phases: list[PhaseResult], started_at: str | None, ended_at: str | None) -> str:
    """The phases of a scenario on one time axis; phases inside the RTO clock in orange."""
    timed: list[tuple[PhaseResult, float, float]] = []
    for phase in phases:
        s, e = _ts(phase.started_at), _ts(phase.ended_at)
        if s is not None:
            timed.append((phase, s, e if e is not None else s))
    start = _ts(started_at)
    if start is None:
        start = min((s for _, s, _ in timed), default=0.0)
    end = max([_ts(ended_at) or start, *[e for _, _, e in timed]])
    total = max(end - start, 1e-3)
    left, width, row = 170, 760, 18
    span = width - left - 70
    height = 24 + row * max(len(timed), 1) + 14
    body = []
    for i, (phase, s, e) in enumerate(timed):
        y = 16 + i * row
        x = left + span * (s - start) / total
        w = max(2.0, span * (e - s) / total)
        colour = FAIL if phase.status == "failed" else (RTO_COLOUR if phase.in_rto else OTHER)
        name = phase.name + (f" {phase.store}" if phase.store else "")
        tip = f"{name}: {format_duration(phase.seconds)} at +{format_duration(s - start)} ({phase.status})"
        body.append(f'<text x="0" y="{y + 11}">{escape(name[:28])}</text>'
                    f'<rect class="phase" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 5}" fill="{colour}">'
                    f'<title>{escape(tip)}</title></rect>'
                    f'<text x="{min(x + w + 4, width - 66):.1f}" y="{y + 11}">{escape(format_duration(phase.seconds))}'
                    f'</text>')
    if not timed:
        body.append('<text x="0" y="28">no phase was recorded</text>')
    axis_y = height - 6
    body.append(f'<line x1="{left}" y1="{axis_y - 10}" x2="{left + span}" y2="{axis_y - 10}" stroke="{TARGET}"/>')
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + span * frac
        body.append(f'<text x="{x:.1f}" y="{axis_y}" text-anchor="middle">+{escape(format_duration(total * frac))}'
                    f'</text>')
    return _svg(width, height, body, "timeline", f"timeline of {len(timed)} phases over {format_duration(total)}")


@dataclass
class TrendPoint:
    label: str  # the run (date)
    value: float | None
    status: str
    current: bool = False


def trend(metric: str, points: list[TrendPoint], target: float | None) -> str:
    """One drill's measurement across runs; the target as a dashed line when it fits the scale."""
    width, height, left, bottom, top_pad = 560, 160, 60, 30, 22
    values = [p.value for p in points if p.value is not None]
    peak = max(values, default=0.0)
    top = peak * 1.15 if peak > 0 else 1.0
    target_on_scale = target is not None and target <= max(top, 1e-9) * 3
    if target is not None and target_on_scale:
        top = max(top, target * 1.1)
    plot_w, plot_h = width - left - 12, height - bottom - top_pad
    body = [f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="{TARGET}"/>',
            f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" '
            f'stroke="{TARGET}"/>']
    for frac in (0.0, 0.5, 1.0):
        y = top_pad + plot_h * (1 - frac)
        body.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(format_duration(top * frac))}'
                    f'</text>')
    step = plot_w / max(len(points) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (i * step if len(points) > 1 else plot_w / 2)
        return x, top_pad + plot_h * (1 - v / top)

    line = [xy(i, p.value) for i, p in enumerate(points) if p.value is not None]
    if len(line) > 1:
        body.append(f'<polyline class="series" fill="none" stroke="{OTHER}" stroke-width="1.5" '
                    f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in line)}"/>')
    for i, p in enumerate(points):
        if p.value is None:
            continue
        x, y = xy(i, p.value)
        colour = PASS if p.status == "passed" else (FAIL if p.status == "failed" else NEUTRAL)
        ring = ' stroke="#000" stroke-width="1.5"' if p.current else ""
        body.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="{5 if p.current else 3.5}" fill="{colour}"'
                    f'{ring}>'
                    f'<title>{escape(f"{p.label}: {format_duration(p.value)} ({p.status})")}</title></circle>')
    body.append(f'<text x="{left + 6}" y="{top_pad + 2}" font-weight="bold">{metric.upper()} per run</text>')
    shown = sorted({0, len(points) - 1, *range(0, len(points), max(1, len(points) // 5))})
    for i in shown:
        if 0 <= i < len(points):
            x = left + (i * step if len(points) > 1 else plot_w / 2)
            anchor = "start" if i == 0 and len(points) > 1 else ("end" if i == len(points) - 1 and i else "middle")
            body.append(f'<text x="{x:.1f}" y="{height - 12}" text-anchor="{anchor}">{escape(points[i].label)}</text>')
    if target is not None:
        if target_on_scale:
            y = top_pad + plot_h * (1 - target / top)
            body.append(f'<line class="target" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
                        f'stroke="{FAIL}" stroke-dasharray="5,3"/><text x="{left + plot_w}" y="{y - 3:.1f}" '
                        f'text-anchor="end">target {escape(format_duration(target))}</text>')
        else:
            body.append(f'<text x="{left + plot_w / 2:.1f}" y="{top_pad + 2}" text-anchor="middle">target '
                        f'{escape(format_duration(target))}: far above this scale</text>')
    if not values:
        body.append(f'<text x="{left + 10}" y="{top_pad + plot_h / 2:.1f}">not measured in any run</text>')
    return _svg(width, height, body, f"trend-{metric}",
                f"{metric.upper()} across {len(points)} runs, target {format_duration(target)}")

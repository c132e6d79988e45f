"""A status badge for a drill suite (the runs of one reports directory): a small flat SVG, nothing fetched.

Green when every drill's latest run passed and no control is overdue; orange when they passed but
a control is overdue; red when a drill's latest run failed; grey when there is no run.
"""

from __future__ import annotations

from html import escape

from drill.status import SuiteStatus

GREEN, ORANGE, RED, GREY, LABEL_GREY = "#2e7d32", "#ef6c00", "#c62828", "#757575", "#555"


def _width(text: str) -> int:
    """Verdana 11px, the badge font: about 6.5 px a character, plus padding."""
    return int(len(text) * 6.5) + 12


def badge_message(status: SuiteStatus) -> tuple[str, str]:
    total = len(status.scenarios)
    passed = sum(1 for s in status.scenarios if s.last.status == "passed")
    overdue = len(status.overdue_controls)
    if total == 0:
        return "no runs", GREY
    message = f"{passed}/{total} passed"
    if overdue:
        message += f", {overdue} control{'s' if overdue != 1 else ''} overdue"
    if status.integrity_problems:
        return message + ", TAMPERED", RED
    if passed < total:
        return message, RED
    return message, ORANGE if overdue else GREEN


def render_badge(status: SuiteStatus, label: str = "DR drills") -> str:
    message, colour = badge_message(status)
    left, right = _width(label), _width(message)
    total = left + right
    text = f"{label}: {message}"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
            f'aria-label="{escape(text)}"><title>{escape(text)}</title>'
            f'<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
            f'<stop offset="1" stop-opacity=".1"/></linearGradient>'
            f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
            f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="{LABEL_GREY}"/>'
            f'<rect class="message" x="{left}" width="{right}" height="20" fill="{colour}"/>'
            f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
            f'<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
            f'<text x="{left / 2:.1f}" y="14">{escape(label)}</text>'
            f'<text class="message" x="{left + right / 2:.1f}" y="14">{escape(message)}</text></g></svg>\n')

"""Every report format from one results.json: which file each writes, and `drill report`'s work."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from drill.errors import DrillError
from drill.report.history_store import HistoryStore
from drill.report.model import LoadedRun, load

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

Renderer = Callable[[LoadedRun], str]


def _html(loaded: LoadedRun) -> str:
    from drill.report.html import render_html

    return render_html(loaded)


def _md(loaded: LoadedRun) -> str:
    from drill.report.markdown import render_markdown

    return render_markdown(loaded)


def _junit(loaded: LoadedRun) -> str:
    from drill.report.junit import render_junit

    return render_junit(loaded)


def _cucumber(loaded: LoadedRun) -> str:
    from drill.report.cucumber import render_cucumber

    return render_cucumber(loaded)


# format -> (file written next to results.json, renderer)
FORMATS: dict[str, tuple[str, Renderer]] = {
    "html": ("report.html", _html),
    "md": ("summary.md", _md),
    "junit": ("junit.xml", _junit),
    "json": ("cucumber.json", _cucumber),
}
ALIASES = {"markdown": "md", "cucumber": "json", "xml": "junit"}


def parse_formats(values: list[str] | None) -> list[str]:
    """`--format html --format md` or `--format html,md`; none given means every format."""
    if not values:
        return list(FORMATS)
    chosen: list[str] = []
    for value in values:
        for name in filter(None, (v.strip().lower() for v in value.split(","))):
            name = ALIASES.get(name, name)
            if name == "all":
                return list(FORMATS)
            if name not in FORMATS:
                raise DrillError(f"unknown report format {name!r}; choose from {', '.join(FORMATS)} (or all)")
            if name not in chosen:
                chosen.append(name)
    return chosen


def render(loaded: LoadedRun, fmt: str) -> str:
    return FORMATS[fmt][1](loaded)


def write_reports(results: Path, formats: list[str], output: Path | None = None,
                  problems: list[str] | None = None, public_key: Ed25519PublicKey | None = None,
                  history: HistoryStore | None = None) -> list[Path]:
    """Render each format; files go next to results.json (or into `output`, a folder).

    With `problems` (a list), a format that cannot be rendered is noted there and the others are
    still written; without it the first failure raises.
    """
    loaded = load(results, public_key, history)
    folder = output or loaded.path.parent
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        name, renderer = FORMATS[fmt]
        path = folder / name
        tmp = folder / f".{name}.tmp"
        try:
            tmp.write_text(renderer(loaded), encoding="utf-8")
        except DrillError as exc:
            if problems is None:
                raise
            problems.append(f"{name}: {exc}")
            continue
        tmp.replace(path)
        written.append(path)
    return written

"""The report as a PDF: headless Chromium prints the self-contained HTML (A4, the report's own @page rules)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from drill.errors import DrillError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PRINT_TIMEOUT = 180.0


def chromium_binary() -> str | None:
    """$DRILL_CHROMIUM, else the first Chromium or Chrome on PATH."""
    explicit = os.environ.get("DRILL_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else shutil.which(explicit)
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def _require_binary() -> str:
    binary = chromium_binary()
    if binary is None:
        where = f"$DRILL_CHROMIUM ({os.environ['DRILL_CHROMIUM']}) is not a program; " \
            if os.environ.get("DRILL_CHROMIUM") else ""
        raise DrillError(f"{where}the PDF is printed by headless Chromium, and none was found on PATH "
                         f"({', '.join(BROWSERS)}): install it (Debian: apt-get install chromium), set "
                         f"DRILL_CHROMIUM=/path/to/chrome, or leave the PDF out with --no-pdf")
    return binary


def browser_version(binary: str) -> str:
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def html_to_pdf(html: Path, pdf: Path) -> str:
    """Print `html` to `pdf`; returns the browser's version. Raises DrillError saying why it failed."""
    binary = _require_binary()
    with tempfile.TemporaryDirectory(prefix="drill-pdf-") as profile:
        args = [binary, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", f"--user-data-dir={profile}",
                "--no-pdf-header-footer", f"--print-to-pdf={pdf}", html.resolve().as_uri()]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root inside its sandbox
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=PRINT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise DrillError(f"{binary} did not print the PDF within {PRINT_TIMEOUT:.0f}s") from None
        except OSError as exc:
            raise DrillError(f"{binary} could not be started to print the PDF: {exc}") from None
    if not pdf.is_file() or pdf.read_bytes()[:5] != b"%PDF-":
        tail = (done.stderr or "").strip().splitlines()[-5:]
        raise DrillError(f"{binary} did not write a PDF (exit {done.returncode}): {' | '.join(tail) or 'no output'}")
    return browser_version(binary)

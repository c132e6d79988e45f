"""Screenshots for the docs, taken in headless Chromium: the report's Controls section and the PDF's first page.

    python -m tests.screenshots REPORT_HTML REPORT_PDF OUT_DIR

writes OUT_DIR/controls-section.png and OUT_DIR/evidence-pdf-page1.png (docs/images/ holds the committed
ones; tests/test_audit_evidence.py runs this on a real run and checks what it writes).
"""

from __future__ import annotations

import base64
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

from tests.chromium import Chromium, chromium_binary

CONTROLS_PNG = "controls-section.png"
PDF_PAGE_PNG = "evidence-pdf-page1.png"
PDF_VIEW = (620, 877)  # CSS pixels: one A4 page fitted to the width, as the viewer shows it


def _page(browser: Chromium, width: int, height: int) -> str:
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session: str = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    browser.send("Page.enable", session=session)
    browser.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                        "mobile": False}, session=session)
    return session


def _shot(browser: Chromium, session: str, **params: Any) -> bytes:
    return base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png", **params},
                                         session=session)["data"])


def controls_section(browser: Chromium, html: Path) -> tuple[bytes, dict[str, float]]:
    """The #controls section of the report as a reader's browser lays it out; and its box (CSS pixels)."""
    session = _page(browser, 1100, 900)
    browser.send("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
    browser.wait_event("Page.loadEventFired", session)
    box = browser.send("Runtime.evaluate", {"returnByValue": True, "expression": """(() => {
        const r = document.querySelector('#controls').getBoundingClientRect();
        return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; })()"""},
        session=session)["result"]["value"]
    clip = {"x": box["x"] - 8, "y": box["y"] - 8, "width": box["width"] + 16, "height": box["height"] + 16,
            "scale": 1}
    return _shot(browser, session, clip=clip, captureBeyondViewport=True), box


def pdf_first_page(browser: Chromium, pdf: Path, timeout: float = 60) -> bytes:
    """The PDF's first page in Chromium's own viewer, once the viewer has drawn it (two equal frames that differ
    from the empty one before the document loads)."""
    session = _page(browser, *PDF_VIEW)
    browser.send("Page.navigate", {"url": pdf.resolve().as_uri() + "#toolbar=0&view=FitH"}, session=session)
    browser.wait_event("Page.loadEventFired", session)
    empty = hashlib.sha256(_shot(browser, session)).hexdigest()
    previous = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = _shot(browser, session)
        digest = hashlib.sha256(frame).hexdigest()
        if digest != empty and digest == previous:
            return frame
        previous = digest
        time.sleep(0.2)  # polling the viewer's drawing, bounded by the deadline
    raise TimeoutError(f"Chromium's PDF viewer did not draw {pdf} within {timeout:.0f}s")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    html, pdf, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    binary = chromium_binary()
    if binary is None:
        print("screenshots: chromium is not installed (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    with Chromium(binary) as browser:
        controls, _ = controls_section(browser, html)
        (out / CONTROLS_PNG).write_bytes(controls)
        (out / PDF_PAGE_PNG).write_bytes(pdf_first_page(browser, pdf))
    print(f"screenshots: wrote {out / CONTROLS_PNG} and {out / PDF_PAGE_PNG}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The report picture of the README and the docs: a real `drill run`, its report.html shot in headless Chromium.

    python -m tests.report_picture OUT.png

runs some of the bundled drills (FEATURES: PostgreSQL, its RPO drill, Redis and MongoDB on throwaway local
stores) in a temporary folder, opens the report.html that run wrote, and saves the header and the summary
(verdict, cards, the table of drills with RTO and RPO against their targets) as OUT.png. docs/images/report.png
is its output; tests/test_docs.py runs it again and checks what it writes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.chromium import Chromium, chromium_binary
from tests.screenshots import _page, _shot

REPO = Path(__file__).resolve().parent.parent
FEATURES = ("postgres_restore.feature", "postgres_rpo.feature", "redis_restore.feature", "mongodb_restore.feature")
WIDTH = 1100  # CSS pixels: the report's layout at a laptop's width


def run_drills(workdir: Path) -> Path:
    """`drill run` on FEATURES in `workdir`; the report.html it wrote."""
    (workdir / "features").mkdir()
    for name in FEATURES:
        shutil.copy(REPO / "features" / name, workdir / "features" / name)
    done = subprocess.run([sys.executable, "-m", "drill", "run", "--quiet"], cwd=workdir, capture_output=True,
                          text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"drill run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    [report] = sorted((workdir / "reports").glob("*/report.html"))
    return report


def summary_shot(browser: Chromium, html: Path) -> bytes:
    """The page from its top to the end of the #summary section, as a reader's browser lays it out."""
    session = _page(browser, WIDTH, 900)
    browser.send("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
    browser.wait_event("Page.loadEventFired", session)
    bottom = browser.send("Runtime.evaluate", {"returnByValue": True, "expression": """(() => {
        const r = document.querySelector('#summary').getBoundingClientRect();
        return r.bottom + scrollY; })()"""}, session=session)["result"]["value"]
    clip = {"x": 0, "y": 0, "width": WIDTH, "height": float(bottom) + 16, "scale": 1}
    return _shot(browser, session, clip=clip, captureBeyondViewport=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    binary = chromium_binary()
    if binary is None:
        print("report_picture: chromium is not installed (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="drill-report-picture-") as tmp:
        report = run_drills(Path(tmp))
        with Chromium(binary) as browser:
            picture = summary_shot(browser, report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(picture)
    print(f"report_picture: wrote {out} from a run of {', '.join(FEATURES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

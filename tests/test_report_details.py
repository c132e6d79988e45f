"""The report details a first user tripped over (issue 17), on a real run against PostgreSQL.

- counts and health checks are tables (expected, actual), not JSON;
- the "RPO markers (continuous writer)" section appears only for a scenario where a writer ran;
- `drill list` gives targets as `30m`, `1h`, not `1800s`;
- paths are normalized: a glob `../dumps/...` is recorded as `<root>/dumps/...`, never `drills/../dumps`;
- `git_commit` outside a git repository comes with `git_commit_note` saying so.

The HTML is read with the standard library's HTML parser (the tables' cells), not by drill's code.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import DrillRun, run_drill

FEATURE = '''Feature: report details
  @rto:30m @rpo:1h
  Scenario: a drill with a writer, counts and health checks
    Given the PostgreSQL store "shop"
    And "shop" is seeded with 100 rows
    And writes to "shop" are recorded every 100 milliseconds
    And a backup of "shop" is taken
    And a health service for the stores is running
    When "shop" is lost
    And "shop" is restored from its latest backup
    Then "shop" matches its state at the backup
    And "shop" holds 100 rows
    And the HTTP endpoint "{health}/health" answers 200
    And the query "SELECT 6 * 7" on "shop" returns "42"

  Scenario: a drill without a writer, from a runbook dump found by a glob
    Given the PostgreSQL store "shop"
    And "shop" is seeded with 100 rows
    And a gzip'd SQL dump of "shop" is saved as "../dumps/shop_{timestamp}.sql.gz"
    And the latest backup of "shop" in "../dumps/shop_*.sql.gz"
    When "shop" is lost
    And "shop" is restored from its latest backup
    Then "shop" holds 100 rows
'''


class Sections(HTMLParser):
    """Per scenario section: its h4 headings, and each table's rows of cell texts under the heading before it."""

    def __init__(self) -> None:
        super().__init__()
        self.scenarios: list[dict[str, list[list[str]]]] = []
        self._heading: str | None = None
        self._in: str | None = None
        self._text = ""
        self._row: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section" and ("class", "scenario") in attrs and ("id", "metadata") not in attrs:
            self.scenarios.append({})
            self._heading = None
        if tag in ("h4", "td", "th"):
            self._in, self._text = tag, ""
        if tag == "tr":
            self._row = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "h4" and self.scenarios:
            self._heading = " ".join(self._text.split())
            self.scenarios[-1][self._heading] = []
        elif tag in ("td", "th"):
            self._row.append(" ".join(self._text.split()))
        elif tag == "tr" and self.scenarios and self._heading is not None:
            self.scenarios[-1][self._heading].append(self._row)
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._text += data


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DrillRun]:
    root = tmp_path_factory.mktemp("details")  # under the system temp folder: not a git repository
    drills = root / "drills"
    (drills / "features").mkdir(parents=True)
    (root / "dumps").mkdir()
    (drills / "features" / "details.feature").write_text(FEATURE, encoding="utf-8")
    done = run_drill(drills, "run")
    assert done.code == 0 and done.results is not None, done.output
    return drills, done


def _sections(drills: Path, results: dict[str, object]) -> list[dict[str, list[list[str]]]]:
    parser = Sections()
    parser.feed((drills / "reports" / str(results["run_id"]) / "report.html").read_text(encoding="utf-8"))
    return parser.scenarios


def test_counts_and_health_checks_are_tables(run: tuple[Path, DrillRun]) -> None:
    drills, done = run
    assert done.results is not None
    first = _sections(drills, done.results)[0]
    counts = first["Counts"]
    assert counts[0] == ["What", "Expected", "Actual", "Met"]
    assert ["shop", "100", "100", "yes"] in counts
    assert ["shop: seeded", "-", "100", "-"] in counts
    health = first["Health checks"]
    assert health[0] == ["Check", "What", "Expected", "Actual", "Same", "Took"]
    endpoint = next(row for row in health[1:] if row[0] == "HTTP GET")
    assert endpoint[1].endswith("/health") and endpoint[2:5] == ["200", "200", "yes"]
    assert ["SQL query", "SELECT 6 * 7 on shop", "42", "42", "yes", "-"] in health
    assert "health" not in first  # no raw JSON section for it any more
    html = (drills / "reports" / str(done.results["run_id"]) / "report.html").read_text(encoding="utf-8")
    assert "&#34;expected&#34;" not in html and '"expected"' not in html


def test_the_writer_section_only_where_a_writer_ran(run: tuple[Path, DrillRun]) -> None:
    drills, done = run
    assert done.results is not None
    with_writer, without = _sections(drills, done.results)
    markers = with_writer["RPO markers (continuous writer)"]
    assert markers[0][:3] == ["Store", "Every", "Written"] and markers[1][:2] == ["shop", "100ms"]
    written = done.scenario("a drill with a writer, counts and health checks")["evidence"]["markers"]["shop"]
    assert markers[1][2] == str(written["written"])
    assert with_writer["Recovery point (RPO)"][1][4] == "the newest surviving marker"
    assert "RPO markers (continuous writer)" not in without
    assert without["Recovery point (RPO)"][1][4] == "the backup's consistent time"


def test_paths_are_normalized(run: tuple[Path, DrillRun]) -> None:
    drills, done = run
    scenario = done.scenario("a drill without a writer, from a runbook dump found by a glob")
    [backup] = [b for b in scenario["evidence"]["backups"] if b["source"] == "external"]
    assert ".." not in backup["path"]
    assert Path(backup["path"]).parent == drills.parent / "dumps"
    assert "/../" not in done.output


def test_a_missing_git_commit_says_why(run: tuple[Path, DrillRun]) -> None:
    drills, done = run
    assert done.results is not None
    assert done.results["git_commit"] is None
    assert done.results["git_commit_note"] == f"{drills.resolve()} is not in a git repository"
    meta = _sections_metadata(drills / "reports" / str(done.results["run_id"]) / "report.html")
    assert meta["Git commit of the drills"] == f"none: {drills.resolve()} is not in a git repository"
    summary = (drills / "reports" / str(done.results["run_id"]) / "summary.md").read_text(encoding="utf-8")
    assert "commit none (" in summary and "is not in a git repository)" in summary


def _sections_metadata(html: Path) -> dict[str, str]:
    class Rows(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: dict[str, str] = {}
            self.cells: list[str] = []
            self.text: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("th", "td"):
                self.text = ""
            if tag == "tr":
                self.cells = []

        def handle_endtag(self, tag: str) -> None:
            if tag in ("th", "td") and self.text is not None:
                self.cells.append(" ".join(self.text.split()))
                self.text = None
            if tag == "tr" and len(self.cells) == 2:
                self.rows[self.cells[0]] = self.cells[1]

        def handle_data(self, data: str) -> None:
            if self.text is not None:
                self.text += data

    parser = Rows()
    parser.feed(html.read_text(encoding="utf-8"))
    return parser.rows


def test_drill_list_gives_durations_as_people_write_them(run: tuple[Path, DrillRun]) -> None:
    drills, _ = run
    listed = run_drill(drills, "list", "--json")
    assert listed.code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert rows[0]["targets"] == ["RPO 1h (@rpo:1h)", "RTO 30m (@rto:30m)"]

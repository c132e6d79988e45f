"""The files kind's counts by pattern, judged by the test's own listing of the folder it archived with GNU tar."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_drill
from tests.runbook_fixtures import stamp, tar_gz

FEATURE = '''Feature: f
  Scenario: configuration files by pattern
    Given the files store "config"
    And the latest backup of "config" in "backups/config_*.tar.gz"
    When "config" is restored from its latest backup
    Then "config" holds {count} files matching "{pattern}"
'''


def _archive(drill_dir: Path, tmp_path: Path) -> list[str]:
    folder = tmp_path / "config"
    for name in ("nginx/nginx.conf", "nginx/sites/app.conf", "nginx/mime.types", "compose.yml"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"# {name}\n")
    tar_gz(folder, drill_dir / "backups" / f"config_{stamp()}.tar.gz")
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _run(drill_dir: Path, count: int, pattern: str) -> tuple[int, str]:
    (drill_dir / "features").mkdir(exist_ok=True)
    (drill_dir / "features" / "count.feature").write_text(FEATURE.format(count=count, pattern=pattern))
    run = run_drill(drill_dir, "run")
    return run.code, run.output


def test_files_matching_a_pattern_are_counted_as_the_folder_holds_them(drill_dir: Path, tmp_path: Path) -> None:
    files = _archive(drill_dir, tmp_path)
    one_level = [f for f in files if f.startswith("nginx/") and f.count("/") == 1 and f.endswith(".conf")]
    assert one_level == ["nginx/nginx.conf"]  # `*` stays within one directory
    code, output = _run(drill_dir, len(one_level), "nginx/*.conf")
    assert code == 0, output
    code, output = _run(drill_dir, len([f for f in files if f.endswith(".conf")]), "**.conf")
    assert code == 0, output


def test_a_wrong_count_by_pattern_fails_saying_what_it_found(drill_dir: Path, tmp_path: Path) -> None:
    _archive(drill_dir, tmp_path)
    code, output = _run(drill_dir, 2, "nginx/*.conf")
    assert code == 1, output
    assert "'config' holds 1 files matching 'nginx/*.conf', expected 2" in output, output

"""History that outlives the runner: `[drill] history` / $DRILL_HISTORY on a file and on a GCS object.

The GCS server is fake-gcs-server started by the test (tests/live_servers.py, outside drill). The
chain in the bucket is read back with the google client and checked with hashlib here, not with
drill's history code.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drill.report.history import record_run
from drill.report.history_store import GcsHistory
from drill.report.integrity import seal
from tests.conftest import REPO, drill_env, run_drill
from tests.live_servers import LiveGcs

BUCKET = "drill-history"
OBJECT = "nightly/history.jsonl"
QUICK_FEATURE = '''Feature: quick
  Scenario: the cache comes back
    Given the Redis store "cache"
    And "cache" is seeded with 50 keys
    And a backup of "cache" is taken
    When "cache" is lost
    And "cache" is restored from its latest backup
    Then "cache" holds 50 keys
'''


@pytest.fixture(scope="module")
def gcs() -> Iterator[LiveGcs]:
    with LiveGcs() as server:
        server.client().create_bucket(BUCKET)  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def gcs_env(gcs: LiveGcs, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint)
    return {"STORAGE_EMULATOR_HOST": gcs.endpoint}


def _lines(gcs: LiveGcs, name: str = OBJECT) -> list[dict[str, Any]]:
    blob = gcs.client().bucket(BUCKET).blob(name)  # type: ignore[attr-defined]
    return [json.loads(line) for line in blob.download_as_bytes().decode().splitlines() if line.strip()]


def _chain_problems(entries: list[dict[str, Any]]) -> list[str]:
    """The chain checked here, independently: seq 1..n, each prev the previous hash, each hash its body's sha256."""
    problems = []
    prev = "0" * 64
    for number, entry in enumerate(entries, 1):
        body = {k: v for k, v in entry.items() if k != "hash"}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                           ensure_ascii=False).encode()).hexdigest()
        if entry["seq"] != number or entry["prev"] != prev or entry["hash"] != digest:
            problems.append(f"entry {number} ({entry['run_id']}) does not chain")
        prev = entry["hash"]
    return problems


def _results(folder: Path, run_id: str) -> Path:
    path = folder / run_id / "results.json"
    path.parent.mkdir(parents=True)
    scenario = {"feature": "features/a.feature", "name": "a", "status": "passed", "seconds": 1.0,
                "rto_seconds": 1.0, "rpo_seconds": 0.5, "targets": []}
    path.write_text(json.dumps(seal({"run_id": run_id, "started_at": "2026-01-01T00:00:00+00:00",
                                     "status": "passed", "scenarios": [scenario]})))
    return path


def test_an_append_that_loses_the_race_reads_again_and_chains_after_the_winner(
        gcs: LiveGcs, gcs_env: dict[str, str], tmp_path: Path) -> None:
    url = f"gs://{BUCKET}/race/history.jsonl"
    mine, other = GcsHistory(url), GcsHistory(url)
    record_run(tmp_path, _results(tmp_path, "first"), mine)
    calls = []
    original = mine.append

    def append_with_a_rival(build: Any) -> Any:
        def build_then_lose(lines: list[str]) -> Any:
            calls.append(len(lines))
            if len(calls) == 1:  # another runner appends between this one's read and its write
                record_run(tmp_path, _results(tmp_path, "rival"), other)
            return build(lines)
        return original(build_then_lose)

    mine.append = append_with_a_rival  # type: ignore[method-assign]
    entry = record_run(tmp_path, _results(tmp_path, "mine"), mine)
    assert calls == [1, 2], "the first write must be refused (412) and the chain read again"
    entries = _lines(gcs, "race/history.jsonl")
    assert [e["run_id"] for e in entries] == ["first", "rival", "mine"]
    assert entry.seq == 3 and _chain_problems(entries) == []


def test_concurrent_appends_from_separate_processes_lose_no_entry(gcs: LiveGcs, gcs_env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    url = f"gs://{BUCKET}/stress/history.jsonl"
    go = tmp_path / "go"
    code = textwrap.dedent(f'''
        import json, sys, time
        from pathlib import Path
        from drill.report.history import record_run
        from drill.report.history_store import GcsHistory
        from drill.report.integrity import seal
        worker = sys.argv[1]
        folder = Path(sys.argv[2]) / worker
        while not Path({str(go)!r}).exists():  # all writers start together
            time.sleep(0.005)
        store = GcsHistory({url!r})
        for n in range(3):
            run_id = f"{{worker}}-{{n}}"
            path = folder / run_id / "results.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(seal({{"run_id": run_id, "started_at": "", "status": "passed",
                                             "scenarios": []}})))
            record_run(folder, path, store)
    ''')
    procs = [subprocess.Popen([sys.executable, "-c", code, f"w{i}", str(tmp_path)], env=drill_env(gcs_env),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
             for i in range(6)]
    go.touch()
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, outputs
    entries = _lines(gcs, "stress/history.jsonl")
    assert sorted(e["run_id"] for e in entries) == sorted(f"w{i}-{n}" for i in range(6) for n in range(3))
    assert _chain_problems(entries) == []
    names = {b.name for b in gcs.client().list_blobs(BUCKET, prefix="stress/")}  # type: ignore[attr-defined]
    assert all(f"stress/{e['run_id']}/results.json" in names for e in entries)


def _project(root: Path, toml: str = "") -> Path:
    (root / "features").mkdir(parents=True)
    (root / "features" / "quick.feature").write_text(QUICK_FEATURE)
    if toml:
        (root / "drill.toml").write_text(toml)
    return root


def test_two_checkouts_share_a_file_history_and_verify_passes_from_either(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "history.jsonl"
    toml = f'[drill]\nhistory = "{shared}"\n'
    first, second = _project(tmp_path / "a", toml), _project(tmp_path / "b", toml)
    one = run_drill(first, "run", "--quiet")
    two = run_drill(second, "run", "--quiet")
    assert one.code == 0 and two.code == 0, one.output + two.output
    entries = [json.loads(line) for line in shared.read_text().splitlines()]
    assert [e["run_id"] for e in entries] == [one.results["run_id"], two.results["run_id"]]  # type: ignore[index]
    assert _chain_problems(entries) == []
    assert (shared.parent / one.results["run_id"] / "results.json").is_file()  # type: ignore[index]
    assert not (second / "reports" / "history.jsonl").exists()
    verified = run_drill(second, "report", "--verify")
    assert verified.code == 0 and "verified 2 run(s)" in verified.stdout, verified.output
    # The copy beside the shared history is what verify checks for the other checkout's run: edit it.
    copy = shared.parent / one.results["run_id"] / "results.json"  # type: ignore[index]
    copy.write_text(copy.read_text().replace('"passed"', '"failed"', 1))
    tampered = run_drill(second, "report", "--verify")
    assert tampered.code == 1 and f"TAMPERED: run {one.results['run_id']}: edited" in tampered.stderr  # type: ignore[index]


def test_a_gcs_history_catches_an_edited_entry_and_an_edited_or_removed_results_copy(
        gcs: LiveGcs, gcs_env: dict[str, str], tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    env = {**gcs_env, "DRILL_HISTORY": f"gs://{BUCKET}/faults/history.jsonl"}
    runs = [run_drill(project, "run", "--quiet", env=env) for _ in range(2)]
    assert [r.code for r in runs] == [0, 0], runs[0].output + runs[1].output
    ids = [r.results["run_id"] for r in runs]  # type: ignore[index]
    assert run_drill(project, "report", "--verify", env=env).code == 0
    bucket = gcs.client().bucket(BUCKET)  # type: ignore[attr-defined]
    history = bucket.blob("faults/history.jsonl")
    original = history.download_as_bytes()
    history.upload_from_string(original.replace(b'"status":"passed"', b'"status":"failed"', 1))
    edited = run_drill(project, "report", "--verify", env=env)
    assert edited.code == 1 and f"run {ids[0]}: history entry 1 was edited" in edited.stderr, edited.output
    history.upload_from_string(original)
    copy = bucket.blob(f"faults/{ids[0]}/results.json")
    kept = copy.download_as_bytes()
    copy.upload_from_string(kept.replace(b'"passed"', b'"failed"', 1))
    changed = run_drill(project, "report", "--verify", env=env)
    assert changed.code == 1 and f"run {ids[0]}: edited: gs://{BUCKET}/faults/{ids[0]}/results.json" in changed.stderr
    copy.delete()
    removed = run_drill(project, "report", "--verify", env=env)
    assert removed.code == 1 and f"removed: gs://{BUCKET}/faults/{ids[0]}/results.json is missing" in removed.stderr


def test_stable_output_paths_name_the_files_without_the_run_id(gcs: LiveGcs, gcs_env: dict[str, str],
                                                               tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    run = run_drill(project, "run", "--quiet", "--output-dir", "out", "--results", "ci/results.json",
                    "--junit-xml", "ci/junit.xml", "--html", "ci/report.html",
                    "--report-format", "none", env=gcs_env)
    assert run.code == 0, run.output
    run_dir = project / "reports" / run.results["run_id"]  # type: ignore[index]
    assert sorted(p.name for p in (project / "out").iterdir()) == [
        "cucumber.json", "junit.xml", "report.html", "results.json", "summary.md"]
    assert (project / "out" / "results.json").read_bytes() == (run_dir / "results.json").read_bytes()
    assert (project / "ci" / "results.json").read_bytes() == (run_dir / "results.json").read_bytes()
    import xml.etree.ElementTree as ET

    cases = ET.parse(project / "ci" / "junit.xml").getroot().iter("testcase")
    assert [c.get("name") for c in cases] == ["the cache comes back"]
    assert run.results["run_id"] in (project / "ci" / "report.html").read_text()  # type: ignore[index]
    uploaded = run_drill(project, "run", "--quiet", "--output-dir", f"gs://{BUCKET}/reports/nightly-7", env=gcs_env)
    assert uploaded.code == 0, uploaded.output
    blob = gcs.client().bucket(BUCKET).blob("reports/nightly-7/results.json")  # type: ignore[attr-defined]
    assert json.loads(blob.download_as_bytes())["run_id"] == uploaded.results["run_id"]  # type: ignore[index]


def test_an_output_that_cannot_be_written_fails_the_run_and_keeps_the_results(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    (project / "out").write_text("a file where the folder should be")
    run = run_drill(project, "run", "--quiet", "--output-dir", "out")
    assert run.code == 2 and "drill: error:" in run.stderr and "out" in run.stderr, run.output
    assert run.results is not None and run.results["status"] == "passed"


@pytest.mark.parametrize(("value", "expected"), [
    ("42", "must be a path to a history.jsonl"),
    ('"gs://bucket"', "is not a history object; write gs://BUCKET/PREFIX/history.jsonl"),
])
def test_a_bad_history_value_is_refused_naming_the_line(tmp_path: Path, value: str, expected: str) -> None:
    project = _project(tmp_path / "p", f"[drill]\nseed_scale = 1\nhistory = {value}\n")
    run = run_drill(project, "check")
    assert run.code == 2 and expected in run.stderr and "drill.toml:3" in run.stderr, run.output


def test_history_on_the_repository_lives_in_its_dot_history_folder(tmp_path: Path) -> None:
    project = _project(tmp_path / "p", '[drill]\nhistory = "repository"\n[repository]\npath = "repo"\n')
    run = run_drill(project, "run", "--quiet")
    assert run.code == 0, run.output
    entries = [json.loads(line) for line in (project / "repo" / ".history" / "history.jsonl").read_text().splitlines()]
    assert [e["run_id"] for e in entries] == [run.results["run_id"]]  # type: ignore[index]
    assert os.path.isfile(project / "repo" / ".history" / entries[0]["results"])


def test_a_bad_drill_history_is_refused_before_anything_runs(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    for command in (["check"], ["run", "--quiet"]):
        run = run_drill(project, *command, env={"DRILL_HISTORY": "gs://bucket-without-object"})
        assert run.code == 2 and "gs://BUCKET/PREFIX/history.jsonl" in run.stderr, run.output
    assert not (project / "reports").exists()  # nothing was provisioned or run


def test_merge_from_a_bucket_waits_for_the_last_share(gcs: LiveGcs, gcs_env: dict[str, str], tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    (project / "features" / "second.feature").write_text(QUICK_FEATURE.replace("the cache comes back", "again"))
    for index in (1, 2):
        run = run_drill(project, "run", "--quiet", "--shard", f"{index}/2", "--output-dir",
                        f"gs://{BUCKET}/wait/all/shard-{index}", env=gcs_env)
        assert run.code == 0, run.output
    bucket = gcs.client().bucket(BUCKET)  # type: ignore[attr-defined]
    bucket.copy_blob(bucket.blob("wait/all/shard-1/results.json"), bucket, "wait/late/shard-1/results.json")
    late = subprocess.Popen([sys.executable, "-m", "drill", "report", "merge", "--from", f"gs://{BUCKET}/wait/late",
                             "--wait", "5m", "-o", "merged"], cwd=project, env=drill_env(gcs_env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert late.stderr is not None
    line = late.stderr.readline()  # readiness: drill says it is waiting, and for which share
    assert "waiting for the shares: shard 2/2 is missing" in line, line
    bucket.copy_blob(bucket.blob("wait/all/shard-2/results.json"), bucket, "wait/late/shard-2/results.json")
    out, err = late.communicate(timeout=120)
    assert late.returncode == 0, out + err
    merged = json.loads((project / "merged" / "results.json").read_text())
    assert sorted(s["name"] for s in merged["scenarios"]) == ["again", "the cache comes back"]
    gone = run_drill(project, "report", "merge", "--from", f"gs://{BUCKET}/wait/none", "--wait", "1s", env=gcs_env)
    assert gone.code == 2 and "no results.json found in gs://" in gone.stderr, gone.output

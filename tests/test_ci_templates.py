"""The CI templates in examples/: linted and schema-checked, and their commands run like CI from fresh clones.

The run-like-CI test is the issue's demonstration: two CI-like runs (the nightly job, then the
bundled drills split into 3 shares, each from its own clone, merged in a fourth) share one history
on a GCS emulator started here; the merged run has the same scenario outcomes as the serial one,
the chain and the trend continue across both, `drill report --verify` passes, and a missing or
duplicated share fails the merge naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO, drill_env, run_drill
from tests.live_servers import LiveGcs

BUCKET = "drill-ci"


def _lint(directory: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = [str(REPO / ".ci" / "lint-templates")] + ([str(directory)] if directory else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env=drill_env())


def test_the_templates_pass_actionlint_and_their_schemas() -> None:
    done = _lint()
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "actionlint: 2 workflow(s) clean" in out
    assert out.count("ok -- validation done") == 2  # GitHub workflows, GitLab CI
    assert "cronjob.yaml passed" in out and "indexed-job.yaml passed" in out


def test_a_broken_template_of_each_kind_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "examples"
    shutil.copytree(REPO / "examples", broken)
    workflow = broken / "github" / "drill-nightly.yml"
    workflow.write_text(workflow.read_text().replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest"))
    gitlab = broken / "gitlab" / "drill-nightly.gitlab-ci.yml"
    gitlab.write_text(gitlab.read_text().replace("  script:", "  scripts:"))
    job = broken / "kubernetes" / "indexed-job.yaml"
    job.write_text(job.read_text().replace("completions: 3", "completion: 3"))
    done = _lint(broken)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert re.search(r"drill-nightly\.yml:\d+:\d+: .*runs_on", out), out  # actionlint names file and line
    assert "drill-nightly.gitlab-ci.yml" in out and "scripts" in out  # the GitLab schema
    assert "indexed-job.yaml" in out and "completion" in out and "passed for resource job" not in out


def _chain_problems(entries: list[dict[str, Any]]) -> list[str]:
    problems, prev = [], "0" * 64
    for number, entry in enumerate(entries, 1):
        body = {k: v for k, v in entry.items() if k != "hash"}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                           ensure_ascii=False).encode()).hexdigest()
        if entry["seq"] != number or entry["prev"] != prev or entry["hash"] != digest:
            problems.append(f"entry {number} does not chain")
        prev = entry["hash"]
    return problems


def _outcomes(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    return [(s["feature"], s["name"], s["status"], all(t["met"] is not False for t in s["targets"]))
            for s in results["scenarios"]]


def test_the_templates_commands_run_like_ci_from_fresh_clones(tmp_path: Path) -> None:
    with LiveGcs() as gcs:
        client: Any = gcs.client()
        client.create_bucket(BUCKET)
        env = drill_env({
            "STORAGE_EMULATOR_HOST": gcs.endpoint, "DRILL_HISTORY": f"gs://{BUCKET}/nightly/history.jsonl",
            "SHARDS": f"gs://{BUCKET}/shards/job-1",  # as the Indexed Job's pods write them
            "REPO": str(REPO), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
        work = tmp_path / "ci"
        done = subprocess.run([str(REPO / "examples" / "run-like-ci.sh"), str(work)], capture_output=True,
                              text=True, env=env, timeout=2400)
        out = done.stdout + done.stderr
        assert done.returncode == 0, out[-6000:]
        for expected in ("nightly: drill check", "shard 1/3: drill run --shard 1/3", "shard 3/3: exit 0",
                         "merge: drill report merge --from", "drill: verified 2 run(s)"):
            assert expected in out, out[-6000:]

        nightly = json.loads((work / "nightly-out" / "results.json").read_text())
        merged = json.loads((work / "merged-out" / "results.json").read_text())
        assert nightly["status"] == merged["status"] == "passed"
        assert len(nightly["scenarios"]) >= 20
        assert _outcomes(merged) == _outcomes(nightly)  # every scenario once, in the serial order, same outcome
        assert [m["index"] for m in merged["merged_from"]] == [1, 2, 3]
        shares = [json.loads(client.bucket(BUCKET).blob(f"shards/job-1/shard-{i}/results.json").download_as_bytes())
                  for i in (1, 2, 3)]
        assert {s["shard"]["balanced_by"] for s in shares} == {"history"}  # the nightly run's durations
        assert sorted(k for s in shares for k in s["shard"]["scenarios"]) == sorted(shares[0]["shard"]["order"])

        # The two runs, from different clones, continue one chain and one trend in the bucket.
        lines = client.bucket(BUCKET).blob("nightly/history.jsonl").download_as_bytes().decode().splitlines()
        entries = [json.loads(line) for line in lines]
        assert [e["run_id"] for e in entries] == [nightly["run_id"], merged["run_id"]]
        assert _chain_problems(entries) == []
        assert re.search(r'<td>\d{4}-Q\d</td><td class="num">2</td>', (work / "merged-out" / "report.html").read_text())

        # A missing share, then a duplicated one, fail the merge and name the share.
        bucket = client.bucket(BUCKET)
        for index in (1, 3):
            bucket.copy_blob(bucket.blob(f"shards/job-1/shard-{index}/results.json"), bucket,
                             f"partial/shard-{index}/results.json")
        missing = run_drill(work / "merge", "report", "merge", "--from", f"gs://{BUCKET}/partial", env=env)
        assert missing.code == 2 and "shard 2/3 is missing" in missing.stderr, missing.output
        local = tmp_path / "artifacts"
        for folder, index in (("a", 1), ("b", 2), ("c", 3), ("d", 2)):
            (local / folder).mkdir(parents=True)
            bucket.blob(f"shards/job-1/shard-{index}/results.json").download_to_filename(
                str(local / folder / "results.json"))
        duplicated = run_drill(work / "merge", "report", "merge", str(local), env=env)
        assert duplicated.code == 2 and "shard 2/3 appears 2 times" in duplicated.stderr, duplicated.output
        lines_after = client.bucket(BUCKET).blob("nightly/history.jsonl").download_as_bytes().decode().splitlines()
        assert len(lines_after) == 2  # a refused merge adds nothing to the history


def _drill_commands(text: str) -> set[tuple[str, frozenset[str]]]:
    """Each `drill SUBCOMMAND --flag …` in a file: the subcommand and the set of its flags."""
    found = set()
    for match in re.finditer(r"\bdrill (check|run|report merge|report)\b([^\n;&|]*)", text):
        found.add((match.group(1), frozenset(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", match.group(2)))))
    return found


def test_the_script_runs_every_drill_command_of_every_template() -> None:
    script = _drill_commands((REPO / "examples" / "run-like-ci.sh").read_text())
    for template in sorted((REPO / "examples").rglob("*.y*ml")):
        commands = _drill_commands(template.read_text())
        assert commands, f"{template} runs no drill command"
        for command in commands:
            assert command in script, f"{template.name} runs `drill {command[0]} {' '.join(sorted(command[1]))}`, " \
                                      f"which examples/run-like-ci.sh does not"

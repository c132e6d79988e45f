"""The Docker engine for the container tests: started by the tests when none answers, stopped after.

`docker_engine()` (a session fixture in conftest.py) uses the engine $DOCKER_HOST points at when
it answers; otherwise it runs `.ci/docker-engine start` (Debian's docker.io, data root under
/var/cache/drill-docker so images survive between runs) and `.ci/docker-images` (local images,
skipped when they exist: the warm cache), and at the end of the session `.ci/docker-engine stop`
and `.ci/docker-engine check`, so nothing is left: no containers, no volumes, no engine process.
A machine where no engine can be started fails these tests; they never skip.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENGINE = REPO / ".ci" / "docker-engine"
IMAGES = REPO / ".ci" / "docker-images"
# The images .ci/docker-images makes: look-alikes of the official ones, under drill-local/.
POSTGRES_IMAGE = "drill-local/postgres:15"
REDIS_IMAGE = "drill-local/redis:7"
HELPER_IMAGE = "drill-local/alpine"
MONGO_IMAGE = "drill-local/mongo:7"  # nx-27017 behind a mongod-like entrypoint (no mongod on Debian)
TESTCONTAINERS_ENV = {"TESTCONTAINERS_RYUK_DISABLED": "true", "TESTCONTAINERS_CONNECTION_MODE": "docker_host"}


def _answers(env: dict[str, str]) -> bool:
    try:
        import docker

        client = docker.DockerClient(base_url=env["DOCKER_HOST"], timeout=10) if env.get("DOCKER_HOST") \
            else docker.from_env(timeout=10)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


def engine_session() -> Iterator[dict[str, str]]:
    """Yield the environment (DOCKER_HOST, testcontainers settings) that reaches a ready engine."""
    started = False
    env = dict(os.environ)
    if not _answers(env):
        done = subprocess.run([str(ENGINE), "start"], capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(f"no Docker engine answers and `.ci/docker-engine start` failed:\n{done.stderr}{done.stdout}")
        for line in done.stdout.splitlines():
            if line.startswith("export DOCKER_HOST="):
                env["DOCKER_HOST"] = line.split("=", 1)[1].strip()
            if line.startswith("export DRILL_DOCKER_STARTED=1"):
                started = True  # ours to stop (0: it was running already)
    env.update(TESTCONTAINERS_ENV)
    saved = {key: os.environ.get(key) for key in ("DOCKER_HOST", *TESTCONTAINERS_ENV)}
    os.environ.update({key: env[key] for key in saved if key in env})
    try:
        done = subprocess.run([str(IMAGES)], capture_output=True, text=True, timeout=1800, env=env)
        if done.returncode != 0:
            pytest.fail(f"`.ci/docker-images` failed:\n{done.stderr}{done.stdout}")
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if started:
            subprocess.run([str(ENGINE), "stop"], capture_output=True, text=True, timeout=300)
            check = subprocess.run([str(ENGINE), "check"], capture_output=True, text=True, timeout=60)
            if check.returncode != 0:
                pytest.fail(f"the Docker engine left something behind: {check.stderr}{check.stdout}")

"""drill as a user installs it: the wheel under its index name, the README's install line in a fresh venv, and
the README's first command run from that venv on bundled drills.

The wheel is built from this checkout (`pip wheel --no-deps --no-build-isolation`: the dev venv's setuptools,
nothing downloaded). The fresh venv then runs the README's install line as written, plus `--find-links` to the
folder of that wheel (dr-drill is not on the index yet); its dependencies come from pip's cache, or the index
when the cache lacks one. `drill run` then runs FEATURES, one drill file per local store kind the extras bring
(PostgreSQL, Redis, MongoDB on nx-27017, GCS on fake-gcs-server, Firestore on the emulator), from a folder that
holds nothing of this checkout but those files: every import comes from the installed wheel.
"""

from __future__ import annotations

import email
import importlib.metadata
import json
import re
import shlex
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import drill
from drill.distribution import NAME
from tests.conftest import REPO, drill_env

README = (REPO / "README.md").read_text(encoding="utf-8")
FEATURES = ("postgres_rpo.feature", "redis_restore.feature", "mongodb_restore.feature", "gcs_restore.feature",
            "firestore_restore.feature")


def _install_block() -> list[str]:
    """The commands of the README's first shell block under "## Install": the install line, then the first command."""
    section = README[README.index("## Install"):]
    block = section[section.index("```sh\n") + 6:section.index("\n```", section.index("```sh"))]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out),
                            str(REPO)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    [found] = out.glob("*.whl")
    return found


def test_the_wheel_is_dr_drill_with_one_version_and_its_license(wheel: Path) -> None:
    assert wheel.name.startswith(f"dr_drill-{drill.__version__}-")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
        entry_points = archive.read(metadata_name.replace("METADATA", "entry_points.txt")).decode()
    assert metadata["Name"] == NAME == "dr-drill"
    assert metadata["Version"] == drill.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert {"all", "mongodb", "embedded", "docker", "firestore", "gcs", "crypto", "metrics"} <= extras
    requires = metadata.get_all("Requires-Dist") or []
    assert any(r.startswith("nx-27017") and 'extra == "mongodb"' in r for r in requires)
    all_extra = [r for r in requires if 'extra == "all"' in r]
    assert {"embedded", "docker", "firestore", "gcs", "mongodb"} <= {
        extra for r in all_extra for extra in re.findall(r"dr-drill\[([^\]]+)\]", r)}
    # The command, the pytest plugin and the steps the plugin registers are in the wheel.
    assert "drill = drill.cli:main" in entry_points and "drill = drill.plugin" in entry_points
    for module in ("drill/steps/recovery.py", "drill/reference/vocabulary.py", "drill/report/templates/report.html.j2",
                   "drill/stores/postgres/__init__.py", "drill/py.typed"):
        assert module in names, module


def test_drill_version_is_the_changelog_s_newest_and_the_metadata_s() -> None:
    done = subprocess.run([sys.executable, "-m", "drill", "--version"], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == f"drill {drill.__version__}"
    assert importlib.metadata.version(NAME) == drill.__version__
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = re.search(r"^## (\S+)", changelog, re.M)
    assert newest is not None and newest.group(1) == drill.__version__
    assert (REPO / "LICENSE").read_text().strip().startswith("Apache License")


def test_the_readme_install_line_gives_a_working_drill_run(wheel: Path, tmp_path: Path) -> None:
    install, first = _install_block()[:2]
    assert install == "pip install 'dr-drill[all]'" and first == "drill run features/"
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bindir = env_dir / "bin"
    pip = shlex.split(install)
    installed = subprocess.run([str(bindir / "python"), "-m", *pip, "--find-links", str(wheel.parent)],
                               capture_output=True, text=True, timeout=1200)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    shown = subprocess.run([str(bindir / "python"), "-m", "pip", "show", NAME], capture_output=True, text=True,
                           timeout=60)
    assert f"Version: {drill.__version__}" in shown.stdout, shown.stdout + shown.stderr
    version = subprocess.run([str(bindir / "drill"), "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == f"drill {drill.__version__}", version.stderr

    work = tmp_path / "user"
    (work / "features").mkdir(parents=True)
    for name in FEATURES:
        shutil.copy(REPO / "features" / name, work / "features" / name)
    env = drill_env({"PATH": f"{bindir}:{drill_env()['PATH']}", "VIRTUAL_ENV": str(env_dir)})
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(bindir / "drill"), *shlex.split(first)[1:]], cwd=work, capture_output=True,
                          text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    [results_path] = (work / "reports").glob("*/results.json")
    results = json.loads(results_path.read_text())
    assert results["status"] == "passed" and results["drill_version"] == drill.__version__
    kinds_run = {store["kind"] for s in results["scenarios"] for store in s["evidence"]["stores"].values()}
    assert kinds_run == {"postgres", "redis", "mongodb", "gcs", "firestore"}
    features_run = {Path(s["feature"]).name for s in results["scenarios"]}
    assert features_run == set(FEATURES)
    # Imported from the fresh venv, not from this checkout.
    where = subprocess.run([str(bindir / "python"), "-c", "import drill, drill.steps; print(drill.__file__)"],
                           cwd=work, capture_output=True, text=True, timeout=60, env=env)
    assert where.stdout.strip().startswith(str(env_dir)), where.stdout + where.stderr

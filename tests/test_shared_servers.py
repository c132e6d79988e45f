"""Shared servers ([drill] shared_servers): the small scenarios of a run put their PostgreSQL stores on one
throwaway server, each in a database of its own, and nothing of one scenario reaches the next.

The oracles are the server's own files and programs, not drill's code: the shared cluster is the drill-pg-*
folder whose drill-owner.pid names the drill process, its postmaster's pid and port come from postmaster.pid,
and what the server holds is read with psql. The drill is held at pause points (`provisioned:<store>`, one
store name per scenario) while the test reads or plants.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from drill import vocabulary
from drill.provision import sharing
from drill.provision.processes import OWNER_FILE, pid_alive
from tests.conftest import PausedDrill, port_open, run_drill, start_paused_drill
from tests.live_servers import LivePostgres, postgres_bin_dir

SMALL = """
  Scenario: {name} comes back
    Given the PostgreSQL store "{name}"
{extra}    And "{name}" is seeded with 60 rows
    And a backup of "{name}" is taken
    When "{name}" is lost
    And "{name}" is restored from its latest backup
    Then "{name}" matches its state at the backup
    And "{name}" holds 60 rows
"""


def feature(*scenarios: str) -> str:
    return "Feature: small drills\n" + "".join(scenarios)


def small(name: str, *extra_steps: str) -> str:
    return SMALL.format(name=name, extra="".join(f"    {step}\n" for step in extra_steps))


def project(root: Path, text: str, toml: str = "") -> Path:
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "features" / "small.feature").write_text(text)
    if toml:
        (root / "drill.toml").write_text(toml)
    return root


def clusters_of(pid: int) -> list[Path]:
    """The throwaway PostgreSQL folders drill process `pid` owns (its drill-owner.pid)."""
    found = []
    for folder in Path(tempfile.gettempdir()).glob("drill-pg-*"):
        try:
            if (folder / OWNER_FILE).read_text().strip() == str(pid):
                found.append(folder)
        except OSError:
            continue
    return found


def postmaster(folder: Path) -> tuple[int, int]:
    """The postmaster's pid and port, as the server wrote them in postmaster.pid."""
    lines = (folder / "data" / "postmaster.pid").read_text().splitlines()
    return int(lines[0]), int(lines[3])


def psql(port: int, sql: str, database: str = "postgres") -> str:
    done = subprocess.run([str(postgres_bin_dir() / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database, "-c", sql],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", ""), "PGCONNECT_TIMEOUT": "10"})
    assert done.returncode == 0, f"psql on {database}: {sql}\n{done.stderr}"
    return done.stdout.strip()


def the_cluster(paused: PausedDrill) -> tuple[Path, int, int]:
    """The one throwaway cluster of the paused drill: folder, postmaster pid, port."""
    folders = clusters_of(paused.proc.pid)
    assert len(folders) == 1, f"the drill should have one throwaway cluster, it has {folders}"
    return (folders[0], *postmaster(folders[0]))


def start_at_first(root: Path) -> tuple[PausedDrill, Path, int, int]:
    """The project's drill run, paused once its first scenario's store is provisioned: the drill and the cluster
    (folder, postmaster pid, port) that store is on."""
    paused = start_paused_drill(root, "provisioned:first,provisioned:second", "run")
    return (paused, *the_cluster(paused))


def next_pause(paused: PausedDrill) -> None:
    paused.pause_file.unlink()
    paused.wait_paused(180)


def results(root: Path) -> dict[str, dict[str, object]]:
    [found] = list((root / "reports").glob("*/results.json"))
    return {s["name"]: s for s in json.loads(found.read_text())["scenarios"]}


def assert_nothing_left(pid: int, *postmasters: int) -> None:
    assert clusters_of(pid) == [], "the run's throwaway cluster folders must be removed"
    for server in postmasters:
        assert not pid_alive(server), f"postmaster {server} of the run still runs"


def test_small_scenarios_share_one_server_each_in_a_fresh_database(tmp_path: Path) -> None:
    project(tmp_path, feature(small("first", 'And SQL is run on "first":', '  """',
                                     "  CREATE TABLE planted (x int)", '  """'),
                              small("second")))
    paused, folder, first_pid, port = start_at_first(tmp_path)
    assert psql(port, "SELECT datname FROM pg_database ORDER BY 1").split() == [
        "first", "postgres", "template0", "template1"]
    next_pause(paused)

    assert the_cluster(paused) == (folder, first_pid, port), "the second scenario should use the same server"
    assert psql(port, "SELECT datname FROM pg_database ORDER BY 1").split() == [
        "postgres", "second", "template0", "template1"], "the first scenario's database must be dropped"
    assert psql(port, "SELECT count(*) FROM pg_class WHERE relname = 'planted'", "second") == "0"
    assert psql(port, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace", "second") == "0"
    output = paused.finish()

    assert paused.proc.returncode == 0, output
    assert {name: s["status"] for name, s in results(tmp_path).items()} == {
        "first comes back": "passed", "second comes back": "passed"}
    assert_nothing_left(paused.proc.pid, first_pid)
    assert not port_open(port)


PLANTED = {
    "a role": ["CREATE ROLE planted_role LOGIN"],
    "a server setting": ["ALTER SYSTEM SET work_mem = '7MB'", "SELECT pg_reload_conf()"],
    "a role's setting": ["ALTER ROLE postgres SET work_mem = '7MB'"],
    "a table in the postgres database": ["CREATE TABLE planted_table (x int)"],
}


@pytest.mark.parametrize("fault", list(PLANTED))
def test_a_server_level_fault_gets_the_next_scenario_a_new_server(tmp_path: Path, fault: str) -> None:
    """A fault planted on the shared server behind drill's back (with psql, while the first scenario runs) is
    caught when the scenario gives the server back: the next scenario runs on a new server without it."""
    project(tmp_path, feature(small("first"), small("second")))
    paused, folder, first_pid, port = start_at_first(tmp_path)
    for statement in PLANTED[fault]:
        psql(port, statement)
    next_pause(paused)

    new_folder, second_pid, new_port = the_cluster(paused)
    assert second_pid != first_pid and new_folder != folder, "the changed server should have been replaced"
    assert not pid_alive(first_pid) and not folder.exists()
    assert psql(new_port, "SELECT count(*) FROM pg_roles WHERE rolname = 'planted_role'") == "0"
    assert psql(new_port, "SHOW work_mem") == "4MB"
    assert psql(new_port, "SELECT count(*) FROM pg_db_role_setting") == "0"
    assert psql(new_port, "SELECT count(*) FROM pg_class WHERE relname = 'planted_table'") == "0"
    output = paused.finish()

    assert paused.proc.returncode == 0, output
    assert_nothing_left(paused.proc.pid, first_pid, second_pid)


def test_a_role_a_sql_step_creates_gets_the_next_scenario_a_new_server(tmp_path: Path) -> None:
    project(tmp_path, feature(small("first", 'And SQL is run on "first":', '  """',
                                     "  CREATE ROLE planted_role LOGIN", '  """'),
                              small("second")))
    paused, _folder, first_pid, _port = start_at_first(tmp_path)
    next_pause(paused)

    _new_folder, second_pid, new_port = the_cluster(paused)
    assert second_pid != first_pid and not pid_alive(first_pid)
    assert psql(new_port, "SELECT count(*) FROM pg_roles WHERE rolname = 'planted_role'") == "0"
    output = paused.finish()
    assert paused.proc.returncode == 0, output
    assert_nothing_left(paused.proc.pid, first_pid, second_pid)


def test_a_killed_shared_server_is_followed_by_a_scenario_that_passes_on_a_new_one(tmp_path: Path) -> None:
    project(tmp_path, feature(small("first"), small("second")))
    paused, _folder, first_pid, _port = start_at_first(tmp_path)
    os.kill(first_pid, signal.SIGKILL)
    next_pause(paused)

    _new_folder, second_pid, new_port = the_cluster(paused)
    assert second_pid != first_pid and not pid_alive(first_pid)
    assert psql(new_port, "SELECT 1") == "1"
    output = paused.finish()

    assert paused.proc.returncode == 1, output  # the first scenario failed: its server was killed
    statuses = {name: s["status"] for name, s in results(tmp_path).items()}
    assert statuses == {"first comes back": "failed", "second comes back": "passed"}, output
    assert_nothing_left(paused.proc.pid, first_pid, second_pid)


def test_ctrl_c_stops_the_shared_server_and_removes_its_folder(tmp_path: Path) -> None:
    project(tmp_path, feature(small("first"), small("second")))
    paused = start_paused_drill(tmp_path, "provisioned:second", "run")
    _folder, server_pid, port = the_cluster(paused)
    output = paused.stop(signal.SIGINT)

    assert paused.proc.returncode == 130, output
    assert_nothing_left(paused.proc.pid, server_pid)
    assert not port_open(port)


def test_the_shared_server_of_a_drill_killed_with_sigkill_is_swept_by_the_next_run(tmp_path: Path) -> None:
    project(tmp_path, feature(small("first")))
    paused = start_paused_drill(tmp_path, "provisioned:first", "run")
    folder, server_pid, _port = the_cluster(paused)
    paused.kill()  # its own clean-up cannot run: the server and its folder stay
    assert folder.exists() and pid_alive(server_pid)

    run = run_drill(tmp_path, "run")

    assert run.code == 0, run.output
    assert not folder.exists() and not pid_alive(server_pid), "the next run must sweep the killed drill's server"


def test_a_scenario_with_a_server_fault_gets_a_private_server_and_the_next_one_the_shared(tmp_path: Path) -> None:
    killed = ('\n  Scenario: first comes back\n    Given the PostgreSQL store "first"\n'
              '    And "first" is seeded with 60 rows\n    And a backup of "first" is taken\n'
              '    And the rollback policy is on-failure\n'
              '    When the restore of "first" fails because the server is killed\n'
              '    Then "first" is rolled back to its state before the restore\n')
    project(tmp_path, feature(killed, small("second"), small("third")))
    paused = start_paused_drill(tmp_path, "provisioned:first,provisioned:second,provisioned:third", "run")
    private, private_pid, _ = the_cluster(paused)
    next_pause(paused)
    shared, shared_pid, _ = the_cluster(paused)
    assert shared != private and not private.exists(), "the private server must be removed with its scenario"
    next_pause(paused)
    assert the_cluster(paused)[:2] == (shared, shared_pid), "the small scenarios should share one server"
    output = paused.finish()

    assert paused.proc.returncode == 0, output
    found = results(tmp_path)
    assert "shared" not in str(found["first comes back"]["evidence"]["stores"]["first"]["location"])  # type: ignore[index]
    assert "shared" in str(found["second comes back"]["evidence"]["stores"]["second"]["location"])  # type: ignore[index]
    assert_nothing_left(paused.proc.pid, private_pid, shared_pid)


def test_with_shared_servers_off_each_scenario_has_its_own_server(tmp_path: Path) -> None:
    project(tmp_path, feature(small("first"), small("second")), toml="[drill]\nshared_servers = false\n")
    paused, folder, first_pid, _ = start_at_first(tmp_path)
    next_pause(paused)
    new_folder, second_pid, _ = the_cluster(paused)
    assert new_folder != folder and second_pid != first_pid and not pid_alive(first_pid)
    output = paused.finish()
    assert paused.proc.returncode == 0, output
    assert_nothing_left(paused.proc.pid, first_pid, second_pid)


def test_a_live_server_never_goes_through_the_shared_server(tmp_path: Path) -> None:
    with LivePostgres() as live:
        live.create_database("ledger")
        live.seed_ledger("ledger", rows=200)
        before = (live.databases(), live.psql("SELECT count(*) FROM entries", "ledger"))
        project(tmp_path, feature(
            "\n  Scenario: both\n    Given the PostgreSQL store \"ledger\"\n    And the PostgreSQL store \"local\"\n"
            "    And a backup of \"ledger\" is taken\n    And \"local\" is seeded with 40 rows\n"
            "    And a backup of \"local\" is taken\n    When \"local\" is lost\n"
            "    And \"local\" is restored from its latest backup\n    Then \"local\" matches its state at the backup\n"
            "    And \"ledger\" holds 250 rows\n"),
            toml='[stores.ledger]\nkind = "postgres"\nprovision = "live"\nurl_env = "LEDGER_URL"\n')
        paused = start_paused_drill(tmp_path, "provisioned:local", "run", env={"LEDGER_URL": live.url("ledger")})
        _folder, server_pid, port = the_cluster(paused)
        assert port != live.port
        assert live.databases() == before[0], "nothing of the shared server may reach the live one"
        output = paused.finish()

        assert paused.proc.returncode == 0, output
        assert (live.databases(), live.psql("SELECT count(*) FROM entries", "ledger")) == before
        found = results(tmp_path)["both"]["evidence"]["stores"]  # type: ignore[index]
        assert "shared" in found["local"]["location"] and "shared" not in found["ledger"]["location"]
        assert_nothing_left(paused.proc.pid, server_pid)


@pytest.mark.parametrize(("steps", "qualifies"), [
    (['the PostgreSQL store "db"', '"db" is seeded with 10 rows', 'a backup of "db" is taken', '"db" is lost',
      '"db" is restored from its latest backup', '"db" matches its state at the backup', '"db" holds 10 rows'], True),
    (['the PostgreSQL store "db"', 'the restore of "db" fails because the server is killed'], False),
    (['the PostgreSQL store "db" archiving its WAL', 'a base backup of "db" is taken'], False),
    (['the PostgreSQL store "db"', 'the whole system is restored'], False),
    (['the PostgreSQL store "db"', 'a step no sentence knows'], False),
])
def test_only_scenarios_whose_steps_all_act_on_data_qualify(steps: list[str], qualifies: bool) -> None:
    vocabulary.load()
    assert sharing.scenario_qualifies(steps) is qualifies

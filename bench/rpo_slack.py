"""How much the step machinery adds to a measured RPO: the slack that tests/conftest.py RPO_SLACK allows.

Runs drill on scenarios whose gap between the recovery point and the disaster is known (a wait of G
seconds, the backup step, markers every I seconds) and prints, per run, the excess
    RPO - G - (the backup step's duration) - I
which is what the bound G <= RPO <= G + I + backup + RPO_SLACK must absorb. Run it idle and under load
(e.g. `stress-ng --cpu 2` or two busy loops) to see the worst case:

    python bench/rpo_slack.py --runs 5 [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

INTERVAL = 0.2
FEATURE = f'''Feature: rpo slack
  Scenario: writer stopped before the backup
    Given the PostgreSQL store "db"
    And writes to "db" are recorded every {int(INTERVAL * 1000)} milliseconds
    And 1 second passes
    When writes to "db" stop
    And 2 seconds pass
    And a backup of "db" is taken
    When "db" is lost
    And "db" is restored from its latest backup
    Then "db" holds 0 rows

  Scenario: writes lost after the backup
    Given the PostgreSQL store "db"
    And writes to "db" are recorded every {int(INTERVAL * 1000)} milliseconds
    And 1 second passes
    And a backup of "db" is taken
    When 3 seconds pass
    And "db" is lost
    And "db" is restored from its latest backup
    Then "db" holds 0 rows
'''
GAPS = {"writer stopped before the backup": 2.0, "writes lost after the backup": 3.0}


def one_run() -> list[float]:
    with tempfile.TemporaryDirectory(prefix="drill-rpo-slack-") as root:
        (Path(root) / "features").mkdir()
        (Path(root) / "features" / "slack.feature").write_text(FEATURE, encoding="utf-8")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DRILL_CONFIG", None)
        done = subprocess.run([sys.executable, "-m", "drill", "run", "--quiet"], cwd=root, env=env,
                              capture_output=True, text=True, timeout=600)
        [results] = list(Path(root).glob("reports/*/results.json"))
        data = json.loads(results.read_text())
        if done.returncode != 0:
            raise SystemExit(f"the drill failed:\n{done.stdout}{done.stderr}")
        excess = []
        for scenario in data["scenarios"]:
            backup = sum(p["seconds"] for p in scenario["phases"] if p["name"] == "backup")
            excess.append(scenario["rpo_seconds"] - GAPS[scenario["name"]] - backup - INTERVAL)
        return excess


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    found: list[float] = []
    for number in range(args.runs):
        excess = one_run()
        found.extend(excess)
        print(f"run {number + 1}: excess over gap + backup + interval: " + ", ".join(f"{e:+.3f}s" for e in excess))
    print(f"{len(found)} measurements: max {max(found):+.3f}s, median {statistics.median(found):+.3f}s "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    if args.out:
        args.out.write_text(json.dumps({"excess_seconds": found, "max": max(found),
                                        "load_average": os.getloadavg()[0]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How long `drill report` takes on a large run: N scenarios (200 by default) with a history of past runs.

    .venv/bin/python bench/report_bench.py                      synthetic scenarios shaped like real ones
    .venv/bin/python bench/report_bench.py --from reports/<run-id>/results.json
                                                                copies of the scenarios of a real run

It writes the runs and their history (as `drill run` would) in a temporary folder, then times
loading the results and rendering each format, and prints one line per format and a total.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drill.report.history import record_run
from drill.report.integrity import seal
from drill.report.model import load
from drill.report.render import FORMATS, render

SCHEMA = {f"column c{i}": f"#{i} text NOT NULL" for i in range(10)}


def synthetic_scenario() -> dict[str, Any]:
    """One scenario with the evidence a PostgreSQL drill records (three tables, a backup, markers)."""
    steps = [("Given", 'the PostgreSQL store "db"'), ("And", '"db" is seeded with 5000 rows'),
             ("And", 'a backup of "db" is taken'), ("When", '"db" is lost'),
             ("And", '"db" is restored from its latest backup'), ("Then", '"db" matches its state at the backup'),
             ("And", "the recovery time is within 30 minutes"), ("And", "the data loss is at most 1 hour")]
    phases = ["provision", "seed", "backup", "disaster", "restore", "verify"]
    parts = {f"public.t{i}": {"count": 1000 * (i + 1), "content": f"{i:032x}", "schema": SCHEMA} for i in range(3)}
    return {
        "feature": "features/bench.feature", "feature_name": "benchmark", "name": "", "line": 3,
        "tags": ["tier:critical"], "status": "passed", "started_at": "2026-01-01T00:00:00.000+00:00",
        "ended_at": "2026-01-01T00:00:06.000+00:00", "seconds": 6.0, "rto_seconds": 1.0, "rpo_seconds": 0.5,
        "rpo_method": "markers",
        "targets": [{"metric": m, "target_seconds": t, "source": "@tier:critical", "measured_seconds": v, "met": True}
                    for m, t, v in (("rto", 1800.0, 1.0), ("rpo", 3600.0, 0.5))],
        "phases": [{"name": p, "store": "db", "started_at": f"2026-01-01T00:00:0{i}.000+00:00",
                    "ended_at": f"2026-01-01T00:00:0{i}.900+00:00", "seconds": 0.9, "in_rto": i >= 3,
                    "status": "passed"} for i, p in enumerate(phases)],
        "steps": [{"keyword": k, "text": t, "line": 4 + i, "status": "passed", "seconds": 0.5, "error": None}
                  for i, (k, t) in enumerate(steps)],
        "evidence": {
            "stores": {"db": {"kind": "postgres", "server_version": "15.18", "tools": "pg 15.18"}},
            "backups": [{"id": "db-1", "store": "db", "format": "pg_dump-custom", "sha256": "ab" * 32,
                         "size": 66505, "consistent_at": 1767225600.0, "tool_versions": {"pg_dump": "15.18"}}],
            "fingerprints": {"db": {"backup": "db-1", "before": {"total": 6000, "unit": "rows", "part_label": "table",
                                                                 "parts": parts},
                                    "after": {"total": 6000, "unit": "rows", "part_label": "table", "parts": parts},
                                    "differences": []}},
            "markers": {"db": {"written": 11, "lost": 6, "rpo_seconds": 0.5, "method": "markers"}}},
        "errors": [], "nodeid": ""}


def build(root: Path, template: dict[str, Any], scenarios: int, runs: int, seed: int = 7) -> Path:
    """`runs` runs of `scenarios` scenarios each, recorded in the history; returns the newest results.json."""
    rng = random.Random(seed)
    base = template.get("scenarios") or [synthetic_scenario()]
    reports = root / "reports"
    newest = reports
    for run in range(runs):
        results = copy.deepcopy({k: v for k, v in template.items() if k != "scenarios"})
        month = 1 + (run * 12 // max(runs, 1))
        results.update(run_id=f"2026{month:02d}01T000000Z-run{run:03d}",
                       started_at=f"2026-{month:02d}-01T00:00:00+00:00", status="passed")
        results["scenarios"] = []
        for i in range(scenarios):
            s = copy.deepcopy(base[i % len(base)])
            s["name"] = f"{s.get('name') or 'drill'} #{i + 1}"
            s["rto_seconds"] = (s.get("rto_seconds") or 1.0) * rng.uniform(0.7, 1.4)
            s["rpo_seconds"] = (s.get("rpo_seconds") or 1.0) * rng.uniform(0.7, 1.4)
            results["scenarios"].append(s)
        run_dir = reports / results["run_id"]
        run_dir.mkdir(parents=True)
        newest = run_dir / "results.json"
        newest.write_text(json.dumps(seal(results), indent=2), encoding="utf-8")
        record_run(reports, newest)
    return newest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", type=int, default=200)
    parser.add_argument("--history", type=int, default=12, help="runs in the history, this one included")
    parser.add_argument("--from", dest="source", type=Path, default=None, help="a real results.json to copy")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    template = json.loads(args.source.read_text()) if args.source else {"run_id": "", "started_at": "",
                                                                         "drill_version": "bench", "host": "bench",
                                                                         "operator": "bench", "config_digest": ""}
    with tempfile.TemporaryDirectory(prefix="drill-report-bench-") as tmp:
        results = build(Path(tmp), template, args.scenarios, args.history)
        started = time.perf_counter()
        loaded = load(results)
        figures: dict[str, Any] = {"scenarios": args.scenarios, "history_runs": args.history,
                                   "load_seconds": time.perf_counter() - started, "formats": {}}
        for fmt in FORMATS:
            t0 = time.perf_counter()
            text = render(loaded, fmt)
            figures["formats"][fmt] = {"seconds": time.perf_counter() - t0, "bytes": len(text.encode())}
        figures["total_seconds"] = time.perf_counter() - started
    print(f"report of {args.scenarios} scenarios with {args.history} runs of history "
          f"({'from ' + str(args.source) if args.source else 'synthetic'}):")
    print(f"  load + verify  {figures['load_seconds']:7.3f}s")
    for fmt, f in figures["formats"].items():
        print(f"  {fmt:<13}  {f['seconds']:7.3f}s  {f['bytes'] / 1e6:6.2f} MB")
    print(f"  total          {figures['total_seconds']:7.3f}s")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

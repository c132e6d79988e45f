"""How long `drill status` (text, Prometheus metrics) and `drill report pack` take on a large reports directory.

    .venv/bin/python bench/status_bench.py [--scenarios 200] [--history 40] [--pdf] [--out FILE]

Builds N scenarios x H runs with bench/report_bench.py's synthetic scenarios (every scenario tagged with a
control), as `drill run` would write them, then times `gather` (reading the history and every results.json,
verifying the chain), the text and Prometheus renderings, and an evidence pack of the newest run (with the
PDF printed by headless Chromium when --pdf is given).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from report_bench import build, synthetic_scenario

from drill.config import default_config
from drill.metrics import exposition
from drill.report.pack import write_pack
from drill.status import gather, render_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", type=int, default=200)
    parser.add_argument("--history", type=int, default=40)
    parser.add_argument("--pdf", action="store_true", help="print the pack's PDF too (needs Chromium)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    scenario = synthetic_scenario()
    scenario["tags"] = [*scenario["tags"], "control:SOC2-CC7.5"]
    template = {"run_id": "", "started_at": "", "drill_version": "bench", "host": "bench", "operator": "bench",
                "config_digest": "", "controls": {"SOC2-CC7.5": {"title": "bench", "every_seconds": 90 * 86400}},
                "scenarios": [scenario]}
    figures: dict[str, Any] = {"scenarios": args.scenarios, "history_runs": args.history}
    with tempfile.TemporaryDirectory(prefix="drill-status-bench-") as tmp:
        newest = build(Path(tmp), template, args.scenarios, args.history)
        reports = newest.parent.parent
        t0 = time.perf_counter()
        status = gather(reports, None)
        figures["gather_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        text = render_text(status)
        figures["text_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        metrics = exposition(status)
        figures["prometheus_seconds"] = time.perf_counter() - t0
        figures["prometheus_bytes"] = len(metrics.encode())
        t0 = time.perf_counter()
        _, members = write_pack(newest, Path(tmp) / "evidence.zip", default_config(Path(tmp)), pdf=args.pdf)
        figures["pack_seconds"] = time.perf_counter() - t0
        figures["pack_bytes"] = (Path(tmp) / "evidence.zip").stat().st_size
        assert text and members
    print(f"drill status and pack over {args.scenarios} scenarios x {args.history} runs:")
    for key in ("gather_seconds", "text_seconds", "prometheus_seconds", "pack_seconds"):
        print(f"  {key.removesuffix('_seconds'):<11} {figures[key]:7.3f}s")
    print(f"  metrics {figures['prometheus_bytes'] / 1e3:.0f} kB, pack {figures['pack_bytes'] / 1e6:.2f} MB"
          f"{' (with PDF)' if args.pdf else ' (no PDF)'}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

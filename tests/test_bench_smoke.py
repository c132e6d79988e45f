"""A tiny run of the benchmark suite, so that it cannot rot (the full run is ./dev bench)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_bench_smoke


def test_benchmark_smoke_run_measures_every_figure(tmp_path: Path) -> None:
    report, stdout = run_bench_smoke("run.py", tmp_path / "bench.json", timeout=300)
    overhead = report["overhead"]
    assert overhead["drill_seconds"] > 0 and overhead["native_fc_restore_j_seconds"] > 0
    assert overhead["ratio_vs_fc_j"] == overhead["drill_seconds"] / overhead["native_fc_restore_j_seconds"]
    assert report["verification"]["postgres"]["ratio"] > 0
    assert report["provisioning"]["postgres_seconds"] > 0
    assert [p["size_mb"] for p in report["scaling"]] == [1.0, 2.0]
    assert all(p["peak_rss_mb"] > 10 for p in report["scaling"])
    assert set(report["verdicts"]) == {"overhead_vs_fc_j", "fingerprint_vs_copy", "peak_rss_mb"}
    assert "PostgreSQL drill" in stdout and "ratio" in stdout


def test_store_benchmark_smoke_run_measures_every_store(tmp_path: Path) -> None:
    report, stdout = run_bench_smoke("store_bench.py", tmp_path / "stores.json", timeout=300)
    assert set(report["stores"]) == {"redis", "mongodb"}
    for kind, found in report["stores"].items():
        assert [p["items"] for p in found["points"]] == [200, 1000], kind
        assert all(p["peak_rss_mb"] > 10 and p["fingerprint_seconds"] > 0 for p in found["points"]), kind
        assert found["native_seconds"] > 0 and found["provisioning_seconds"] > 0, kind
        assert found["ratio"] == found["native_seconds"] / found["points"][-1]["fingerprint_seconds"]
        assert f"{kind}: fingerprint rate" in stdout
    assert set(report["provisioning"]) == {"redis", "mongodb", "gcs", "firestore"}
    assert all(seconds > 0 for seconds in report["provisioning"].values())
    assert "firestore: local server ready" in stdout and "gcs: local server ready" in stdout

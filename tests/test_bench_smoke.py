"""A tiny run of the benchmark suite, so that it cannot rot (the full run is ./dev bench)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import run_bench_smoke


def assert_interleaved(found: dict[str, Any]) -> None:
    """bench/method.py's shape: every round's samples kept, the median ratio within its range."""
    assert found["rounds"] and all(r["drill"]["seconds"] > 0 and r["baseline"]["seconds"] > 0
                                   for r in found["rounds"])
    ratio = found["ratio"]
    assert ratio["min"] <= ratio["median"] <= ratio["max"]
    assert ratio["median"] in [r["ratio"] for r in found["rounds"]] or len(found["rounds"]) % 2 == 0


def test_benchmark_smoke_run_measures_every_figure(tmp_path: Path) -> None:
    report, stdout = run_bench_smoke("run.py", tmp_path / "bench.json", timeout=300)
    overhead = report["overhead"]["vs_fc_j"]
    for found in (overhead, report["overhead"]["vs_gzip_psql"], report["verification"]["postgres"]):
        assert_interleaved(found)
    (only,) = overhead["rounds"]
    assert only["ratio"] == only["drill"]["seconds"] / only["baseline"]["seconds"]
    fingerprint = report["verification"]["postgres"]["rounds"][0]  # a rate: the baseline's time over drill's
    assert fingerprint["ratio"] == fingerprint["baseline"]["seconds"] / fingerprint["drill"]["seconds"]
    assert report["provisioning"]["postgres"]["seconds"]["median"] > 0
    assert [p["size_mb"] for p in report["scaling"]] == [1.0, 2.0]
    assert all(p["peak_rss_mb"] > 10 for p in report["scaling"])
    assert report["machine"]["cpus"] and len(report["load_average_at_end"]) == 3
    assert set(report["verdicts"]) == {"overhead_vs_fc_j", "fingerprint_vs_copy", "peak_rss_mb"}
    assert "PostgreSQL drill" in stdout and "ratio" in stdout


def test_store_benchmark_smoke_run_measures_every_store(tmp_path: Path) -> None:
    report, stdout = run_bench_smoke("store_bench.py", tmp_path / "stores.json", timeout=300)
    assert set(report["stores"]) == {"redis", "mongodb"}
    for kind, found in report["stores"].items():
        assert [p["items"] for p in found["points"]] == [200, 1000], kind
        assert all(p["peak_rss_mb"] > 10 and p["fingerprint_seconds"]["median"] > 0 for p in found["points"]), kind
        assert all(s["total"] == p["items"] for p in found["points"] for s in p["samples"]), kind
        assert_interleaved(found["vs_native"])
    redis_round = report["stores"]["redis"]["vs_native"]["rounds"][0]  # a time ratio against DEBUG DIGEST
    assert report["stores"]["redis"]["vs_native"]["baseline"] == "DEBUG DIGEST"
    assert redis_round["ratio"] == redis_round["drill"]["seconds"] / redis_round["baseline"]["seconds"]
    cpu = redis_round["drill"]["server_cpu_seconds"] / max(redis_round["baseline"]["server_cpu_seconds"], 1e-6)
    assert report["stores"]["redis"]["vs_native"]["server_cpu_ratio"]["median"] == cpu  # one round
    assert "redis: fingerprint server CPU vs DEBUG DIGEST" in stdout
    assert_interleaved(report["stores"]["redis"]["informative"])
    mongo_round = report["stores"]["mongodb"]["vs_native"]["rounds"][0]  # a rate against a drained find()
    assert mongo_round["ratio"] == mongo_round["baseline"]["seconds"] / mongo_round["drill"]["seconds"]
    assert "redis: fingerprint time" in stdout and "mongodb: fingerprint rate" in stdout
    assert set(report["provisioning"]) == {"redis", "mongodb", "gcs", "firestore"}
    assert all(found["seconds"]["median"] > 0 for found in report["provisioning"].values())
    assert set(report["verdicts"]) == {"redis", "mongodb"}
    assert "firestore: local server ready" in stdout and "gcs: local server ready" in stdout


def test_many_scenarios_benchmark_smoke_run_measures_the_overhead_per_scenario(tmp_path: Path) -> None:
    report, stdout = run_bench_smoke("many_scenarios_bench.py", tmp_path / "many.json", timeout=300)
    (size,) = report["sizes"]
    (only,) = size["rounds"]
    native = only["native"]
    for mode in ("per-scenario", "shared"):  # before and after shared servers, in one run
        drill = only[mode]
        assert size["scenarios"] == 3 and drill["scenarios"] == drill["passed"] == 3, drill
        assert drill["left_behind"] == [] and drill["leftover_server_processes"] == [], drill
        assert size[mode]["overhead_per_scenario"]["median"] == (drill["seconds"] - native["seconds"]) / 3
        assert drill["peak_rss_mb"] > 10 and size[mode]["all_passed"] and size[mode]["nothing_left_behind"]
        assert f"drill ({mode})" in stdout
    assert "native script" in stdout


def test_restore_headroom_smoke_run_accounts_for_every_core_second(tmp_path: Path) -> None:
    report, stdout = run_bench_smoke("restore_headroom.py", tmp_path / "headroom.json", timeout=300)
    (sample,) = report["headroom"]["samples"]
    cores = report["machine"]["cpus"]
    # /proc/stat counts every core's every tick as busy or idle: together they cover the wall time (10 ms ticks).
    counted = sample["restore_busy_core_seconds"] + sample["restore_idle_core_seconds"]
    assert abs(counted - cores * sample["restore_seconds"]) <= 0.5 * cores * sample["restore_seconds"] + 0.05, sample
    assert sample["restore_busy_core_seconds"] > 0 and sample["fingerprint_busy_core_seconds"] > 0
    assert 0 <= sample["best_case_saving_seconds"] <= sample["fingerprint_seconds"]
    assert sample["restored_rows"] == report["seeded_rows"] == 10400  # the seed's own count: all came back
    assert "idle core-seconds (the room to overlap)" in stdout and "best case saving" in stdout

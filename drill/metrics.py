"""`drill status --format prometheus`: the status as Prometheus metrics (text format), and a Pushgateway push.

Written with prometheus_client (`pip install 'dr-drill[metrics]'`), in the text format node_exporter's
textfile collector reads. Timestamps are exported next to ages: between two writes of the file an
age goes stale, while `time() - drill_..._timestamp_seconds` in a rule stays right.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from drill.errors import DrillError
from drill.status import SuiteStatus

PUSH_JOB = "drill"


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise DrillError("Prometheus metrics need prometheus_client: pip install 'dr-drill[metrics]'") from None
    return prometheus_client


class _StatusCollector:
    """Turns one SuiteStatus into metric families each time the registry is collected."""

    def __init__(self, status: SuiteStatus) -> None:
        self.status = status

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        status = self.status

        def gauge(name: str, doc: str, labels: list[str]) -> Any:
            return GaugeMetricFamily(name, doc, labels=labels)

        last_success = gauge("drill_last_success_timestamp_seconds",
                             "When the drill last passed (Unix time of the scenario's end)", ["store", "scenario"])
        last_passed = gauge("drill_last_run_passed", "1 when the drill's latest run passed, else 0",
                            ["store", "scenario"])
        rto = gauge("drill_rto_seconds", "Recovery time measured by the drill's latest run that measured it",
                    ["store", "scenario"])
        rpo = gauge("drill_rpo_seconds", "Data loss measured by the drill's latest run that measured it",
                    ["store", "scenario"])
        rto_target = gauge("drill_rto_target_seconds", "The drill's tightest recovery time target",
                           ["store", "scenario"])
        rpo_target = gauge("drill_rpo_target_seconds", "The drill's tightest data loss target", ["store", "scenario"])
        for scenario in status.scenarios:
            for store in scenario.stores or [""]:
                labels = [store, scenario.name]
                if scenario.last_success is not None:
                    last_success.add_metric(labels, scenario.last_success.at.timestamp())
                last_passed.add_metric(labels, 1.0 if scenario.last.status == "passed" else 0.0)
                if scenario.latest_rto is not None and scenario.latest_rto.rto is not None:
                    rto.add_metric(labels, scenario.latest_rto.rto)
                if scenario.latest_rpo is not None and scenario.latest_rpo.rpo is not None:
                    rpo.add_metric(labels, scenario.latest_rpo.rpo)
                if scenario.last.rto_target is not None:
                    rto_target.add_metric(labels, scenario.last.rto_target)
                if scenario.last.rpo_target is not None:
                    rpo_target.add_metric(labels, scenario.last.rpo_target)
        yield from (last_success, last_passed, rto, rpo, rto_target, rpo_target)

        age = gauge("drill_backup_age_seconds",
                    "Age of the last verified backup's data (status time minus its consistent point)", ["store"])
        consistent = gauge("drill_backup_consistent_timestamp_seconds",
                           "The consistent point of the last verified backup (Unix time)", ["store"])
        for store_state in status.stores:
            backup = store_state.last_verified_backup
            if backup is not None:
                age.add_metric([store_state.name], backup.age_seconds)
                consistent.add_metric([store_state.name], backup.consistent_at.timestamp())
        yield from (age, consistent)

        overdue = gauge("drill_control_overdue", "1 when the control has no passing drill within its frequency",
                        ["control"])
        control_success = gauge("drill_control_last_success_timestamp_seconds",
                                "When a drill evidencing the control last passed (Unix time of its run's start)",
                                ["control"])
        for control in status.controls:
            overdue.add_metric([control.id], 1.0 if control.overdue else 0.0)
            if control.last_success_at is not None:
                control_success.add_metric([control.id], control.last_success_at.timestamp())
        yield from (overdue, control_success)

        intact = GaugeMetricFamily("drill_results_intact",
                                   "1 when every results.json and the history chain pass `drill report --verify`",
                                   value=0.0 if status.integrity_problems else 1.0)
        yield intact


def registry(status: SuiteStatus) -> Any:
    client = _client()
    reg = client.CollectorRegistry(auto_describe=False)
    reg.register(_StatusCollector(status))
    return reg


def exposition(status: SuiteStatus) -> str:
    """The metrics in the Prometheus text format (what node_exporter's textfile collector reads)."""
    return str(_client().generate_latest(registry(status)).decode("utf-8"))


def push(status: SuiteStatus, url: str, job: str = PUSH_JOB) -> None:
    """PUT the metrics to a Pushgateway (replacing this job's previous group)."""
    client = _client()
    try:
        client.push_to_gateway(url, job=job, registry=registry(status), timeout=30)
    except (OSError, ValueError) as exc:
        from drill.redact import redact_text

        raise DrillError(f"the push to the Pushgateway at {redact_text(url)} failed: {redact_text(str(exc))}") from None

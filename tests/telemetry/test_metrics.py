"""Tests of `_metrics`: the request counters and the gauges fed by run events."""

from __future__ import annotations

import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint, Sum

from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.events import Progress
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.results.model import Stage
from nimbus_scenarios.telemetry._metrics import RunMetrics
from tests.support.results import plan_of, results_of


def _progress(phase: str | None, target_rate: float) -> Progress:
    return Progress(
        stage=Stage.PHASES,
        phase=phase,
        elapsed_s=1.0,
        remaining_s=9.0,
        target_rate=target_rate,
        achieved_rate=3.0,
        in_flight=2,
        p95_ms=12.0,
        sent=3,
        dropped=0,
        errors_pct=0.0,
        ready=1,
        desired=2,
    )


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, object], float]]]:
    data = reader.get_metrics_data()
    found: dict[str, list[tuple[dict[str, object], float]]] = {}
    if data is None:
        return found
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    if isinstance(point, NumberDataPoint):
                        attributes = dict(point.attributes or {})
                        found.setdefault(metric.name, []).append((attributes, point.value))
    return found


def test_gauges_read_the_last_progress_and_replica_sample() -> None:
    """Progress and replica samples feed the gauges until the run ends; run_info stays."""
    plan = plan_of()
    reader = InMemoryMetricReader()
    metrics = RunMetrics(
        MeterProvider(metric_readers=[reader]).get_meter("test"), plan, run_id="given"
    )
    assert set(_points(reader)) == {"nimbus.run.info", "nimbus.run.start_time"}
    before = time.time()
    metrics.run_started(plan, "run0")
    metrics.phase_started(plan.phases[0], 0.0)
    metrics.progress(_progress("warm", 2.0))
    metrics.replica_sample(ReplicaSample(1.0, 1, 2, 1), 1.0)
    points = _points(reader)
    warm = {"scenario": "factory", "run_id": "run0", "phase": "warm"}
    assert points["nimbus.load.target_rate"] == [(warm, 2.0)]
    assert points["nimbus.load.achieved_rate"] == [(warm, 3.0)]
    assert points["nimbus.requests.in_flight"] == [(warm, 2)]
    assert points["nimbus.replicas"] == [
        ({**warm, "kind": "ready"}, 1),
        ({**warm, "kind": "desired"}, 2),
    ]
    assert points["nimbus.run.info"] == [({"scenario": "factory", "run_id": "run0"}, 1)]
    metrics.phase_ended(plan.phases[0], 10.0)
    replicas = _points(reader)["nimbus.replicas"]
    assert all("phase" not in attributes for attributes, _ in replicas)
    ((_, started),) = points["nimbus.run.start_time"]
    assert before <= started <= time.time()
    metrics.run_ended(results_of(plan))
    assert set(_points(reader)) == {"nimbus.run.info", "nimbus.run.start_time"}
    assert metrics.attributes("warm") == warm


def test_request_counters_read_the_engines_live_counts() -> None:
    """Scheduled, sent, dropped and failed per phase and template, as the engine counts them;
    monotonic cumulative sums that still report after the run ended (for the last export)."""
    plan = plan_of()
    reader = InMemoryMetricReader()
    metrics = RunMetrics(
        MeterProvider(metric_readers=[reader]).get_meter("test"), plan, run_id="run0"
    )
    assert not any(name.startswith("nimbus.requests.s") for name in _points(reader))
    stats = RunStats(0.0)
    metrics.load_started(stats)
    warm = stats.phase("warm")
    a, b = warm.request("a"), warm.request("b")
    warm.schedule(0.0, a, 3)
    warm.mark_sent(0.1, a)
    warm.mark_sent(0.2, a)
    warm.drop(0.3, a)
    warm.record(0.0, 0.1, 0.2, 500, False, a)
    warm.schedule(0.0, b)
    points = _points(reader)
    at = {"scenario": "factory", "run_id": "run0", "phase": "warm"}
    for name, counts in (
        ("nimbus.requests.scheduled", (3, 1)),
        ("nimbus.requests.sent", (2, 0)),
        ("nimbus.requests.dropped", (1, 0)),
        ("nimbus.requests.failed", (1, 0)),
    ):
        assert points[name] == [
            ({**at, "request": "a"}, counts[0]),
            ({**at, "request": "b"}, counts[1]),
        ], name
    metrics.run_ended(results_of(plan))
    assert _points(reader)["nimbus.requests.sent"][0][1] == 2
    data = reader.get_metrics_data()
    assert data is not None
    sums = [
        m.data
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "nimbus.requests.sent"
    ]
    assert all(isinstance(d, Sum) and d.is_monotonic for d in sums)

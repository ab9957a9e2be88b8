"""Tests of `_metrics`: the duration histogram and the gauges fed by run events."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)

from nimbus_scenarios.events import Progress
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.results.model import Stage
from nimbus_scenarios.telemetry._metrics import DURATION_BUCKETS_S, DurationHistogram, RunMetrics
from tests.support.results import plan_of, results_of


def test_durations_fall_in_upper_inclusive_buckets_per_phase() -> None:
    """A duration on a boundary counts in that bucket; each phase is its own series."""
    histogram = DurationHistogram((0.1, 1.0), lambda phase: {"phase": phase})
    assert histogram.metric() is None
    for seconds in (0.05, 0.1, 0.5, 2.0):
        histogram.record("warm", seconds)
    histogram.record("ramp", 0.2)
    metric = histogram.metric()
    assert metric is not None
    assert metric.name == "nimbus_request_duration_seconds"
    assert metric.unit == "s"
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    points: list[HistogramDataPoint] = list(metric.data.data_points)
    warm, ramp = points
    assert warm.attributes == {"phase": "warm"}
    assert warm.bucket_counts == (2, 1, 1)
    assert (warm.count, warm.min, warm.max) == (4, 0.05, 2.0)
    assert warm.sum == pytest.approx(2.65)
    assert warm.explicit_bounds == (0.1, 1.0)
    assert (ramp.attributes, ramp.bucket_counts) == ({"phase": "ramp"}, (0, 1, 0))
    assert DURATION_BUCKETS_S[0] == 0.005
    assert DURATION_BUCKETS_S[-1] == 60.0


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
    assert set(_points(reader)) == {"nimbus_run_info"}
    metrics.run_started(plan, "run0")
    metrics.phase_started(plan.phases[0], 0.0)
    metrics.progress(_progress("warm", 2.0))
    metrics.replica_sample(ReplicaSample(1.0, 1, 2, 1), 1.0)
    points = _points(reader)
    warm = {"scenario": "factory", "run_id": "run0", "phase": "warm"}
    assert points["nimbus_target_rate"] == [(warm, 2.0)]
    assert points["nimbus_achieved_rate"] == [(warm, 3.0)]
    assert points["nimbus_in_flight"] == [(warm, 2)]
    assert points["nimbus_replicas"] == [
        ({**warm, "kind": "ready"}, 1),
        ({**warm, "kind": "desired"}, 2),
    ]
    assert points["nimbus_run_info"] == [({"scenario": "factory", "run_id": "run0"}, 1)]
    metrics.phase_ended(plan.phases[0], 10.0)
    replicas = _points(reader)["nimbus_replicas"]
    assert all("phase" not in attributes for attributes, _ in replicas)
    metrics.run_ended(results_of(plan))
    assert set(_points(reader)) == {"nimbus_run_info"}
    assert metrics.attributes("warm") == warm

"""Tests of the replicas' counter series and Prometheus's `rate()` (local.series)."""

from __future__ import annotations

import pytest

from nimbus_scenarios.local.series import (
    CounterName,
    MetricSample,
    Point,
    ReplicaSeries,
    prometheus_rate,
)


def test_prometheus_rate_extrapolates_like_prometheus() -> None:
    """Full windows give the slope; a young counter is not extrapolated before zero; resets add."""
    steady = [Point(t, 100.0 + 2.0 * t) for t in range(0, 61, 15)]
    assert prometheus_rate(steady, 60.0, 60.0) == pytest.approx(2.0)
    assert prometheus_rate(steady[:1], 60.0, 60.0) is None
    young = [Point(50.0, 0.0), Point(55.0, 10.0), Point(60.0, 20.0)]
    # 20 counted over 10 s, no extrapolation before the zero point: 20 / 60.
    assert prometheus_rate(young, 60.0, 60.0) == pytest.approx(20.0 / 60.0)
    reset = [Point(0.0, 50.0), Point(5.0, 60.0), Point(10.0, 4.0)]
    # Increase 10, then 4 more after the reset: 14 in 10 s, extrapolated 2 s to the 12 s window.
    assert prometheus_rate(reset, 10.0, 12.0) == pytest.approx(14.0 * 12.0 / 10.0 / 12.0)
    # The range is left-open: a sample exactly at now - window is outside it.
    assert prometheus_rate(reset, 10.0, 10.0) == pytest.approx(4.0 * 10.0 / 5.0 / 10.0)


def test_rate_sum_adds_every_replicas_rate() -> None:
    """Two replicas growing 1/s and 3/s sum to 4/s; a counter nobody grows sums to 0."""
    series = ReplicaSeries()
    for at in (0.0, 5.0, 10.0):
        series.observe(MetricSample("a", at, requests=100.0 + at))
        series.observe(MetricSample("b", at, requests=100.0 + 3.0 * at, gc_collections=7.0))
    assert series.rate_sum(10.0, 10.0, CounterName.REQUESTS) == pytest.approx(4.0)
    assert series.rate_sum(10.0, 10.0, CounterName.GC_COLLECTIONS) == 0.0


def test_rate_sum_is_none_without_two_points() -> None:
    """With one scrape per replica there is no rate: the query's result is empty."""
    series = ReplicaSeries()
    series.observe(MetricSample("a", 0.0, requests=5.0))
    assert series.rate_sum(0.0, 60.0, CounterName.REQUESTS) is None


def test_a_scrape_not_later_than_the_last_is_dropped() -> None:
    """Times must go forward per replica: a repeated or older scrape does not change the rate."""
    series = ReplicaSeries()
    series.observe(MetricSample("a", 0.0, requests=1000.0))
    series.observe(MetricSample("a", 10.0, requests=1010.0))
    series.observe(MetricSample("a", 10.0, requests=5000.0))
    series.observe(MetricSample("a", 5.0, requests=5000.0))
    assert series.rate_sum(10.0, 20.0, CounterName.REQUESTS) == pytest.approx(1.0)


def test_prune_forgets_old_points_and_empty_replicas() -> None:
    """After pruning, only the points after the cut count, and a replica left empty is gone."""
    series = ReplicaSeries()
    for at in (0.0, 5.0):
        series.observe(MetricSample("gone", at, requests=10.0 * at))
    for at in (0.0, 5.0, 10.0, 15.0):
        series.observe(MetricSample("stays", at, requests=at * at))
    series.prune(5.0)
    kept = [Point(10.0, 100.0), Point(15.0, 225.0)]
    assert series.rate_sum(15.0, 100.0, CounterName.REQUESTS) == pytest.approx(
        prometheus_rate(kept, 15.0, 100.0)
    )


def test_sample_counter_reads_each_field() -> None:
    """`MetricSample.counter` maps each counter name to its own field."""
    sample = MetricSample(
        "r", 0.0, requests=1.0, latency_sum=2.0, latency_count=3.0, gc_collections=4.0
    )
    assert [sample.counter(name) for name in CounterName] == [1.0, 2.0, 3.0, 4.0]

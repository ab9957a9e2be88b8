"""Tests of the KEDA/HPA decisions (nimbus_scenarios.local.autoscaler), with made-up samples
(`autoscaler_support.Feed`)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nimbus_scenarios.local.autoscaler import (
    GC_TRIGGER,
    HTTP_RATE_TRIGGER,
    LATENCY_TRIGGER,
    Autoscaler,
    AutoscalerConfig,
    MetricSample,
)
from tests.local.autoscaler_support import BASE, Feed


def test_total_rate_of_12_per_second_needs_three_replicas() -> None:
    """12 req/s summed over two replicas gives ceil(12 / 5) = 3 desired replicas."""
    scaler = Autoscaler(BASE)
    feed = Feed(scaler, replicas=2)
    feed.step(rate=12.0, steps=2)
    decision = scaler.decide(feed.now, current=1)
    reading = decision.reading(HTTP_RATE_TRIGGER)
    assert reading is not None
    assert reading.value == pytest.approx(12.0)
    assert decision.desired == 3
    assert decision.trigger == HTTP_RATE_TRIGGER


def test_rate_of_5_per_second_stays_at_one_replica() -> None:
    """Exactly the 5 req/s target on one replica is a usage ratio of 1: no change."""
    feed = Feed(Autoscaler(BASE))
    feed.step(rate=5.0, steps=2)
    assert feed.decide(current=1) == 1


def test_tolerance_band_holds_the_current_count() -> None:
    """Usage ratios within 10% of 1 keep the current count; beyond it the ceiling applies."""
    cases = [
        (1, 5.4, 1),  # ratio 1.08: held although ceil(5.4 / 5) = 2
        (1, 5.6, 2),  # ratio 1.12
        (2, 10.8, 2),  # ratio 1.08: held although ceil = 3
        (2, 11.5, 3),  # ratio 1.15
        (3, 13.6, 3),  # ratio 0.907: held although ceil = 3 anyway
        (4, 18.2, 4),  # ratio 0.91: held although ceil = 4
        (4, 17.5, 4),  # ratio 0.875: the proposal is ceil(3.5) = 4
        (4, 14.0, 3),  # ratio 0.7: ceil(2.8) = 3 (no stabilization window in this config)
    ]
    for current, rate, expected in cases:
        scaler = Autoscaler(replace(BASE, scale_down_stabilization_s=0.0))
        feed = Feed(scaler)
        feed.step(rate=rate, steps=2)
        assert feed.decide(current) == expected, (current, rate)


def test_latency_trigger_proposes_mean_latency_over_target() -> None:
    """A 5 s mean request latency against the 2 s target proposes ceil(5 / 2) = 3 replicas."""
    scaler = Autoscaler(BASE)
    feed = Feed(scaler, replicas=2)
    feed.step(rate=1.0, latency_s=5.0, steps=2)
    decision = scaler.decide(feed.now, current=1)
    reading = decision.reading(LATENCY_TRIGGER)
    assert reading is not None
    assert reading.value == pytest.approx(5.0)
    assert reading.proposal == 3
    assert decision.trigger == LATENCY_TRIGGER
    assert decision.desired == 3


def test_desired_is_the_largest_proposal_over_triggers() -> None:
    """HTTP rate proposes 2, latency 3 and GC 4: the decision is 4, driven by the GC trigger."""
    scaler = Autoscaler(BASE)
    feed = Feed(scaler)
    feed.step(rate=8.0, latency_s=6.0, gc_rate=1.8, steps=2)
    decision = scaler.decide(feed.now, current=1)
    proposals = {r.trigger: r.proposal for r in decision.readings}
    assert proposals == {HTTP_RATE_TRIGGER: 2, LATENCY_TRIGGER: 3, GC_TRIGGER: 4}
    assert decision.desired == 4
    assert decision.trigger == GC_TRIGGER
    assert "gc" in decision.describe()


def test_recommendation_is_clamped_to_min_and_max() -> None:
    """A huge rate stops at max_replicas; no load at all stops at min_replicas."""
    config = replace(BASE, min_replicas=2, max_replicas=10, scale_down_stabilization_s=0.0)
    feed = Feed(Autoscaler(config))
    feed.step(rate=1000.0, steps=2)
    assert feed.decide(current=2) == 10
    feed.step(rate=0.0, steps=2)
    assert feed.decide(current=10) == 2


def test_no_data_counts_as_zero() -> None:
    """With fewer than two samples the queries are empty, read as 0 (ignoreNullValues): min."""
    scaler = Autoscaler(replace(BASE, scale_down_stabilization_s=0.0))
    decision = scaler.decide(0.0, current=3)
    assert decision.desired == 1
    assert all(not r.has_data for r in decision.readings)


def test_scale_up_is_immediate() -> None:
    """After a long quiet spell, the first poll that sees 20 req/s scales straight to 4."""
    feed = Feed(Autoscaler(BASE))
    feed.step(rate=1.0, steps=20)
    assert feed.decide(current=1) == 1
    feed.step(rate=20.0)
    assert feed.decide(current=1) == 4


def test_scale_down_waits_for_the_stabilization_window_and_takes_its_highest_recommendation() -> (
    None
):
    """Recommendations 4, 3, 2, then 1: each step down waits 60 s after the higher one."""
    config = replace(BASE, scale_down_stabilization_s=60.0)
    feed = Feed(Autoscaler(config))
    current = 1
    timeline: list[tuple[float, int]] = []
    # Per 5 s step: 20 req/s (-> 4) once, then 15 (-> 3) at 5 s, 10 (-> 2) at 10 s, then idle.
    for rate in [20.0, 15.0, 10.0] + [0.0] * 16:
        feed.step(rate=rate)
        current = feed.decide(current)
        timeline.append((feed.now, current))
    desired_at = dict(timeline)
    assert desired_at[5.0] == 4  # up at once
    assert desired_at[60.0] == 4  # the 4 (at 5 s) is still inside the 60 s window
    assert desired_at[65.0] == 3  # only recommendations after now - 60 count: the 3 (at 10 s)
    assert desired_at[70.0] == 2
    assert desired_at[75.0] == 1
    assert desired_at[95.0] == 1


def test_scale_down_is_held_while_recommendations_fluctuate() -> None:
    """A brief dip does not scale down: the peak within the window still stands."""
    config = replace(BASE, scale_down_stabilization_s=30.0)
    feed = Feed(Autoscaler(config))
    feed.step(rate=15.0, steps=2)
    assert feed.decide(current=1) == 3
    feed.step(rate=0.0)
    decision = feed.scaler.decide(feed.now, current=3)
    assert decision.desired == 3
    assert decision.recommendation == 1
    assert "stabilization" in decision.reason


def test_default_scale_up_policy_limits_each_period() -> None:
    """HPA defaults: at most max(+4 pods, +100%) per 15 s policy period."""
    scaler = Autoscaler(replace(AutoscalerConfig(), metric_window_s=10.0))
    feed = Feed(scaler)
    feed.step(rate=1000.0, steps=2)
    assert feed.decide(current=1) == 5  # 1 + 4 pods beats 1 * 2
    feed.step(rate=1000.0)
    assert feed.decide(current=5) == 5  # same period: the 4 added count against it
    feed.step(rate=1000.0, steps=2)
    assert feed.decide(current=5) == 10  # new period: 5 * 2 beats 5 + 4


def test_a_replica_that_is_gone_counts_until_it_ages_out() -> None:
    """As in Prometheus, a removed pod's series still adds to the rate until outside the window."""
    scaler = Autoscaler(replace(BASE, metric_window_s=20.0))
    for at in (0.0, 5.0, 10.0):
        scaler.observe(MetricSample("gone", at, requests=1000.0 + 10.0 * at))
        scaler.observe(MetricSample("stays", at, requests=1000.0))
    for at in (15.0, 20.0, 25.0, 30.0, 35.0):
        scaler.observe(MetricSample("stays", at, requests=1000.0))
    values_at_20 = scaler.metric_values(20.0)[HTTP_RATE_TRIGGER]
    assert values_at_20 is not None
    assert values_at_20 > 0
    assert scaler.metric_values(35.0)[HTTP_RATE_TRIGGER] == 0.0


@settings(max_examples=60, deadline=None)
@given(
    rates=st.lists(st.floats(min_value=0, max_value=500), min_size=1, max_size=30),
    bounds=st.tuples(st.integers(1, 5), st.integers(0, 20)),
)
def test_desired_always_within_bounds_and_never_below_the_window_peak(
    rates: list[float], bounds: tuple[int, int]
) -> None:
    """For any load, desired stays in [min, max] and never drops below the window's peak."""
    low, extra = bounds
    config = replace(BASE, min_replicas=low, max_replicas=low + extra)
    scaler = Autoscaler(config)
    feed = Feed(scaler)
    current = low
    for rate in rates:
        feed.step(rate=rate)
        decision = scaler.decide(feed.now, current)
        assert low <= decision.desired <= low + extra
        if decision.desired < current:
            peak = max(r for at, r in scaler.recommendations() if at > feed.now - 300.0)
            assert decision.desired >= peak
        current = decision.desired

"""Tests for `LatencyHistogram`: hdrhistogram's buckets and encoding, clamping, summaries in
milliseconds, re-bucketing across layouts."""

from __future__ import annotations

import random

import pytest
from hdrh.histogram import HdrHistogram

from nimbus_scenarios.engine.histogram import HIGHEST_TRACKABLE_US, LatencyHistogram
from nimbus_scenarios.engine.records import LatencySummary


def tolerance(value: float, digits: int = 3) -> float:
    """The HDR quantization bound for ``value`` at ``digits`` significant digits (+1 us)."""
    return value * 10.0**-digits + 1


def test_histogram_equals_hdrhistogram() -> None:
    """LatencyHistogram has hdrhistogram's buckets, percentiles, max, mean and encoding."""
    rng = random.Random(7)
    values = [int(rng.lognormvariate(8, 2.5)) for _ in range(20_000)] + [0, 1, 2047, 2048]
    for digits in (2, 3):
        ours = LatencyHistogram(digits)
        theirs = HdrHistogram(1, HIGHEST_TRACKABLE_US, digits)
        for value in values:
            ours.record(min(value, HIGHEST_TRACKABLE_US))
            theirs.record_value(min(value, HIGHEST_TRACKABLE_US))
        for percentile in (0.0, 1.0, 50.0, 90.0, 99.0, 99.99, 100.0):
            assert ours.value_at_percentile(percentile) == theirs.get_value_at_percentile(
                percentile
            )
        assert ours.max_value() == theirs.get_max_value()
        assert ours.mean_value() == pytest.approx(theirs.get_mean_value())
        assert ours.encode() == theirs.encode().decode()
        decoded = LatencyHistogram.decode(theirs.encode())
        assert decoded.encode() == ours.encode()


def test_out_of_range_values_are_clamped() -> None:
    """Negative latencies count as 0 and latencies over an hour as an hour."""
    histogram = LatencyHistogram()
    histogram.record(-5)
    histogram.record(10 * HIGHEST_TRACKABLE_US)
    assert histogram.total_count == 2
    assert histogram.value_at_percentile(0) == 0
    assert histogram.max_value() >= HIGHEST_TRACKABLE_US


def test_summary_is_in_milliseconds_within_hdr_precision() -> None:
    """1..10,000 ms recorded once each give p50/p90/p95/p99/max/mean to 3 digits, in ms."""
    histogram = LatencyHistogram()
    for value_ms in range(1, 10_001):
        histogram.record(value_ms * 1000)
    summary = histogram.summary()
    assert isinstance(summary, LatencySummary)
    for got, exact in (
        (summary.p50, 5000),
        (summary.p90, 9000),
        (summary.p95, 9500),
        (summary.p99, 9900),
        (summary.max, 10_000),
    ):
        assert got == pytest.approx(exact, abs=tolerance(exact * 1000) / 1000)
    assert summary.mean == pytest.approx(5000.5, rel=1e-3)
    assert summary.p99 == histogram.value_at_percentile(99) / 1000.0


def test_empty_histogram_summary_is_zero_and_seals_to_nothing() -> None:
    """An empty histogram summarises as zeros and has nothing to seal."""
    histogram = LatencyHistogram(2)
    assert histogram.summary() == LatencySummary(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert histogram.sealed((50.0,)) is None


def test_sealed_gives_count_percentiles_and_encoding_in_one_pass() -> None:
    """`sealed` agrees with `total_count`, `percentiles` and `encode`."""
    histogram = LatencyHistogram(2)
    for value in (100, 200, 300, 40_000):
        histogram.record(value)
    sealed = histogram.sealed((50.0, 100.0))
    assert sealed == (4, histogram.percentiles((50.0, 100.0)), histogram.encode())


def test_decode_and_add_rebucket_a_different_layout() -> None:
    """A 3-digit histogram decoded or added into 2 digits keeps every count, to 2 digits."""
    fine = LatencyHistogram(3)
    for value in range(1000, 60_000, 7):
        fine.record(value)
    coarse = LatencyHistogram.decode(fine.encode(), 2)
    assert coarse.significant_digits == 2
    assert coarse.total_count == fine.total_count
    assert coarse.value_at_percentile(50) == pytest.approx(fine.value_at_percentile(50), rel=1e-2)
    added = LatencyHistogram(2)
    added.add(fine)
    assert added.encode() == coarse.encode()


def test_copy_and_reset_are_independent() -> None:
    """A copy keeps its counts when the original is reset."""
    histogram = LatencyHistogram()
    histogram.record(1234)
    copy = histogram.copy()
    histogram.reset()
    assert (histogram.total_count, copy.total_count) == (0, 1)

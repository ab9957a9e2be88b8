"""Tests for the per-second series: counts and latency by second, sealing that keeps memory
flat, frozen `SecondRecord`s and their thawing and merging."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from nimbus_scenarios.engine.records import SecondLatencySummary, SecondRecord
from nimbus_scenarios.engine.series import SecondSeries, merge_series

T0 = 1000.0  # an arbitrary monotonic clock origin


def complete(series: SecondSeries, at: float, latency_s: float, *, ok: bool = True) -> None:
    """Schedule, send and complete one request scheduled at run offset ``at``."""
    series.count_scheduled(T0 + at)
    series.count_sent(T0 + at)
    series.count_done(T0 + at + latency_s, int(latency_s * 1_000_000), ok)


def filled(rng: random.Random, seconds: int = 6, per_second: int = 50) -> SecondSeries:
    series = SecondSeries(T0)
    for sec in range(seconds):
        for i in range(per_second):
            complete(series, sec + i / per_second, rng.lognormvariate(-5, 1), ok=i % 7 != 0)
    return series


def test_counts_and_percentiles_by_second() -> None:
    """Each second gets its own counts and latency summary (ms); empty seconds have none."""
    series = SecondSeries(T0)
    for sec, latency_ms in ((0, 10), (1, 20), (2, 30), (5, 40)):
        for i in range(100):
            complete(series, sec + i * 0.001, latency_ms / 1000.0, ok=i % 10 != 0)
    series.count_scheduled(T0 + 6.5)
    series.count_dropped(T0 + 6.5)
    seconds = series.freeze()
    assert [s.second for s in seconds] == list(range(7))
    assert [s.succeeded for s in seconds] == [90, 90, 90, 0, 0, 90, 0]
    assert [s.failed for s in seconds] == [10, 10, 10, 0, 0, 10, 0]
    assert [s.scheduled for s in seconds] == [100, 100, 100, 0, 0, 100, 1]
    assert [s.dropped for s in seconds] == [0, 0, 0, 0, 0, 0, 1]
    for sec, latency_ms in ((0, 10), (1, 20), (2, 30), (5, 40)):
        latency = seconds[sec].latency_ms
        assert isinstance(latency, SecondLatencySummary)
        assert latency.count == 100
        for value in (latency.p50, latency.p95, latency.p99, latency.max):
            assert value == pytest.approx(latency_ms, rel=1e-2)
        assert seconds[sec].histogram
    assert seconds[3].latency_ms is None
    assert seconds[4].histogram is None


def test_sealing_keeps_live_histograms_bounded_over_an_hour() -> None:
    """Over 3,600 seconds only two per-second histograms stay live and memory stays small."""
    series = SecondSeries(T0)
    rng = random.Random(1)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for sec in range(3600):
            for i in range(20):
                complete(series, sec + i * 0.05, rng.lognormvariate(-6.5, 0.6))
            assert series.live_histograms == 2
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert series.sealed_seconds == 3598
    assert used < 4_000_000, used  # about 1.8 MB, of which ~1.2 MB for the sealed seconds
    recent = series.recent_latency()
    assert recent is not None
    assert recent[0] == 3597
    assert recent[1].count == 20


def test_late_completion_goes_to_the_oldest_live_second() -> None:
    """A completion for an already sealed second still counts; its latency joins a live second."""
    series = SecondSeries(T0)
    complete(series, 0.5, 0.01)
    complete(series, 5.5, 0.01)
    complete(series, 0.2, 0.1)  # completes in second 0, long sealed
    assert series.late_latencies == 1
    assert series.succeeded[0] == 2
    latency = series.latency(4)
    assert latency is not None
    assert latency.count == 1


def test_freeze_and_thaw_round_trip() -> None:
    """A thawed series freezes to the same records, with every second sealed."""
    series = filled(random.Random(2))
    records = series.freeze()
    thawed = SecondSeries.thaw(records)
    assert thawed.sealed_seconds == len(records) == 7  # the last completions fall in second 6
    assert thawed.freeze() == records


def test_merge_of_two_halves_equals_the_whole() -> None:
    """Merging two series second by second gives the counts and percentiles of the whole."""
    rng = random.Random(3)
    whole, half_a, half_b = SecondSeries(T0), SecondSeries(T0), SecondSeries(T0)
    for i in range(3000):
        at, latency, ok = i * 0.002, rng.lognormvariate(-5, 1), rng.random() > 0.05
        complete(whole, at, latency, ok=ok)
        complete(half_a if i % 2 else half_b, at, latency, ok=ok)
    merged = merge_series(SecondSeries.thaw(half_a.freeze()), half_b)
    assert merged.freeze() == whole.freeze()


def test_thaw_places_records_by_their_second() -> None:
    """A record's counts and latency land in the second it names."""
    summary = SecondLatencySummary(count=1, p50=1.5, p95=1.5, p99=1.5, max=1.5)
    source = SecondSeries(0.0)
    source.count_done(2.5, 1500, True)
    encoded = source.latency(2)
    assert encoded is not None
    record = SecondRecord(2, 3, 2, 1, 1, 0, summary, encoded.encoded)
    empty = SecondRecord(0, 0, 0, 0, 0, 0, None, None)
    thawed = SecondSeries.thaw([empty, SecondRecord(1, 0, 0, 0, 0, 0, None, None), record])
    assert (thawed.scheduled[2], thawed.sent[2], thawed.dropped[2]) == (3, 2, 1)
    latency = thawed.latency(2)
    assert latency is not None
    assert (latency.count, latency.p50_us) == (1, 1500)
    assert latency.summary() == summary

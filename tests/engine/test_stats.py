"""Tests for the engine's counters, HDR histograms, per-second series and results JSON."""

from __future__ import annotations

import json
import random
import tracemalloc

import pytest
from hdrh.histogram import HdrHistogram

from nimbus_scenarios.engine.request import ErrorKind
from nimbus_scenarios.engine.stats import (
    HIGHEST_TRACKABLE_US,
    LatencyHistogram,
    PhaseStats,
    RunStats,
    merge,
)

T0 = 1000.0  # an arbitrary monotonic clock origin


def complete(
    phase: PhaseStats, at: float, latency_s: float, *, send_delay_s: float = 0.0, ok: bool = True
) -> None:
    """Schedule, send and complete one request scheduled at run offset ``at``."""
    scheduled = T0 + at
    phase.schedule(scheduled)
    phase.mark_sent(scheduled + send_delay_s)
    phase.record(scheduled, scheduled + send_delay_s, scheduled + latency_s, 200 if ok else 503, ok)


def tolerance(value: float, digits: int = 3) -> float:
    """The HDR quantization bound for ``value`` at ``digits`` significant digits (+1 us)."""
    return value * 10.0**-digits + 1


def test_counters_and_accounting() -> None:
    """Counters follow schedule/send/drop/record and check_accounting reports broken identities."""
    run = RunStats(T0)
    phase = run.phase("steady")
    for i in range(6):
        complete(phase, i * 0.1, 0.01)
    phase.schedule(T0 + 1, n=4)
    phase.drop(T0 + 1)
    for error in (ErrorKind.timeout, ErrorKind.connect):
        phase.mark_sent(T0 + 1)
        phase.record(T0 + 1, T0 + 1, T0 + 1.5, None, False, error_kind=error)
    phase.mark_sent(T0 + 1)
    phase.record(T0 + 1, T0 + 1, T0 + 1.01, 500, False)
    assert phase.counts() == {
        "scheduled": 10,
        "sent": 9,
        "dropped": 1,
        "succeeded": 6,
        "failed": 3,
        "timed_out": 1,
    }
    assert phase.errors_by_kind == {"timeout": 1, "connect": 1}
    assert phase.status_counts == {200: 6, 500: 1}
    assert run.check_accounting() == []

    phase.schedule(T0 + 2)
    phase.mark_sent(T0 + 2)
    problems = run.check_accounting()
    assert any("sent 10 != succeeded 6 + failed 3" in p for p in problems)
    assert run.check_accounting(in_flight=1) == []


def test_percentiles_of_known_values_within_hdr_precision() -> None:
    """Recording 1..10000 ms gives exact percentiles to 3 significant digits, in ms."""
    run = RunStats(T0)
    phase = run.phase("p")
    values_ms = list(range(1, 10_001))
    for i, value in enumerate(values_ms):
        complete(phase, i * 0.0001, value / 1000.0, send_delay_s=0.0005)
    summary = phase.latency.summary_ms()
    for name, exact in (("p50", 5000), ("p90", 9000), ("p95", 9500), ("p99", 9900)):
        assert summary[name] == pytest.approx(exact, abs=tolerance(exact * 1000) / 1000)
    assert summary["max"] == pytest.approx(10_000, abs=tolerance(10_000_000) / 1000)
    assert summary["mean"] == pytest.approx(5000.5, rel=1e-3)
    service = phase.service_time.summary_ms()
    assert service["p50"] == pytest.approx(4999.5, abs=tolerance(4_999_500) / 1000)


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


def test_per_second_series_counts_and_percentiles() -> None:
    """Each second gets its own counts and latency percentiles; empty seconds have none."""
    run = RunStats(T0)
    phase = run.phase("p")
    for sec, latency_ms in ((0, 10), (1, 20), (2, 30), (5, 40)):
        for i in range(100):
            complete(phase, sec + i * 0.001, latency_ms / 1000.0, ok=i % 10 != 0)
    phase.schedule(T0 + 6.5)
    phase.drop(T0 + 6.5)
    seconds = run.series.to_json()
    assert [s["second"] for s in seconds] == list(range(7))
    assert [s["succeeded"] for s in seconds] == [90, 90, 90, 0, 0, 90, 0]
    assert [s["failed"] for s in seconds] == [10, 10, 10, 0, 0, 10, 0]
    assert [s["scheduled"] for s in seconds] == [100, 100, 100, 0, 0, 100, 1]
    assert [s["dropped"] for s in seconds] == [0, 0, 0, 0, 0, 0, 1]
    for sec, latency_ms in ((0, 10), (1, 20), (2, 30), (5, 40)):
        latency = seconds[sec]["latency_ms"]
        assert latency["count"] == 100
        for name in ("p50", "p95", "p99", "max"):
            assert latency[name] == pytest.approx(latency_ms, rel=1e-2)
    assert seconds[3]["latency_ms"] is None
    assert seconds[4]["histogram"] is None
    assert run.check_accounting() == []


def test_sealing_keeps_live_histograms_bounded_over_an_hour() -> None:
    """Over 3,600 seconds only two per-second histograms stay live and memory stays small."""
    run = RunStats(T0)
    phase = run.phase("p")
    rng = random.Random(1)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for sec in range(3600):
            for i in range(20):
                complete(phase, sec + i * 0.05, rng.lognormvariate(-6.5, 0.6))
            assert run.series.live_histograms == 2
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert run.series.sealed_seconds == 3598
    assert used < 4_000_000, used  # about 1.8 MB, of which ~1.2 MB for the sealed seconds
    snapshot = run.snapshot(T0 + 3600)
    assert snapshot.recent_second == 3597
    assert snapshot.recent_completed == 20
    assert snapshot.recent_p95_ms is not None
    assert 0.5 < snapshot.recent_p95_ms < 20
    assert snapshot.scheduled == snapshot.sent == snapshot.succeeded == 72_000


def test_late_completion_goes_to_oldest_live_second() -> None:
    """A completion for an already sealed second still counts; its latency joins a live second."""
    run = RunStats(T0)
    phase = run.phase("p")
    complete(phase, 0.5, 0.01)
    complete(phase, 5.5, 0.01)
    phase.mark_sent(T0 + 0.2)
    phase.schedule(T0 + 0.2)
    phase.record(T0 + 0.2, T0 + 0.2, T0 + 0.3, 200, True)  # second 0, long sealed
    assert run.series.late_latencies == 1
    assert run.series.succeeded[0] == 2
    assert run.check_accounting() == []


def _split_run(rng: random.Random) -> tuple[RunStats, RunStats, RunStats]:
    """One data set recorded whole and split in two halves (alternating requests)."""
    whole, half_a, half_b = RunStats(T0), RunStats(T0), RunStats(T0)
    for i in range(6000):
        at = i * 0.001
        phase_name = "ramp" if at < 2 else "steady"
        latency = rng.lognormvariate(-5, 1)
        ok = rng.random() > 0.05
        for run in (whole, half_a if i % 2 else half_b):
            complete(run.phase(phase_name), at, latency, send_delay_s=0.0002, ok=ok)
    return whole, half_a, half_b


def test_merge_of_two_halves_equals_the_whole() -> None:
    """Merging two halves gives the whole's counts, histograms, percentiles and seconds."""
    whole, half_a, half_b = _split_run(random.Random(3))
    merged = merge(half_a, half_b)
    assert list(merged.phases) == ["ramp", "steady"]
    expected, actual = whole.to_json(), merged.to_json()
    assert actual["phases"] == expected["phases"]
    assert actual["total"] == expected["total"]
    assert actual["seconds"] == expected["seconds"]
    assert merged.check_accounting() == []


def test_json_round_trip() -> None:
    """to_json survives json text and from_json unchanged, and the result still merges."""
    whole, half_a, _ = _split_run(random.Random(5))
    data = whole.to_json()
    loaded = RunStats.from_json(json.loads(json.dumps(data)))
    assert loaded.to_json() == data
    assert loaded.check_accounting() == []
    assert merge(loaded, half_a).total().scheduled == 9000
    with pytest.raises(ValueError, match="nimbus-stats/1"):
        RunStats.from_json({"format": "other"})

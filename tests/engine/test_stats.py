"""Tests for the engine's counters per phase and request template, its frozen records, thawing
them back, and merging runs."""

from __future__ import annotations

import dataclasses
import random

import pytest

from nimbus_scenarios import errors
from nimbus_scenarios.engine.records import Counts, DropKind, RequestRecord, StatsRecord
from nimbus_scenarios.engine.request import ErrorKind
from nimbus_scenarios.engine.stats import PhaseStats, RunStats, merge

T0 = 1000.0  # an arbitrary monotonic clock origin


def complete(
    phase: PhaseStats,
    at: float,
    latency_s: float,
    *,
    template: str = "t",
    send_delay_s: float = 0.0,
    ok: bool = True,
    truncated: bool = False,
) -> None:
    """Schedule, send and complete one request scheduled at run offset ``at``."""
    scheduled = T0 + at
    request = phase.request(template)
    phase.schedule(scheduled, request)
    phase.mark_sent(scheduled + send_delay_s, request)
    phase.record(
        scheduled,
        scheduled + send_delay_s,
        scheduled + latency_s,
        200 if ok else 503,
        ok,
        request,
        truncated=truncated,
    )


def test_counters_and_accounting() -> None:
    """Counters follow schedule/send/drop/record and check_accounting reports broken identities."""
    run = RunStats(T0)
    phase = run.phase("steady")
    for i in range(6):
        complete(phase, i * 0.1, 0.01)
    t = phase.request("t")
    phase.schedule(T0 + 1, t, n=4)
    phase.drop(T0 + 1, t)
    for error in (ErrorKind.timeout, ErrorKind.connect):
        phase.mark_sent(T0 + 1, t)
        phase.record(T0 + 1, T0 + 1, T0 + 1.5, None, False, t, error_kind=error)
    phase.mark_sent(T0 + 1, t)
    phase.record(T0 + 1, T0 + 1, T0 + 1.01, 500, False, t)
    assert phase.counts() == Counts(
        scheduled=10, sent=9, dropped=1, succeeded=6, failed=3, timed_out=1
    )
    assert phase.errors_by_kind == {"timeout": 1, "connect": 1}
    assert phase.status_counts == {200: 6, 500: 1}
    assert run.check_accounting() == []

    phase.schedule(T0 + 2, t)
    phase.mark_sent(T0 + 2, t)
    problems = run.check_accounting()
    assert any("sent 10 != succeeded 6 + failed 3" in p for p in problems)
    assert run.check_accounting(in_flight=1) == []


def test_requests_with_no_response_are_counted_but_not_timed() -> None:
    """Errors and cancellations count as failed; only responses (any status) reach latency."""
    run = RunStats(T0)
    phase = run.phase("p")
    t = phase.request("t")
    for kind in (*ErrorKind, "cancelled"):
        phase.schedule(T0, t)
        phase.mark_sent(T0, t)
        phase.record(T0, T0, T0 + 2.5, None, False, t, error_kind=kind)
    complete(phase, 0.0, 0.004, ok=False)  # a fast 503 is a response time
    complete(phase, 0.0, 0.010)
    assert (phase.failed, phase.succeeded) == (7, 1)
    assert phase.errors_by_kind == {str(kind): 1 for kind in (*ErrorKind, "cancelled")}
    assert phase.status_counts == {503: 1, 200: 1}
    assert phase.latency.total_count == phase.service_time.total_count == 2
    assert phase.latency.max_value() < 11_000  # no 2.5 s reset among them
    first, _, third = run.series.freeze()
    assert (first.failed, first.latency_ms and first.latency_ms.count) == (1, 2)
    assert (third.failed, third.latency_ms) == (6, None)  # the errors' second: counted only
    assert run.check_accounting() == []


def test_truncated_responses_are_responses_counted_apart() -> None:
    """A cut body keeps its status and its time; `truncated` counts it, never above responses."""
    run = RunStats(T0)
    phase = run.phase("p")
    complete(phase, 0.0, 0.01, truncated=True)
    complete(phase, 0.1, 0.02, ok=False, truncated=True)
    complete(phase, 0.2, 0.03)
    assert phase.counts() == Counts(3, 3, 0, 2, 1, 0, truncated=2)
    assert phase.status_counts == {200: 2, 503: 1}
    assert phase.latency.total_count == 3
    assert phase.freeze().requests[0].counts.truncated == 2
    assert run.check_accounting() == []
    phase.requests["t"].truncated = 4  # more than the three responses: impossible
    assert "phase 'p': truncated 4 > responses 3" in run.check_accounting()


def test_accounting_checks_the_histograms_against_the_responses() -> None:
    """A latency value with no response behind it breaks the identity and is named."""
    phase = RunStats(T0).phase("p")
    complete(phase, 0.0, 0.01)
    phase.requests["t"].latency.record(5_000)
    assert phase.accounting_problems() == [
        "phase 'p': latency histogram holds 2 values, 1 requests got a response",
        "phase 'p', request 't': latency histogram holds 2 values, 1 requests got a response",
    ]


def test_counts_are_kept_per_template_in_first_seen_order() -> None:
    """Each template has its own counters, errors and statuses; the phase's are their sums."""
    phase = RunStats(T0).phase("p")
    complete(phase, 0.0, 0.01, template="write", ok=False)
    complete(phase, 0.1, 0.01, template="read")
    complete(phase, 0.2, 0.01, template="read")
    write, read = phase.request("write"), phase.request("read")
    phase.schedule(T0 + 0.3, write)
    phase.drop(T0 + 0.3, write)
    phase.schedule(T0 + 0.4, write)
    phase.mark_sent(T0 + 0.4, write)
    phase.record(T0 + 0.4, T0 + 0.4, T0 + 1.4, None, False, write, error_kind=ErrorKind.timeout)
    assert list(phase.requests) == ["write", "read"]
    assert (phase.requests["write"], phase.requests["read"]) == (write, read)
    assert write.counts() == Counts(3, 2, 1, 0, 2, 1)
    assert read.counts() == Counts(2, 2, 0, 2, 0, 0)
    assert write.errors_by_kind == {"timeout": 1}
    assert (write.status_counts, read.status_counts) == ({503: 1}, {200: 2})
    assert phase.counts() == write.counts() + read.counts()
    record = phase.freeze()
    assert tuple(
        dataclasses.replace(r, latency_ms=None, service_time_ms=None, histograms=None)
        for r in record.requests
    ) == (
        RequestRecord(
            "write", Counts(3, 2, 1, 0, 2, 1), {"timeout": 1}, {503: 1}, {"max_inflight": 1}
        ),
        RequestRecord("read", Counts(2, 2, 0, 2, 0, 0), {}, {200: 2}),
    )
    assert record.dropped_by_kind == {"max_inflight": 1}


def test_drops_are_counted_by_kind() -> None:
    """A late start's drops and the in-flight cap's are told apart, per template and phase,
    and survive a freeze and thaw and a merge."""
    phase = RunStats(T0).phase("p")
    a, b = phase.request("a"), phase.request("b")
    for request, kind in ((a, DropKind.LATE_START), (a, DropKind.LATE_START), (b, None)):
        phase.schedule(T0, request)
        if kind is None:
            phase.drop(T0, request)  # the dispatcher's default: the in-flight cap
        else:
            phase.drop(T0, request, kind)
    assert a.dropped_by_kind == {"late_start": 2}
    assert phase.dropped_by_kind == {"late_start": 2, "max_inflight": 1}
    assert phase.accounting_problems() == []
    thawed = PhaseStats.thaw(phase.freeze())
    assert thawed.dropped_by_kind == phase.dropped_by_kind
    thawed.merge_from(phase)
    assert thawed.dropped_by_kind == {"late_start": 4, "max_inflight": 2}
    a.dropped_by_kind["late_start"] = 3  # more drops by kind than drops: named
    assert phase.accounting_problems() == [
        "phase 'p': more drops by kind than drops (3)",
        "phase 'p', request 'a': more drops by kind than drops (2)",
    ]


def test_accounting_is_checked_per_template() -> None:
    """A template whose own identities break is named, even when the phase's sums hold."""
    phase = RunStats(T0).phase("p")
    a, b = phase.request("a"), phase.request("b")
    phase.schedule(T0, a)
    phase.mark_sent(T0, b)  # sent under another template than it was scheduled for
    phase.record(T0, T0, T0 + 0.1, 200, True, b)
    problems = phase.accounting_problems()
    assert problems == [
        "phase 'p', request 'a': scheduled 1 != sent 0 + dropped 0",
        "phase 'p', request 'b': scheduled 0 != sent 1 + dropped 0",
    ]


def test_phase_summaries_in_milliseconds() -> None:
    """1..10000 ms give phase percentiles in ms; service time leaves out the send delay."""
    phase = RunStats(T0).phase("p")
    for i, value in enumerate(range(1, 10_001)):
        complete(phase, i * 0.0001, value / 1000.0, send_delay_s=0.0005)
    record = phase.freeze()
    assert record.latency_ms == phase.latency.summary()
    assert record.latency_ms.p50 == pytest.approx(5000, abs=6)
    assert record.service_time_ms.p50 == pytest.approx(4999.5, abs=6)


def _split_run(rng: random.Random) -> tuple[RunStats, RunStats, RunStats]:
    """One data set recorded whole and split in two halves (alternating requests)."""
    whole, half_a, half_b = RunStats(T0), RunStats(T0), RunStats(T0)
    for i in range(6000):
        at = i * 0.001
        phase_name = "ramp" if at < 2 else "steady"
        latency = rng.lognormvariate(-5, 1)
        ok = rng.random() > 0.05
        template = "a" if i % 6 < 4 else "b"  # both halves see "a" first, like the whole
        for run in (whole, half_a if i % 2 else half_b):
            complete(
                run.phase(phase_name),
                at,
                latency,
                template=template,
                send_delay_s=0.0002,
                ok=ok,
                truncated=i % 97 == 0,
            )
    return whole, half_a, half_b


def test_freeze_and_thaw_round_trip() -> None:
    """A finished run's record thaws into a run that freezes to the same record."""
    whole, _, _ = _split_run(random.Random(5))
    record = whole.freeze()
    assert [p.name for p in record.phases] == ["ramp", "steady"]
    assert record.total.counts == Counts(6000, 6000, 0, record.total.counts.succeeded,
                                         record.total.counts.failed, 0, 62)  # fmt: skip
    thawed = RunStats.thaw(record)
    assert thawed.freeze() == record
    assert thawed.check_accounting() == []
    assert thawed.series.sealed_seconds == len(record.seconds)


def test_merge_of_two_halves_equals_the_whole() -> None:
    """Merging two halves gives the whole's counts per template, histograms and seconds."""
    whole, half_a, half_b = _split_run(random.Random(3))
    merged = merge(half_a, half_b)
    assert list(merged.phases) == ["ramp", "steady"]
    assert merged.freeze() == whole.freeze()
    assert merged.check_accounting() == []


def test_merge_of_thawed_shards_equals_the_whole() -> None:
    """Thawed records of two shards merge exactly like the live runs (what `merge` does)."""
    whole, half_a, half_b = _split_run(random.Random(4))
    merged = merge(RunStats.thaw(half_a.freeze()), RunStats.thaw(half_b.freeze()))
    expected = whole.freeze()
    assert merged.freeze() == expected
    requests = {r.name: r.counts for r in expected.total.requests}
    assert requests["a"].scheduled == 4000
    assert requests["b"].scheduled == 2000


def test_merge_adds_templates_by_name() -> None:
    """Templates only one side has are kept, in first-seen order; shared ones add up."""
    a, b = RunStats(T0), RunStats(T0)
    complete(a.phase("p"), 0.0, 0.01, template="x")
    complete(b.phase("p"), 0.0, 0.01, template="y")
    complete(b.phase("p"), 0.1, 0.01, template="x", ok=False)
    merged = merge(a, b).phases["p"]
    assert list(merged.requests) == ["x", "y"]
    assert merged.requests["x"].counts() == Counts(2, 2, 0, 1, 1, 0)
    assert merged.requests["x"].status_counts == {200: 1, 503: 1}
    assert merged.requests["y"].counts() == Counts(1, 1, 0, 1, 0, 0)


def test_thaw_refuses_another_format_and_counts_that_do_not_add_up() -> None:
    """Thawing checks the format and that a phase's counts are its templates' sums."""
    whole, _, _ = _split_run(random.Random(6))
    record = whole.freeze()
    with pytest.raises(errors.ResultsError, match="nimbus-stats/1"):
        RunStats.thaw(dataclasses.replace(record, format="nimbus-stats/1"))
    phase = dataclasses.replace(record.phases[0], requests=record.phases[0].requests[:1])
    broken = dataclasses.replace(record, phases=(phase, *record.phases[1:]))
    with pytest.raises(errors.ResultsError, match="not the sum of its requests"):
        RunStats.thaw(broken)


def test_snapshot_sums_phases_and_reads_recent_seconds() -> None:
    """A snapshot adds every phase's counters and shows the latest sealed second's latency."""
    run = RunStats(T0)
    for sec in range(5):
        for i in range(10):
            complete(run.phase("a" if sec < 2 else "b"), sec + i / 10, 0.02)
    snapshot = run.snapshot(T0 + 5)
    assert (snapshot.phase, snapshot.scheduled, snapshot.succeeded) == ("b", 50, 50)
    assert snapshot.elapsed_s == 5
    assert snapshot.recent_second == 2
    assert snapshot.recent_completed == 10
    assert snapshot.recent_p95_ms == pytest.approx(20, rel=1e-2)


def test_an_empty_run_freezes_to_an_empty_record() -> None:
    """No phases, no seconds; the total is empty with zero summaries."""
    record = RunStats(T0).freeze()
    assert isinstance(record, StatsRecord)
    assert (record.phases, record.seconds) == ((), ())
    assert record.total.counts == Counts()
    assert record.total.latency_ms.max == 0.0
    assert RunStats.thaw(record).freeze() == record

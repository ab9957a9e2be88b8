"""Tests for the per-template latency histograms: recorded once, summed into the phase's, frozen,
thawed (also from documents written before templates had them) and merged exactly."""

from __future__ import annotations

import dataclasses

import pytest

from nimbus_scenarios import errors
from nimbus_scenarios.engine.records import PhaseRecord, StatsRecord
from nimbus_scenarios.engine.stats import RunStats, merge
from tests.engine.test_stats import T0, complete


def _slow_work_fast_health(run: RunStats, start: float = 0.0) -> None:
    phase = run.phase("p")
    for i in range(90):
        complete(phase, start + i * 0.01, 0.5 + i * 0.001, template="work", send_delay_s=0.1)
    for i in range(10):
        complete(phase, start + i * 0.01, 0.002, template="health")


def _untimed(record: StatsRecord) -> StatsRecord:
    """``record`` as written before templates had histograms."""

    def strip(phase: PhaseRecord) -> PhaseRecord:
        requests = tuple(
            dataclasses.replace(r, latency_ms=None, service_time_ms=None, histograms=None)
            for r in phase.requests
        )
        return dataclasses.replace(phase, requests=requests)

    return dataclasses.replace(
        record, phases=tuple(strip(p) for p in record.phases), total=strip(record.total)
    )


def test_each_template_times_its_own_responses() -> None:
    """A slow template and a fast one: each histogram holds its own; the phase's is their sum."""
    run = RunStats(T0)
    _slow_work_fast_health(run)
    phase = run.phases["p"]
    work, health = phase.requests["work"], phase.requests["health"]
    assert (work.latency.total_count, health.latency.total_count) == (90, 10)
    assert work.latency.value_at_percentile(50) > 500_000
    assert health.latency.max_value() <= 2_000
    # the service time starts at the send, 100 ms after the schedule
    assert work.latency.max_value() - work.service_time.max_value() == pytest.approx(100_000, 200)
    both = work.latency.copy()
    both.add(health.latency)
    assert phase.latency == both
    record = phase.freeze()
    summaries = {r.name: r.latency_ms for r in record.requests}
    work_ms, health_ms = summaries["work"], summaries["health"]
    assert work_ms is not None
    assert health_ms is not None
    assert work_ms.p95 > 500
    assert health_ms.p95 <= 2
    assert run.check_accounting() == []


def test_a_template_without_responses_has_empty_histograms() -> None:
    """Requests with no response are counted, not timed, per template too."""
    run = RunStats(T0)
    phase = run.phase("p")
    request = phase.request("down")
    phase.schedule(T0, request)
    phase.mark_sent(T0, request)
    phase.record(T0, T0, T0 + 1, None, False, request, error_kind="connect")
    assert request.latency.total_count == 0
    assert run.check_accounting() == []
    assert phase.freeze().requests[0].latency_ms is not None  # all zero, as a phase's


def test_freeze_thaw_and_merge_keep_template_histograms_exactly() -> None:
    """Two shards thawed from their records merge to the histograms of one run of both."""
    whole, shard_a, shard_b = RunStats(T0), RunStats(T0), RunStats(T0)
    _slow_work_fast_health(whole)
    _slow_work_fast_health(whole, start=5.0)
    _slow_work_fast_health(shard_a)
    _slow_work_fast_health(shard_b, start=5.0)
    merged = merge(RunStats.thaw(shard_a.freeze()), RunStats.thaw(shard_b.freeze()))
    for name in ("work", "health"):
        mine, theirs = merged.phases["p"].requests[name], whole.phases["p"].requests[name]
        assert mine.latency == theirs.latency
        assert mine.service_time == theirs.service_time
    assert merged.freeze() == whole.freeze()


def test_a_document_without_template_histograms_still_thaws_and_merges() -> None:
    """Older documents keep their phase histograms; merged with a newer one nothing is lost."""
    old_run, new_run = RunStats(T0), RunStats(T0)
    _slow_work_fast_health(old_run)
    _slow_work_fast_health(new_run, start=5.0)
    old = _untimed(old_run.freeze())
    thawed = RunStats.thaw(old)
    assert thawed.freeze() == old
    assert thawed.phases["p"].latency == old_run.phases["p"].latency
    assert thawed.check_accounting() == []
    merged = merge(thawed, RunStats.thaw(new_run.freeze()))
    expected = merge(old_run, new_run).phases["p"]
    phase = merged.phases["p"]
    assert phase.latency == expected.latency
    assert phase.service_time == expected.service_time
    assert not phase.requests["work"].timed
    assert merged.freeze().phases[0].requests[0].histograms is None
    assert RunStats.thaw(merged.freeze()).freeze() == merged.freeze()


def test_thaw_refuses_phase_histograms_that_are_not_the_templates_sum() -> None:
    """A phase histogram missing a template's values, or holding extra ones, is refused."""
    run, other = RunStats(T0), RunStats(T0)
    _slow_work_fast_health(run)
    complete(other.phase("p"), 0.0, 3.0, template="work")
    record = run.freeze()
    foreign = other.freeze().phases[0].histograms
    phase = dataclasses.replace(record.phases[0], histograms=foreign)
    with pytest.raises(errors.ResultsError, match="lack values"):
        RunStats.thaw(dataclasses.replace(record, phases=(phase,)))
    extra = run.phases["p"].latency
    extra.add(other.phases["p"].latency)
    phase = dataclasses.replace(
        record.phases[0],
        histograms=dataclasses.replace(record.phases[0].histograms, latency_us=extra.encode()),
    )
    with pytest.raises(errors.ResultsError, match="not the sum of its requests'"):
        RunStats.thaw(dataclasses.replace(record, phases=(phase,)))

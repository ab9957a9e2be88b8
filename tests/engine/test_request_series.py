"""Tests for each request template's per-second series over a run (`engine.request_series`,
`RunStats.request_series`): what it counts and when, freezing it sparse, thawing, merging, and
the accounting check against the templates' counters."""

from __future__ import annotations

import dataclasses
import random

import pytest

from nimbus_scenarios import errors
from nimbus_scenarios.engine.records import DropKind, RequestSeconds
from nimbus_scenarios.engine.request import ErrorKind
from nimbus_scenarios.engine.series import COUNTERS
from nimbus_scenarios.engine.stats import RunStats, merge
from tests.engine.test_stats import T0, _split_run, complete


def test_each_template_has_one_series_across_phases() -> None:
    """A template's requests in every phase count in one series; another template's do not."""
    run = RunStats(T0)
    complete(run.phase("warm"), 0.2, 0.05, template="work")
    complete(run.phase("peak"), 3.4, 0.5, template="work", ok=False)
    complete(run.phase("peak"), 3.5, 0.01, template="health")
    work = run.request_series("work")
    assert work is not None
    assert run.phase("warm").request("work").series is work
    assert run.phase("peak").request("work").series is work
    assert run.request_series("nothing") is None
    assert list(run.template_series) == ["work", "health"]
    assert (work.scheduled[0], work.scheduled[3], work.failed[3]) == (1, 1, 1)
    health = run.request_series("health")
    assert health is not None
    assert (sum(health.scheduled), health.succeeded[3], sum(health.failed)) == (1, 1, 0)
    latency = work.latency(3)
    assert latency is not None
    assert latency.p95_us == pytest.approx(500_000, rel=0.01)
    assert run.check_accounting() == []


def test_times_are_those_of_the_run_series() -> None:
    """Scheduled and dropped by scheduled time, sent by send time, done by completion time;
    an unanswered request is counted, not timed."""
    run = RunStats(T0)
    phase = run.phase("p")
    request = phase.request("slow")
    phase.schedule(T0 + 0.9, request)
    phase.mark_sent(T0 + 1.2, request)
    phase.record(T0 + 0.9, T0 + 1.2, T0 + 2.5, 200, True, request)
    phase.schedule(T0 + 4.5, request)
    phase.drop(T0 + 4.5, request, DropKind.LATE_START)
    phase.schedule(T0 + 5.0, request)
    phase.mark_sent(T0 + 5.0, request)
    phase.record(T0 + 5.0, T0 + 5.0, T0 + 6.1, None, False, request, error_kind=ErrorKind.timeout)
    series = run.request_series("slow")
    assert series is not None
    for name in COUNTERS:
        assert series.counters(name)[:7] == run.series.counters(name)[:7], name
    assert (series.scheduled[0], series.sent[1], series.succeeded[2]) == (1, 1, 1)
    assert (series.dropped[4], series.failed[6]) == (1, 1)
    assert series.latency(6) is None
    latency = series.latency(2)
    assert latency is not None
    assert latency.count == 1


def test_freeze_leaves_out_empty_seconds_and_thaw_reads_them_back() -> None:
    """A template that ran only late in the run freezes only its busy seconds; the record
    thaws into series that freeze the same, and the run still reconciles."""
    run = RunStats(T0)
    for i in range(20):
        complete(run.phase("a"), i * 0.1, 0.02, template="early")
    for i in range(10):
        complete(run.phase("b"), 30 + i * 0.1, 0.02, template="late")
    record = run.freeze()
    seconds = {r.name: [s.second for s in r.seconds] for r in record.requests}
    assert seconds == {"early": [0, 1], "late": [30]}
    assert len(record.seconds) == 31  # the run's series stays dense
    thawed = RunStats.thaw(record)
    assert thawed.freeze() == record
    assert thawed.check_accounting() == []
    late = thawed.request_series("late")
    assert late is not None
    assert late.succeeded[30] == 10


def test_accounting_compares_template_series_with_counters() -> None:
    """A template series that does not add up to the template's counters is reported."""
    run = RunStats(T0)
    complete(run.phase("p"), 0.1, 0.01, template="work")
    series = run.request_series("work")
    assert series is not None
    series.failed[0] += 2
    assert run.check_accounting() == ["request 'work': per-second failed sum 2 != phases' 0"]


def test_merge_adds_template_series_exactly() -> None:
    """Two halves merge, per template and second, into the whole's series (thawed or live)."""
    whole, half_a, half_b = _split_run(random.Random(11))
    expected = whole.freeze().requests
    assert [r.name for r in expected] == ["a", "b"]
    assert merge(half_a, half_b).freeze().requests == expected
    thawed = merge(RunStats.thaw(half_a.freeze()), RunStats.thaw(half_b.freeze()))
    assert thawed.freeze().requests == expected
    merged_a = thawed.request_series("a")
    assert merged_a is not None
    assert thawed.phases["ramp"].request("a").series is merged_a
    assert thawed.check_accounting() == []


def test_merge_keeps_a_template_only_one_side_sent() -> None:
    """A template only one run recorded keeps that run's series in the sum."""
    a, b = RunStats(T0), RunStats(T0)
    complete(a.phase("p"), 0.5, 0.01, template="x")
    complete(b.phase("p"), 1.5, 0.01, template="y")
    merged = merge(a, b)
    assert [r.name for r in merged.freeze().requests] == ["x", "y"]
    assert merged.check_accounting() == []


def test_documents_without_template_series_still_thaw_and_merge() -> None:
    """A record written before templates had series thaws with none; merged with one that has
    them, the templates it recorded get none either (the sum would hold part of the run)."""
    old, new = RunStats(T0), RunStats(T0)
    complete(old.phase("p"), 0.5, 0.01, template="x")
    complete(new.phase("p"), 0.5, 0.01, template="x")
    complete(new.phase("p"), 0.7, 0.01, template="y")
    record = dataclasses.replace(old.freeze(), requests=())
    thawed = RunStats.thaw(record)
    assert thawed.request_series("x") is None
    assert thawed.check_accounting() == []
    merged = merge(thawed, RunStats.thaw(new.freeze()))
    assert merged.request_series("x") is None
    assert merged.request_series("y") is not None
    assert merged.check_accounting() == []
    assert [r.name for r in merged.freeze().requests] == ["y"]


def test_thaw_refuses_a_template_named_twice() -> None:
    """Two series for one template are refused, not silently overwritten."""
    run = RunStats(T0)
    complete(run.phase("p"), 0.5, 0.01, template="x")
    record = run.freeze()
    twice = dataclasses.replace(record, requests=(*record.requests, RequestSeconds("x")))
    with pytest.raises(errors.ResultsError, match="'x' has two per-second series"):
        RunStats.thaw(twice)


def test_snapshot_has_each_templates_failures_over_phases() -> None:
    """A snapshot sums each template's failures, statuses and error kinds over the phases."""
    run = RunStats(T0)
    complete(run.phase("a"), 0.1, 0.01, template="work", ok=False)
    complete(run.phase("b"), 2.1, 0.01, template="work", ok=False)
    complete(run.phase("b"), 2.2, 0.01, template="work")
    complete(run.phase("b"), 2.3, 0.01, template="health")
    phase = run.phase("b")
    request = phase.request("work")
    phase.schedule(T0 + 2.4, request)
    phase.mark_sent(T0 + 2.4, request)
    phase.record(T0 + 2.4, T0 + 2.4, T0 + 3.0, None, False, request, error_kind=ErrorKind.reset)
    work, health = run.snapshot(T0 + 4).requests
    assert (work.name, work.failed, dict(work.status_counts)) == ("work", 3, {200: 1, 503: 2})
    assert dict(work.errors_by_kind) == {"reset": 1}
    assert (health.name, health.failed) == ("health", 0)

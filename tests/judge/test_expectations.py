"""Judging load expectations (pure): latency, errors and achieved over a phase's statistics.
Expectations are compiled from scenario text."""

from __future__ import annotations

import dataclasses
from functools import cache

import pytest

from nimbus_scenarios.engine.stats import PhaseStats
from nimbus_scenarios.judge.expectations import NO_RESPONSE, judge_load, planned_of
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import ExpectationPlan
from nimbus_scenarios.results.model import Verdict

SCENARIO = """
scenario "judge" {
  request h = GET "/h"
  phase "p" 10s {
    rate 1/s
    send h
    expect p50 < 51ms
    expect p50 < 49ms
    expect p90 <= 91ms
    expect p90 < 89ms
    expect p95 < 96ms
    expect p95 < 94ms
    expect p99 < 100ms
    expect p99 < 98ms
    expect max <= 101ms
    expect max < 99ms
    expect mean > 50ms
    expect mean < 49ms
    expect errors < 11%
    expect errors <= 5%
    expect achieved >= 80%
    expect achieved >= 90%
  }
}
"""


@cache
def expectations() -> dict[str, ExpectationPlan]:
    """The phase's expectations by text."""
    plan = compile_source(Source("judge.scn", SCENARIO))
    return {e.text: e for e in plan.phases[0].expectations}


def stats_1_to_100_ms() -> PhaseStats:
    """100 requests with latencies 1, 2, ..., 100 ms; every 10th one failed."""
    stats = PhaseStats("p")
    for i in range(1, 101):
        request = stats.request("t")
        stats.schedule(float(i), request)
        stats.mark_sent(float(i), request)
        ok = i % 10 != 0
        stats.record(float(i), float(i), i + i / 1000.0, 200 if ok else 500, ok, request)
    return stats


@pytest.mark.parametrize(
    ("passing", "failing", "observed_s"),
    [
        ("expect p50 < 51ms", "expect p50 < 49ms", 0.050),
        ("expect p90 <= 91ms", "expect p90 < 89ms", 0.090),
        ("expect p95 < 96ms", "expect p95 < 94ms", 0.095),
        ("expect p99 < 100ms", "expect p99 < 98ms", 0.099),
        ("expect max <= 101ms", "expect max < 99ms", 0.100),
        ("expect mean > 50ms", "expect mean < 49ms", 0.0505),
    ],
)
def test_latency_subjects(passing: str, failing: str, observed_s: float) -> None:
    """Each latency statistic is observed in seconds, to histogram precision, and compared."""
    stats = stats_1_to_100_ms()
    good = judge_load(expectations()[passing], stats, scheduled=100)
    bad = judge_load(expectations()[failing], stats, scheduled=100)
    assert good.verdict is Verdict.PASSED
    assert bad.verdict is Verdict.FAILED
    assert good.observed == pytest.approx(observed_s, rel=0.01)
    assert bad.observed == good.observed


def test_errors_are_failed_over_completed() -> None:
    """10 failures in 100: errors observed as 10%."""
    stats = stats_1_to_100_ms()
    good = judge_load(expectations()["expect errors < 11%"], stats)
    bad = judge_load(expectations()["expect errors <= 5%"], stats)
    assert good.verdict is Verdict.PASSED
    assert bad.verdict is Verdict.FAILED
    assert good.observed == 10.0


def test_achieved_is_sent_over_scheduled() -> None:
    """100 sent of 125 planned is 80%; without a plan count the phase's own scheduled is used."""
    stats = stats_1_to_100_ms()
    good = judge_load(expectations()["expect achieved >= 80%"], stats, scheduled=125)
    bad = judge_load(expectations()["expect achieved >= 90%"], stats, scheduled=125)
    assert good.verdict is Verdict.PASSED
    assert good.observed == 80.0
    assert bad.verdict is Verdict.FAILED
    closed = judge_load(expectations()["expect achieved >= 90%"], stats)
    assert closed.observed == 100.0


def test_load_expectations_without_data_are_not_judged() -> None:
    """No completed or scheduled request in scope: not judged, never passed."""
    empty = PhaseStats("p")
    for text in ("expect p95 < 96ms", "expect max <= 101ms", "expect errors < 11%"):
        assert judge_load(expectations()[text], empty).verdict is Verdict.NOT_JUDGED, text
    achieved = judge_load(expectations()["expect achieved >= 80%"], empty, scheduled=0)
    assert achieved.verdict is Verdict.NOT_JUDGED


def test_latency_over_no_response_is_not_judged() -> None:
    """Every request reset, refused, timed out or cancelled: latency not judged, errors judged."""
    stats = PhaseStats("p")
    request = stats.request("t")
    for i, kind in enumerate(("reset", "connect", "timeout", "cancelled")):
        stats.schedule(float(i), request)
        stats.mark_sent(float(i), request)
        stats.record(float(i), float(i), i + 0.001, None, False, request, error_kind=kind)
    for text in ("expect p95 < 96ms", "expect max <= 101ms", "expect mean < 49ms"):
        verdict = judge_load(expectations()[text], stats, scheduled=4)
        assert verdict.verdict is Verdict.NOT_JUDGED, text
        assert verdict.detail == NO_RESPONSE == "no response in scope"
        assert verdict.observed is None
    errors = judge_load(expectations()["expect errors < 11%"], stats)
    assert (errors.verdict, errors.observed) == (Verdict.FAILED, 100.0)


def test_latency_is_judged_over_the_responses_only() -> None:
    """Failed responses (500) are timed; requests with no response do not change the latency."""
    stats = stats_1_to_100_ms()
    request = stats.request("t")
    for i in range(100):  # a hundred fast resets that would pull every percentile down
        stats.schedule(200.0 + i, request)
        stats.mark_sent(200.0 + i, request)
        stats.record(200.0 + i, 200.0 + i, 200.0 + i, None, False, request, error_kind="reset")
    p50 = judge_load(expectations()["expect p50 < 51ms"], stats, scheduled=200)
    assert p50.verdict is Verdict.PASSED
    assert p50.observed == pytest.approx(0.050, rel=0.01)
    assert stats.latency.total_count == 100
    errors = judge_load(expectations()["expect errors < 11%"], stats)
    assert errors.observed == 55.0  # 10 failed responses and 100 resets in 200


def two_templates() -> PhaseStats:
    """`work`: 4 requests at 1 s, 2 of them 500s; `health`: 96 requests at 10 ms, all fine."""
    stats = PhaseStats("p")
    work, health = stats.request("work"), stats.request("health")
    for i in range(100):
        request = work if i % 25 == 0 else health
        latency = 1.0 if request is work else 0.010
        ok = not (request is work and i in {0, 25})
        stats.schedule(float(i), request)
        stats.mark_sent(float(i), request)
        stats.record(float(i), float(i), i + latency, 200 if ok else 500, ok, request)
    return stats


def test_per_request_latency_is_that_templates_only() -> None:
    """`p95 of work` sees work's 1 s while the blended p95 is health's 10 ms."""
    stats = two_templates()
    e = expectations()["expect p95 < 96ms"]
    blended = judge_load(e, stats, scheduled=100)
    of_work = judge_load(dataclasses.replace(e, request="work"), stats, scheduled=4)
    of_health = judge_load(dataclasses.replace(e, request="health"), stats, scheduled=96)
    assert blended.verdict is Verdict.PASSED
    assert of_work.verdict is Verdict.FAILED
    assert of_work.observed == pytest.approx(1.0, rel=0.01)
    assert of_health.verdict is Verdict.PASSED
    assert stats.latency.total_count == 100  # judging a view leaves the phase whole


def test_per_request_errors_and_achieved() -> None:
    """`errors of work` is 2 in 4; `achieved of work` is work's sent over work's planned."""
    stats = two_templates()
    errors = dataclasses.replace(expectations()["expect errors < 11%"], request="work")
    judged = judge_load(errors, stats)
    assert (judged.verdict, judged.observed, judged.detail) == (
        Verdict.FAILED,
        50.0,
        "2/4 failed",
    )
    achieved = dataclasses.replace(expectations()["expect achieved >= 90%"], request="work")
    assert judge_load(achieved, stats, scheduled=4).observed == 100.0
    assert judge_load(achieved, stats, scheduled=8).verdict is Verdict.FAILED


def test_a_request_never_scheduled_in_scope_is_not_judged() -> None:
    """A template the scope holds no request of: not judged, and the detail names it."""
    e = dataclasses.replace(expectations()["expect errors < 11%"], request="login")
    judged = judge_load(e, two_templates())
    assert judged.verdict is Verdict.NOT_JUDGED
    assert judged.detail == "no `login` request in scope"


def test_planned_of_a_template() -> None:
    """A template's planned count: its own when the scope scheduled all it planned, else the
    plan's (a whole run) or the plan's in proportion (a shard's share)."""
    stats = two_templates()  # scheduled 4 work + 96 health
    plan = {"work": 6, "health": 114}
    assert planned_of("work", stats, planned=100, plan_counts=plan, plan_total=120) == 4
    assert planned_of("work", stats, planned=120, plan_counts=plan, plan_total=120) == 6
    # a shard of two stopped early: its half of the plan's 12, not its 4 counted
    shard = {"work": 12, "health": 228}
    assert planned_of("work", stats, planned=120, plan_counts=shard, plan_total=240) == 6
    assert planned_of("work", stats, planned=None, plan_counts=plan, plan_total=120) is None
    assert planned_of("login", stats, planned=100, plan_counts=plan, plan_total=120) == 0
    # a phase that never ran (merge: no statistics at all) still planned its share of work
    empty = PhaseStats("p")
    assert planned_of("work", empty, planned=120, plan_counts=plan, plan_total=120) == 6

"""Judging load expectations (pure): latency, errors and achieved over a phase's statistics.
Expectations are compiled from scenario text."""

from __future__ import annotations

from functools import cache

import pytest

from nimbus_scenarios.engine.stats import PhaseStats
from nimbus_scenarios.judge.expectations import NO_RESPONSE, judge_load
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

"""Judging expectations (pure): replica windows over step series, and latency, errors and
achieved over a phase's statistics. Expectations are compiled from scenario text."""

from __future__ import annotations

from functools import cache

import pytest

from nimbus_scenarios.engine.stats import PhaseStats
from nimbus_scenarios.judge.expectations import (
    Judgement,
    Point,
    Verdict,
    judge_load,
    judge_replicas,
)
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import ExpectationPlan

SCENARIO = """
scenario "judge" {
  watch deployment "consumer"
  request h = GET "/h"
  phase "p" 10s {
    rate 1/s
    send h
    expect replicas >= 3 within 5s
    expect desired replicas >= 3 within 5s
    expect ready replicas >= 5 within 5s
    expect replicas >= 1 throughout
    expect replicas >= 2 throughout
    expect desired replicas <= 4 throughout
    expect ready replicas == 1 at end
    expect desired replicas == 4 at end
    expect replicas == 3 at end
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

# (t_s, ready, desired): ready climbs 1 -> 2 -> 3 and falls back to 1; desired leads it.
SERIES = [
    Point(0.0, 1, 1),
    Point(1.0, 1, 3),
    Point(2.5, 2, 3),
    Point(4.0, 3, 3),
    Point(7.0, 3, 4),
    Point(9.0, 1, 4),
]


@cache
def expectations() -> dict[str, ExpectationPlan]:
    """The phase's expectations by text."""
    plan = compile_source(Source("judge.scn", SCENARIO))
    return {e.text: e for e in plan.phases[0].expectations}


def replicas(text: str, series: list[Point] = SERIES, seen_until_s: float = 10.0) -> Judgement:
    """Judge the replica expectation written as `text` over its own window."""
    e = expectations()[text]
    assert e.start_s is not None
    assert e.end_s is not None
    return judge_replicas(e, series, start_s=e.start_s, end_s=e.end_s, seen_until_s=seen_until_s)


def test_within_passes_at_the_first_moment_it_holds() -> None:
    """`within` passes with met_at_s the first moment the condition held, ready by default."""
    judgement = replicas("expect replicas >= 3 within 5s")
    assert judgement.verdict is Verdict.PASSED
    assert judgement.met_at_s == 4.0
    assert judgement.observed == 3


def test_within_on_desired_replicas_uses_spec_replicas() -> None:
    """`desired replicas` reads the autoscaler's decision, which held earlier than ready."""
    judgement = replicas("expect desired replicas >= 3 within 5s")
    assert judgement.verdict is Verdict.PASSED
    assert judgement.met_at_s == 1.0


def test_within_holding_already_at_the_window_start() -> None:
    """A condition that holds when the window opens is met at the window start."""
    series = [Point(-3.0, 4, 4), Point(6.0, 1, 1)]
    judgement = replicas("expect replicas >= 3 within 5s", series)
    assert judgement.verdict is Verdict.PASSED
    assert judgement.met_at_s == 0.0


def test_within_fails_when_it_never_held_in_the_window() -> None:
    """Never 5 ready in [0, 5]: failed, observed the last value seen in the window."""
    judgement = replicas("expect ready replicas >= 5 within 5s")
    assert judgement.verdict is Verdict.FAILED
    assert judgement.met_at_s is None
    assert judgement.observed == 3


def test_within_holding_after_the_window_is_still_a_failure() -> None:
    """Reaching 3 ready only at +6 s misses a 5 s window."""
    series = [Point(0.0, 1, 1), Point(6.0, 3, 3)]
    judgement = replicas("expect replicas >= 3 within 5s", series)
    assert judgement.verdict is Verdict.FAILED


def test_within_past_the_data_of_a_lost_source_is_not_judged() -> None:
    """The source lost at +3 s before the condition held: not judged, never passed or failed."""
    series = [p for p in SERIES if p.t_s <= 3.0]
    judgement = replicas("expect replicas >= 3 within 5s", series, seen_until_s=3.0)
    assert judgement.verdict is Verdict.NOT_JUDGED
    assert "lost" in judgement.detail


def test_within_met_before_the_source_was_lost_passes() -> None:
    """A condition seen to hold before the source was lost still passes."""
    judgement = replicas("expect replicas >= 3 within 5s", seen_until_s=4.5)
    assert judgement.verdict is Verdict.PASSED
    assert judgement.met_at_s == 4.0


def test_throughout_passes_only_if_it_held_at_every_moment() -> None:
    """`>= 1 throughout` holds; `>= 2 throughout` fails at the window start (1 ready)."""
    held = replicas("expect replicas >= 1 throughout")
    assert held.verdict is Verdict.PASSED
    assert held.met_at_s == 0.0
    broken = replicas("expect replicas >= 2 throughout")
    assert broken.verdict is Verdict.FAILED
    assert broken.observed == 1


def test_throughout_fails_at_a_late_violation() -> None:
    """Desired going to 5 at +8 s breaks `desired replicas <= 4 throughout`."""
    series = [Point(0.0, 1, 2), Point(8.0, 1, 5)]
    judgement = replicas("expect desired replicas <= 4 throughout", series)
    assert judgement.verdict is Verdict.FAILED
    assert judgement.observed == 5


def test_throughout_with_a_lost_source() -> None:
    """Lost at +5 s: not judged if no violation was seen, failed if one was."""
    quiet = [Point(0.0, 2, 2)]
    judgement = replicas("expect replicas >= 2 throughout", quiet, seen_until_s=5.0)
    assert judgement.verdict is Verdict.NOT_JUDGED
    broken = [Point(0.0, 2, 2), Point(4.0, 1, 1)]
    judgement = replicas("expect replicas >= 2 throughout", broken, seen_until_s=5.0)
    assert judgement.verdict is Verdict.FAILED


def test_at_end_reads_the_value_at_the_phase_end() -> None:
    """`at end` judges the state at +10 s: 1 ready and 4 desired, met at the end."""
    ready = replicas("expect ready replicas == 1 at end")
    assert ready.verdict is Verdict.PASSED
    assert ready.met_at_s == 10.0
    assert replicas("expect desired replicas == 4 at end").verdict is Verdict.PASSED
    failed = replicas("expect replicas == 3 at end")
    assert failed.verdict is Verdict.FAILED
    assert failed.observed == 1


def test_at_end_without_seeing_the_end_is_not_judged() -> None:
    """A source lost at +8 s never saw the phase end."""
    judgement = replicas("expect ready replicas == 1 at end", seen_until_s=8.0)
    assert judgement.verdict is Verdict.NOT_JUDGED


def test_no_samples_is_never_a_pass() -> None:
    """An empty series is not judged for every window kind."""
    for text in (
        "expect replicas >= 3 within 5s",
        "expect replicas >= 1 throughout",
        "expect ready replicas == 1 at end",
    ):
        assert replicas(text, []).verdict is Verdict.NOT_JUDGED, text


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

"""Replica windows (pure): `within`, `throughout` and `at end` over step series, and what a
run and its source saw (how far, and how far the data is proven fresh) bounding what may be
judged. Expectations are compiled from text."""

from __future__ import annotations

from functools import cache

from nimbus_scenarios.judge.windows import (
    NO_SOURCE,
    Seen,
    awaiting_data,
    judge_series,
    judge_window,
)
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import ExpectationPlan
from nimbus_scenarios.results.model import Judgement, Verdict
from nimbus_scenarios.results.model import ReplicaPoint as Point

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
    return judge_series(e, series, start_s=e.start_s, end_s=e.end_s, seen_until_s=seen_until_s)


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


def seen(**changes: object) -> Seen:
    """What a run that played phase "p" from 0 to 10 s saw, with `changes`."""
    fields: dict[str, object] = {
        "until_s": 12.0,
        "phases_run": {"p": (0.0, 10.0)},
        "phases_end_s": 10.0,
    }
    fields.update(changes)
    return Seen(**fields)  # type: ignore[arg-type]


def test_window_of_a_phase_that_did_not_run_is_not_judged() -> None:
    """A phase the run never reached leaves its windows not judged."""
    e = expectations()["expect replicas >= 3 within 5s"]
    judgement = judge_window(e, SERIES, seen(phases_run={}))
    assert judgement.verdict is Verdict.NOT_JUDGED
    assert judgement.detail == "the phase did not run"


def test_window_without_a_replica_source_is_not_judged() -> None:
    """No source at all: not judged, saying how to get one."""
    e = expectations()["expect replicas >= 1 throughout"]
    judgement = judge_window(e, SERIES, seen(has_source=False))
    assert judgement.verdict is Verdict.NOT_JUDGED
    assert judgement.detail == NO_SOURCE


def test_throughout_of_a_phase_cut_short_by_a_stop_is_not_judged() -> None:
    """A stop at +6 s cut the phase short: `throughout` cannot have held to its end."""
    e = expectations()["expect replicas >= 1 throughout"]
    judgement = judge_window(e, SERIES, seen(phases_run={"p": (0.0, 6.0)}, stopped=True))
    assert judgement.verdict is Verdict.NOT_JUDGED
    assert judgement.detail == "the run stopped before the phase end"


def test_within_met_before_a_stop_still_passes() -> None:
    """Stopped at +6 s, after 3 ready at +4 s: the window had already passed."""
    e = expectations()["expect replicas >= 3 within 5s"]
    judgement = judge_window(e, SERIES, seen(until_s=6.0, stopped=True))
    assert judgement.verdict is Verdict.PASSED
    assert judgement.met_at_s == 4.0


def test_within_open_when_the_run_stopped_says_so() -> None:
    """Stopped at +3 s with the window open: not judged, naming the stop, not a lost source."""
    e = expectations()["expect replicas >= 3 within 5s"]
    judgement = judge_window(e, SERIES, seen(until_s=3.0, stopped=True))
    assert judgement.verdict is Verdict.NOT_JUDGED
    assert judgement.detail == "the run was stopped at +3s, before the window closed"


def test_a_lost_source_bounds_what_is_judged() -> None:
    """Lost at +3 s, the run went on to +12 s: the window is judged on the first 3 s only."""
    e = expectations()["expect replicas >= 3 within 5s"]
    judgement = judge_window(e, SERIES, seen(lost_at_s=3.0))
    assert judgement.verdict is Verdict.NOT_JUDGED
    assert "lost at +3s" in judgement.detail


# ---------------------------------------------------------------- freshness
def stale_from(fresh_until_s: float, **changes: object) -> Seen:
    """What a run saw whose source proved its data fresh only up to `fresh_until_s`, then went
    stale (the run itself went on to +12 s)."""
    return seen(fresh_until_s=fresh_until_s, stale=True, **changes)


def test_within_met_before_the_data_went_stale_passes() -> None:
    """3 ready at +4 s, data stale from +4.5 s: the window had already passed."""
    e = expectations()["expect replicas >= 3 within 5s"]
    judgement = judge_window(e, SERIES, stale_from(4.5))
    assert (judgement.verdict, judgement.met_at_s) == (Verdict.PASSED, 4.0)


def test_within_not_met_when_the_data_went_stale_is_not_judged_never_failed() -> None:
    """Never 5 ready up to +3 s, stale from there: not judged, naming the staleness and when;
    the same window on data fresh to its end fails."""
    e = expectations()["expect ready replicas >= 5 within 5s"]
    judgement = judge_window(e, SERIES, stale_from(3.0))
    assert judgement.verdict is Verdict.NOT_JUDGED
    assert judgement.detail == (
        "replica data stale from +3s (the source's last update), before the window closed at +5s"
    )
    assert judge_window(e, SERIES, seen(fresh_until_s=12.0)).verdict is Verdict.FAILED


def test_throughout_without_a_violation_but_stale_before_its_end_is_not_judged() -> None:
    """`>= 1 throughout` held up to +6 s, when the data went stale: not judged, not passed."""
    e = expectations()["expect replicas >= 1 throughout"]
    judgement = judge_window(e, SERIES, stale_from(6.0))
    assert judgement.verdict is Verdict.NOT_JUDGED
    assert judgement.detail.startswith("replica data stale from +6s")
    assert judge_window(e, SERIES, seen(fresh_until_s=10.0)).verdict is Verdict.PASSED


def test_throughout_broken_before_the_data_went_stale_fails() -> None:
    """1 ready at the start breaks `>= 2 throughout`, whatever came after."""
    e = expectations()["expect replicas >= 2 throughout"]
    judgement = judge_window(e, SERIES, stale_from(1.0))
    assert (judgement.verdict, judgement.observed) == (Verdict.FAILED, 1)


def test_samples_after_the_fresh_data_are_not_judged_on() -> None:
    """A drop recorded at +8 s, after the data went stale at +6 s, may have happened earlier or
    later: `>= 2 throughout` is not judged rather than failed, and a `within` met only then is
    not passed either."""
    dropped = [Point(0.0, 3, 3), Point(8.0, 1, 3)]
    e = expectations()["expect replicas >= 2 throughout"]
    assert judge_window(e, dropped, stale_from(6.0)).verdict is Verdict.NOT_JUDGED
    assert judge_window(e, dropped, stale_from(9.0)).verdict is Verdict.FAILED
    late = [Point(0.0, 1, 1), Point(4.0, 3, 3)]
    within = expectations()["expect replicas >= 3 within 5s"]
    assert judge_window(within, late, stale_from(3.0)).verdict is Verdict.NOT_JUDGED


def test_at_end_needs_data_fresh_at_the_end() -> None:
    """1 ready at the end of the phase (+10 s): judged only if the data is fresh to +10 s."""
    e = expectations()["expect ready replicas == 1 at end"]
    assert judge_window(e, SERIES, stale_from(9.5)).verdict is Verdict.NOT_JUDGED
    judged = judge_window(e, SERIES, seen(fresh_until_s=10.0))
    assert (judged.verdict, judged.met_at_s) == (Verdict.PASSED, 10.0)


def test_data_not_yet_proven_to_the_end_is_awaited_until_it_goes_stale() -> None:
    """Proven fresh to +8 s and not stale: the window is open (more data could decide it); once
    stale, lost or stopped, or for a phase that did not run, waiting cannot decide it."""
    e = expectations()["expect replicas >= 1 throughout"]
    unproven = seen(fresh_until_s=8.0)
    judgement = judge_window(e, SERIES, unproven)
    assert judgement.verdict is Verdict.NOT_JUDGED
    assert judgement.detail == "replica data proven fresh only to +8s, before the window closed"
    assert awaiting_data(e, unproven)
    assert not awaiting_data(e, seen(fresh_until_s=10.0))
    assert not awaiting_data(e, stale_from(8.0))
    assert not awaiting_data(e, seen(fresh_until_s=8.0, lost_at_s=8.0))
    assert not awaiting_data(e, seen(fresh_until_s=8.0, stopped=True))
    assert not awaiting_data(e, seen(fresh_until_s=8.0, phases_run={}))
    assert not awaiting_data(e, seen(fresh_until_s=8.0, has_source=False))


def test_a_lost_source_is_named_before_staleness() -> None:
    """Lost at +3 s (and so stale from then): the detail names the loss, as before."""
    e = expectations()["expect replicas >= 3 within 5s"]
    judgement = judge_window(e, SERIES, stale_from(3.0, lost_at_s=3.0))
    assert judgement.verdict is Verdict.NOT_JUDGED
    assert judgement.detail == "the replica source was lost at +3s, before the window closed"


def test_what_may_be_judged_is_the_first_of_the_limits() -> None:
    """The run's offset, the loss and the freshness bound the data; the first one counts."""
    assert seen(until_s=12.0).data_until_s == 12.0
    assert seen(until_s=12.0, lost_at_s=7.0, fresh_until_s=9.0).data_until_s == 7.0
    assert seen(until_s=12.0, lost_at_s=7.0, fresh_until_s=5.0).data_until_s == 5.0
    assert seen(until_s=4.0, fresh_until_s=5.0).data_until_s == 4.0

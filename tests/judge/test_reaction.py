"""`expect reaction` and `expect pod startup` (pure): the first rise of desired replicas after a
phase start, waited for up to D past the phase end; the slowest over the phases at scenario
level; pod creation to Ready over the pods created in scope, a pod never ready counting as
+infinity; and nothing passed on data not known complete."""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import pytest

from nimbus_scenarios.judge.reaction import (
    NO_PODS,
    judge_pod_startup,
    judge_reaction,
    judge_scaling,
    nearest_rank,
)
from nimbus_scenarios.judge.windows import NO_SOURCE, Seen, awaiting_data
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import ExpectationPlan, PhasePlan, Plan
from nimbus_scenarios.results.model import Judgement, Verdict
from nimbus_scenarios.results.model import ReplicaPoint as Point
from nimbus_scenarios.scaling import PodRecord

SCENARIO = """
scenario "react" {
  watch deployment "consumer"
  request h = GET "/h"
  phase "warm" 20s {
    rate 1/s
    send h
    expect reaction < 10s
  }
  phase "ramp" 40s {
    rate 1/s
    send h
    expect reaction < 15s
    expect reaction >= 5s
    expect pod startup p50 < 20s
    expect pod startup max < 20s
  }
  expect reaction < 12s
  expect pod startup p90 <= 30s
}
"""

RAN = {"warm": (0.0, 20.0), "ramp": (20.0, 60.0)}


@cache
def plan() -> Plan:
    return compile_source(Source("react.scn", SCENARIO))


def expectation(scope: str, text: str) -> ExpectationPlan:
    found = plan().expectations if scope == "scenario" else _phase(scope).expectations
    return next(e for e in found if e.text == f"expect {text}")


def _phase(name: str) -> PhasePlan:
    return next(p for p in plan().phases if p.name == name)


def seen(until: float, **changes: Any) -> Seen:
    return Seen(until_s=until, phases_run=RAN, phases_end_s=60.0, **changes)


def rise_at(t: float) -> list[Point]:
    return [Point(-1.0, 1, 1), Point(t, 1, 3)]


def reaction(scope: str, text: str, points: list[Point], at: Seen) -> Judgement:
    return judge_reaction(expectation(scope, text), points, at, plan().phases)


def test_a_phase_reaction_is_from_its_start_to_the_first_rise() -> None:
    """A rise at 28 is 8s into the ramp (passes `< 15s`) and 28s after warm started: warm waits
    up to 10s past its end for its first rise, and 28s fails its `< 10s`."""
    ramp = reaction("ramp", "reaction < 15s", rise_at(28.0), seen(100.0))
    assert (ramp.verdict, ramp.observed, ramp.met_at_s) == (Verdict.PASSED, 8.0, 28.0)
    assert ramp.detail == "desired replicas rose to 3 8.0s after ramp started"
    warm = reaction("warm", "reaction < 10s", rise_at(28.0), seen(100.0))
    assert (warm.verdict, warm.observed) == (Verdict.FAILED, 28.0)


@pytest.mark.parametrize(("at", "verdict"), [(34.9, Verdict.PASSED), (35.0, Verdict.FAILED)])
def test_reaction_against_its_threshold(at: float, verdict: Verdict) -> None:
    judged = reaction("ramp", "reaction < 15s", rise_at(at), seen(100.0))
    assert judged.verdict is verdict
    assert judged.observed == pytest.approx(at - 20.0)


def test_a_rise_after_the_wait_is_no_reaction() -> None:
    """The ramp waits until 75 (its end, 60, plus 15s): a rise at 80 is not its reaction."""
    judged = reaction("ramp", "reaction >= 5s", rise_at(80.0), seen(100.0))
    assert judged.verdict is Verdict.FAILED
    assert judged.observed is None
    assert "no rise of desired replicas" in judged.detail


def test_no_rise_yet_is_decided_only_when_it_can_be() -> None:
    """At 50, with no rise: `< 15s` has already failed (30s went by), `>= 5s` may still pass."""
    flat = [Point(-1.0, 1, 1)]
    below = reaction("ramp", "reaction < 15s", flat, seen(50.0))
    assert below.verdict is Verdict.FAILED
    above = reaction("ramp", "reaction >= 5s", flat, seen(50.0))
    assert above.verdict is Verdict.NOT_JUDGED
    assert awaiting_data(expectation("ramp", "reaction >= 5s"), seen(50.0))
    assert not awaiting_data(expectation("ramp", "reaction >= 5s"), seen(65.0))


def test_reaction_is_not_judged_past_stale_data() -> None:
    """Data proven only to 30 and stale: a rise recorded at 40 is not used (it may have
    happened earlier, or another before it), and nothing is passed or failed."""
    stale = seen(100.0, fresh_until_s=30.0, stale=True)
    judged = reaction("ramp", "reaction < 15s", rise_at(40.0), stale)
    assert judged.verdict is Verdict.NOT_JUDGED
    assert "stale from +30s" in judged.detail
    assert not awaiting_data(expectation("ramp", "reaction < 15s"), stale)


def test_reaction_needs_a_source_and_its_phase() -> None:
    none = reaction("ramp", "reaction < 15s", [], seen(100.0, has_source=False))
    assert (none.verdict, none.detail) == (Verdict.NOT_JUDGED, NO_SOURCE)
    only_warm = Seen(until_s=100.0, phases_run={"warm": (0.0, 20.0)}, phases_end_s=60.0)
    unrun = reaction("ramp", "reaction < 15s", rise_at(28.0), only_warm)
    assert unrun.verdict is Verdict.NOT_JUDGED


@pytest.mark.parametrize(
    ("ramp_rise", "verdict", "slowest"),
    [(31.0, Verdict.PASSED, 11.0), (33.0, Verdict.FAILED, 13.0)],
)
def test_the_scenario_reaction_is_the_slowest_phase(
    ramp_rise: float, verdict: Verdict, slowest: float
) -> None:
    """Warm rose 5s after its start, the ramp 11s (or 13s) after its: the longest is judged."""
    points = [Point(-1.0, 1, 1), Point(5.0, 1, 2), Point(ramp_rise, 2, 4)]
    judged = reaction("scenario", "reaction < 12s", points, seen(100.0))
    assert (judged.verdict, judged.observed) == (verdict, slowest)
    assert judged.detail.startswith(f"longest {slowest:.1f}s, in ramp")


def test_a_rise_belongs_to_the_phase_it_follows() -> None:
    """A rise at 25 is 5s into the ramp, not 25s into warm; warm saw none and does not count."""
    judged = reaction("scenario", "reaction < 12s", rise_at(25.0), seen(100.0))
    assert (judged.verdict, judged.observed) == (Verdict.PASSED, 5.0)


def test_the_scenario_reaction_fails_with_no_rise_at_all() -> None:
    judged = reaction("scenario", "reaction < 12s", [Point(-1.0, 2, 2)], seen(100.0))
    assert judged.verdict is Verdict.FAILED
    assert judged.detail == "no rise of desired replicas in any phase"
    early = reaction("scenario", "reaction < 12s", [Point(-1.0, 2, 2)], seen(61.0))
    assert early.verdict is Verdict.NOT_JUDGED


# Created in the ramp: a (10s), b (25s); c in warm, d after the phases.
PODS = [
    PodRecord("a", created=21.0, ready=31.0),
    PodRecord("b", created=30.0, ready=55.0),
    PodRecord("c", created=10.0, ready=12.0),
    PodRecord("d", created=65.0, ready=66.0),
    PodRecord("old", created=None, ready=None),
]


def startup(scope: str, text: str, pods: list[PodRecord] | None, at: Seen) -> Judgement:
    return judge_pod_startup(expectation(scope, text), pods, at)


def test_pod_startup_over_the_pods_created_in_scope() -> None:
    """The ramp's pods took 10s and 25s: p50 (nearest rank: the first) 10s passes `< 20s`, max
    25s fails it."""
    p50 = startup("ramp", "pod startup p50 < 20s", PODS, seen(100.0))
    assert (p50.verdict, p50.observed, p50.detail) == (
        Verdict.PASSED,
        10.0,
        "p50 10.0s over 2 pods",
    )
    worst = startup("ramp", "pod startup max < 20s", PODS, seen(100.0))
    assert (worst.verdict, worst.observed) == (Verdict.FAILED, 25.0)


def test_the_scenario_covers_the_pods_created_during_the_phases() -> None:
    """a, b and c (2s, 10s, 25s): p90 is the third, 25s; d came after the phases."""
    judged = startup("scenario", "pod startup p90 <= 30s", PODS, seen(100.0))
    assert (judged.verdict, judged.observed) == (Verdict.PASSED, 25.0)
    assert judged.detail == "p90 25.0s over 3 pods"


def test_a_pod_never_ready_counts_as_infinity() -> None:
    """e, created at 50, never ready by the end of the wait (80): p50 of 10s, 25s and never is
    25s (fails), unless e was ready at 66 (16s: p50 16s passes)."""
    slow = [*PODS, PodRecord("e", created=50.0)]
    never = startup("ramp", "pod startup p50 < 20s", slow, seen(100.0))
    assert (never.verdict, never.observed) == (Verdict.FAILED, 25.0)
    assert never.detail == "p50 25.0s over 3 pods (1 never ready)"
    worst = startup("ramp", "pod startup max < 20s", slow, seen(100.0))
    assert (worst.verdict, worst.observed) == (Verdict.FAILED, None)
    assert worst.detail.startswith("max never ready")
    ready = [*PODS, PodRecord("e", created=50.0, ready=66.0)]
    late = startup("ramp", "pod startup p50 < 20s", ready, seen(100.0))
    assert (late.verdict, late.observed) == (Verdict.PASSED, 16.0)


def test_a_pod_still_starting_keeps_the_verdict_open() -> None:
    """At 62 e has been starting 12s: p50 may end 12s to never, so it is not judged yet; max
    has already failed (b took 25s). A pod deleted before Ready is never ready at once: p50 of
    10s and never is 10s (nearest rank of two: the first), so it still holds."""
    starting = [*PODS, PodRecord("e", created=50.0)]
    p50 = startup("ramp", "pod startup p50 < 20s", starting, seen(62.0))
    assert p50.verdict is Verdict.NOT_JUDGED
    assert awaiting_data(expectation("ramp", "pod startup p50 < 20s"), seen(62.0))
    worst = startup("ramp", "pod startup max < 20s", starting, seen(62.0))
    assert worst.verdict is Verdict.FAILED
    deleted = [*PODS[:1], PodRecord("e", created=50.0, deleted=52.0)]
    gone = startup("ramp", "pod startup p50 < 20s", deleted, seen(62.0))
    assert (gone.verdict, gone.detail) == (Verdict.PASSED, "p50 10.0s over 2 pods (1 never ready)")


def test_every_pod_ready_decides_before_the_wait_ends() -> None:
    judged = startup("ramp", "pod startup p50 < 20s", PODS, seen(62.0))
    assert judged.verdict is Verdict.PASSED


def test_pod_startup_needs_pods() -> None:
    e = expectation("ramp", "pod startup p50 < 20s")
    assert judge_pod_startup(e, None, seen(100.0)).detail == NO_PODS
    empty = judge_pod_startup(e, [PODS[2]], seen(100.0))
    assert (empty.verdict, empty.detail) == (Verdict.NOT_JUDGED, "no pod was created in scope")
    judged = judge_scaling(e, [], PODS, seen(100.0), plan().phases)
    assert judged.verdict is Verdict.PASSED


def test_nearest_rank() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert [nearest_rank(values, p) for p in (50.0, 90.0, 95.0, 99.0)] == [2.0, 4.0, 4.0, 4.0]
    assert nearest_rank(values, 25.0) == 1.0
    assert nearest_rank([1.0, math.inf], None) == math.inf

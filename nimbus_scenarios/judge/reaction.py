"""`expect reaction` and `expect pod startup`: what the replica source recorded in, a verdict out
(pure functions; every time a run offset).

`reaction` is judged on the replica samples: in a phase, the time from its start to the first
rise of desired replicas, looked for up to D past its end (the plan's `end_s`); at scenario
level, for each phase that ran, its first rise before the next phase starts (the last: up to D
past its end), and the longest of these. `pod startup` is judged on the pod records: each pod
created in scope, from creation to Ready; a pod not ready when its answer is known counts as
never ready (+infinity). As for replica windows (`judge.windows`), nothing is judged past the
data known complete (`Seen.data_until_s`): what that data cannot decide yet is `not_judged`,
never passed, and `judge.windows.awaiting_data` says whether waiting could decide it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

from nimbus_scenarios.judge.windows import NO_SOURCE, Seen, unseen_detail
from nimbus_scenarios.language.nodes import Comparator
from nimbus_scenarios.language.vocabulary import ExpectationKind
from nimbus_scenarios.plan.model import ExpectationPlan, PhasePlan
from nimbus_scenarios.results.model import Judgement, ReplicaPoint, Verdict
from nimbus_scenarios.scaling import PodRecord

__all__ = [
    "NO_PODS",
    "judge_pod_startup",
    "judge_reaction",
    "judge_scaling",
    "nearest_rank",
]

NO_PODS = "the replica source records no pods"
_BELOW = {Comparator.LT, Comparator.LE}
"""Comparators a later (larger) time can only break: once broken, the verdict is known."""


def judge_scaling(
    e: ExpectationPlan,
    points: Sequence[ReplicaPoint],
    pods: Sequence[PodRecord] | None,
    seen: Seen,
    phases: Sequence[PhasePlan],
) -> Judgement:
    """Judge a `reaction` or `pod startup` expectation; `pods` is None when the source records
    no pods (or was not asked to watch them)."""
    if e.kind is ExpectationKind.REACTION:
        return judge_reaction(e, points, seen, phases)
    return judge_pod_startup(e, pods, seen)


def _unknown(e: ExpectationPlan, seen: Seen, end_s: float) -> Judgement:
    detail = unseen_detail(seen, end_s) or f"waiting for data up to +{max(end_s, 0.0):.0f}s"
    return Judgement(e, Verdict.NOT_JUDGED, detail=detail)


def _first_rise(
    points: Sequence[ReplicaPoint], lo: float, hi: float, *, closed: bool
) -> ReplicaPoint | None:
    """The first sample in [lo, hi] (`closed`) or [lo, hi) whose desired count is above the
    one before it."""
    for before, point in pairwise(points):
        inside = lo <= point.t_s <= hi if closed else lo <= point.t_s < hi
        if inside and point.desired > before.desired:
            return point
        if point.t_s > hi:
            break
    return None


def judge_reaction(
    e: ExpectationPlan,
    points: Sequence[ReplicaPoint],
    seen: Seen,
    phases: Sequence[PhasePlan],
) -> Judgement:
    """Judge `expect reaction CMP D` of a phase or the scenario on the replica samples."""
    if not seen.has_source:
        return Judgement(e, Verdict.NOT_JUDGED, detail=NO_SOURCE)
    if e.scope != "scenario":
        if e.scope not in seen.phases_run:
            return Judgement(e, Verdict.NOT_JUDGED, detail="the phase did not run")
        start = e.start_s or 0.0
        end = e.end_s if e.end_s is not None else start
        return _phase_reaction(e, points, seen, start, end)
    ran = [p for p in phases if p.name in seen.phases_run]
    if not ran:
        return Judgement(e, Verdict.NOT_JUDGED, detail="no phase ran")
    until = seen.data_until_s
    times: list[tuple[float, ReplicaPoint, str]] = []
    for index, phase in enumerate(ran):
        last = index + 1 == len(ran)
        hi = phase.end_s + e.value if last else ran[index + 1].start_s
        rise = _first_rise(points, phase.start_s, min(hi, until), closed=last)
        if rise is not None:
            times.append((rise.t_s - phase.start_s, rise, phase.name))
    end = ran[-1].end_s + e.value
    if not times:
        if until >= end:
            return Judgement(e, Verdict.FAILED, detail="no rise of desired replicas in any phase")
        return _unknown(e, seen, end)
    slowest, rise, name = max(times, key=lambda found: found[0])
    holds = e.comparator.holds(slowest, e.value)
    if until < end and (holds or e.comparator not in _BELOW):
        return _unknown(e, seen, end)
    detail = f"longest {slowest:.1f}s, in {name}: " + ", ".join(
        f"{t:.1f}s in {phase}" for t, _, phase in times
    )
    return Judgement(e, _verdict(holds), slowest, rise.t_s, detail)


def _phase_reaction(
    e: ExpectationPlan, points: Sequence[ReplicaPoint], seen: Seen, start: float, end: float
) -> Judgement:
    until = seen.data_until_s
    rise = _first_rise(points, start, min(end, until), closed=True)
    if rise is not None:
        taken = rise.t_s - start
        detail = f"desired replicas rose to {rise.desired} {taken:.1f}s after {e.scope} started"
        return Judgement(e, _verdict(e.comparator.holds(taken, e.value)), taken, rise.t_s, detail)
    elapsed = max(min(until, end) - start, 0.0)
    if until >= end:
        detail = f"no rise of desired replicas within {e.value:g}s of the phase end"
        return Judgement(e, Verdict.FAILED, detail=detail)
    if e.comparator in _BELOW and not e.comparator.holds(elapsed, e.value):
        detail = f"no rise of desired replicas in the first {elapsed:.1f}s of {e.scope}"
        return Judgement(e, Verdict.FAILED, detail=detail)
    return _unknown(e, seen, end)


def nearest_rank(values: Sequence[float], percentile: float | None) -> float:
    """The nearest-rank percentile of `values` (not empty): the smallest value with at least
    `percentile`% of them at or below it; None: the maximum."""
    ordered = sorted(values)
    if percentile is None:
        return ordered[-1]
    rank = max(math.ceil(percentile / 100.0 * len(ordered)), 1)
    return ordered[rank - 1]


def judge_pod_startup(
    e: ExpectationPlan, pods: Sequence[PodRecord] | None, seen: Seen
) -> Judgement:
    """Judge `expect pod startup pNN|max CMP D` over the pods created in scope (a phase: from
    its start to its end; the scenario: during the phases); `pods` None: not recorded."""
    if not seen.has_source:
        return Judgement(e, Verdict.NOT_JUDGED, detail=NO_SOURCE)
    if pods is None:
        return Judgement(e, Verdict.NOT_JUDGED, detail=NO_PODS)
    if e.scope != "scenario" and e.scope not in seen.phases_run:
        return Judgement(e, Verdict.NOT_JUDGED, detail="the phase did not run")
    end = e.end_s if e.end_s is not None else seen.phases_end_s
    lo = e.start_s or 0.0
    hi = end - e.value  # the scope's end: the plan waits D past it
    until = seen.data_until_s
    complete = until >= end
    scope = [p for p in pods if p.created is not None and lo <= p.created < min(hi, until)]
    # Each pod's start-up as far as known: (lowest it can still be, whether it is final).
    known = [_startup(p, until, complete) for p in scope]
    if not scope:
        if until >= hi:
            return Judgement(e, Verdict.NOT_JUDGED, detail="no pod was created in scope")
        return _unknown(e, seen, end)
    percentile = e.subject.percentile
    lowest = nearest_rank([t for t, _ in known], percentile)
    highest = nearest_rank([t if final else math.inf for t, final in known], percentile)
    holds = e.comparator.holds(lowest, e.value)
    if lowest != highest or until < hi:
        # Pods still starting (or still to be created) may move the statistic: decided only
        # when every value it can still take gives the same verdict.
        monotone = e.comparator in _BELOW or e.comparator in {Comparator.GT, Comparator.GE}
        settled = monotone and holds == e.comparator.holds(highest, e.value) and until >= hi
        if not (settled or (e.comparator in _BELOW and not holds and _max_only(percentile))):
            return _unknown(e, seen, end)
    never = sum(1 for t, final in known if final and math.isinf(t))
    starting = sum(1 for _, final in known if not final)
    statistic = str(e.subject).removeprefix("pod startup ")
    shown = "never ready" if math.isinf(lowest) else f"{lowest:.1f}s"
    if starting:
        shown = f"at least {shown}"
    detail = f"{statistic} {shown} over {len(scope)} pod{'s' if len(scope) != 1 else ''}"
    notes = [f"{never} never ready"] if never else []
    notes += [f"{starting} still starting"] if starting else []
    if notes:
        detail += f" ({', '.join(notes)})"
    observed = None if math.isinf(lowest) else lowest
    return Judgement(e, _verdict(holds), observed, None, detail)


def _max_only(percentile: float | None) -> bool:
    """`max` can only grow as pods are added or finish starting."""
    return percentile is None


def _startup(pod: PodRecord, until: float, complete: bool) -> tuple[float, bool]:
    """A pod's start-up as known at `until`: (seconds, final) when it was ready by then, or
    (+inf, final) when it never will be (deleted first, or the wait is over); else the time
    it has been starting so far, not final."""
    created = pod.created if pod.created is not None else until
    if pod.ready is not None and pod.ready <= until:
        return (max(pod.ready - created, 0.0), True)
    if complete or (pod.deleted is not None and pod.deleted <= until):
        return (math.inf, True)
    return (max(until - created, 0.0), False)


def _verdict(ok: bool) -> Verdict:
    return Verdict.PASSED if ok else Verdict.FAILED

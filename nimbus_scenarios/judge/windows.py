"""Replica windows: a step series of replica counts in, a verdict out (pure functions).

`judge_window` judges one `within`, `throughout` or `at end` expectation of a phase or the
scenario over the series the run saw, given how far the run and its replica source got
(`Seen`). A window is judged only on data known complete: up to the run's offset, the moment the
source was lost, and the moment up to which the source proved its data fresh, whichever comes
first (`Seen.data_until_s`). A window that data does not reach the end of is passed if the
condition already held (`within`), failed if it already broke (`throughout`), and otherwise not
judged, never passed; samples recorded after that moment are not used, since a change learnt
late may have happened earlier. `awaiting_data` says whether waiting could still decide a window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nimbus_scenarios.language.nodes import WindowKind
from nimbus_scenarios.language.vocabulary import Subject
from nimbus_scenarios.plan.model import ExpectationPlan
from nimbus_scenarios.results.model import Judgement, ReplicaPoint, Verdict

__all__ = [
    "NO_SOURCE",
    "Seen",
    "awaiting_data",
    "judge_series",
    "judge_window",
    "replica_value",
    "unseen_detail",
]

NO_SOURCE = "no replica source: run in the cluster (watch) or with --local"


@dataclass(frozen=True, slots=True)
class Seen:
    """How far a run got, as run offsets: what a window may be judged on."""

    until_s: float
    """The run's offset now (or at its end)."""
    phases_run: Mapping[str, tuple[float, float]]
    """Each phase that ran: (start, end)."""
    phases_end_s: float
    """Where the plan's last phase ends (a scenario-level window's end)."""
    stopped: bool = False
    """The run was stopped early (a guard, a signal, the deadline)."""
    lost_at_s: float | None = None
    """When the replica source was lost, if it was."""
    has_source: bool = True
    fresh_until_s: float = math.inf
    """How far the source's data is known complete (`ReplicaSource.fresh_until`; -inf: nothing
    proven yet; inf, the default: not limited)."""
    stale: bool = False
    """The source has proven nothing for longer than its bound: its data will not become fresh
    beyond `fresh_until_s` any more."""

    @property
    def data_until_s(self) -> float:
        """How far windows may be judged: the run's offset, the loss, the freshness, the first."""
        lost = math.inf if self.lost_at_s is None else self.lost_at_s
        return min(self.until_s, lost, self.fresh_until_s)


def replica_value(e: ExpectationPlan, point: ReplicaPoint) -> int:
    """The count an expectation looks at: ready (the default) or desired replicas."""
    return point.desired if e.subject is Subject.DESIRED_REPLICAS else point.ready


def judge_window(e: ExpectationPlan, series: Sequence[ReplicaPoint], seen: Seen) -> Judgement:
    """Judge a phase's or the scenario's replica window on the series seen so far."""
    if not seen.has_source:
        return Judgement(e, Verdict.NOT_JUDGED, detail=NO_SOURCE)
    if e.scope != "scenario" and e.scope not in seen.phases_run:
        return Judgement(e, Verdict.NOT_JUDGED, detail="the phase did not run")
    start = e.start_s or 0.0
    end = e.end_s if e.end_s is not None else seen.phases_end_s
    ran = seen.phases_run.get(e.scope)
    cut_short = ran is not None and seen.stopped and ran[1] + 1e-6 < end
    if e.window is not WindowKind.WITHIN and cut_short:
        return Judgement(e, Verdict.NOT_JUDGED, detail="the run stopped before the phase end")
    until = seen.data_until_s
    judgement = judge_series(e, series, start_s=start, end_s=end, seen_until_s=until)
    if judgement.verdict is not Verdict.NOT_JUDGED or until >= end or not series:
        return judgement
    detail = unseen_detail(seen, end)
    if detail is None:
        return judgement
    return Judgement(e, Verdict.NOT_JUDGED, detail=detail)


def unseen_detail(seen: Seen, end_s: float) -> str | None:
    """Why the data known complete stops short of `end_s`, a window's end: the source lost or
    stale, the run stopped, the data proven fresh only so far; None when none of these (the
    run is still going)."""
    until = seen.data_until_s
    lost = seen.lost_at_s
    fresh = seen.fresh_until_s
    if lost is not None:
        return f"the replica source was lost at +{_offset(lost)}s, before the window closed"
    if fresh <= until and seen.stale:
        return (
            f"replica data stale from +{_offset(fresh)}s (the source's last update), "
            f"before the window closed at +{_offset(end_s)}s"
        )
    if seen.stopped:
        return f"the run was stopped at +{_offset(seen.until_s)}s, before the window closed"
    if fresh <= until:
        return f"replica data proven fresh only to +{_offset(fresh)}s, before the window closed"
    return None


def awaiting_data(e: ExpectationPlan, seen: Seen) -> bool:
    """Whether more data could still decide window `e` (a replica window, `reaction` or `pod
    startup`): its end lies beyond the data known complete, and the source may yet prove it
    (not lost, not stale, the run not stopped)."""
    if not seen.has_source or seen.stopped or seen.stale or seen.lost_at_s is not None:
        return False
    if e.scope != "scenario" and e.scope not in seen.phases_run:
        return False
    end = e.end_s if e.end_s is not None else seen.phases_end_s
    return seen.data_until_s < end


def judge_series(
    e: ExpectationPlan,
    series: Sequence[ReplicaPoint],
    *,
    start_s: float,
    end_s: float,
    seen_until_s: float,
) -> Judgement:
    """Judge a replica window over a step series (each point holds until the next).

    `start_s`/`end_s` bound the window (for `within`: [start, start + D]; `throughout`: the
    phase; `at end`: its end); `seen_until_s` is how far the source saw (the moment it was
    lost, or the end of the run).
    """
    if not series:
        return Judgement(e, Verdict.NOT_JUDGED, detail="no replica samples")
    moments = _moments(e, series, start_s, min(end_s, seen_until_s))
    if e.window is WindowKind.AT_END:
        if seen_until_s < end_s:
            return _unseen(e, seen_until_s)
        value = moments[-1][1] if moments else None
        if value is None:
            return Judgement(e, Verdict.NOT_JUDGED, detail="no sample before the phase end")
        return Judgement(e, _verdict(_holds(e, value)), value, end_s, f"{value} at the end")
    if e.window is WindowKind.THROUGHOUT:
        for t, value in moments:
            if not _holds(e, value):
                return Judgement(e, Verdict.FAILED, value, None, _at(e, value, t - start_s))
        if seen_until_s < end_s or not moments:
            return _unseen(e, seen_until_s)
        lowest = min(v for _, v in moments)
        return Judgement(e, Verdict.PASSED, lowest, start_s, "held throughout")
    for t, value in moments:  # within
        if _holds(e, value):
            return Judgement(e, Verdict.PASSED, value, t, _at(e, value, t - start_s))
    if seen_until_s < end_s:
        return _unseen(e, seen_until_s)
    last = moments[-1][1] if moments else None
    return Judgement(e, Verdict.FAILED, last, None, "never held in the window")


def _holds(e: ExpectationPlan, observed: float) -> bool:
    return e.comparator.holds(observed, e.value)


def _verdict(ok: bool) -> Verdict:
    return Verdict.PASSED if ok else Verdict.FAILED


def _moments(
    e: ExpectationPlan, series: Sequence[ReplicaPoint], start: float, end: float
) -> list[tuple[float, int]]:
    """(time, value) at the window start (the state carried in) and at each change inside it.

    Before the first sample nothing is known, so the window effectively starts there.
    """
    moments: list[tuple[float, int]] = []
    carried: ReplicaPoint | None = None
    for point in series:
        if point.t_s <= start:
            carried = point
        elif point.t_s <= end:
            moments.append((point.t_s, replica_value(e, point)))
        else:
            break
    if carried is not None:
        moments.insert(0, (start, replica_value(e, carried)))
    return moments


def _unseen(e: ExpectationPlan, seen_until_s: float) -> Judgement:
    detail = f"the replica source was lost at +{_offset(seen_until_s)}s, before the window closed"
    return Judgement(e, Verdict.NOT_JUDGED, detail=detail)


def _offset(at_s: float) -> str:
    """A run offset in whole seconds; never negative (the last contact may precede offset 0,
    the pre-flight list: never "+-0s")."""
    return f"{max(at_s, 0.0):.0f}"


def _at(e: ExpectationPlan, value: int, into_s: float) -> str:
    """`ready replicas 3 at +74s into ramp`: a replica count and when, in its scope's terms."""
    where = "the run" if e.scope == "scenario" else e.scope
    return f"{e.subject} {value} at +{into_s:.0f}s into {where}"

"""Judging expectations: load statistics and replica series in, verdicts out (pure functions).

A verdict is `passed`, `failed` or `not_judged`. Nothing is ever passed for lack of data: no
requests in scope, no replica source, or a replica source lost during the window all give
`not_judged`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from nimbus_scenarios.engine.stats import PhaseStats
from nimbus_scenarios.language.nodes import Comparator
from nimbus_scenarios.plan.model import ExpectationPlan

__all__ = ["Judgement", "Point", "Verdict", "judge_load", "judge_replicas", "replica_value"]


class Verdict(StrEnum):
    """The outcome of one expectation."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_JUDGED = "not_judged"


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict with what was observed and, for windows, when the condition first held."""

    expectation: ExpectationPlan
    verdict: Verdict
    observed: float | None = None
    met_at_s: float | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Point:
    """A replica sample as a run offset: (t_s, ready, desired)."""

    t_s: float
    ready: int
    desired: int


_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}


def _holds(e: ExpectationPlan, observed: float) -> bool:
    return Comparator(e.comparator).holds(observed, e.value)


def judge_load(e: ExpectationPlan, stats: PhaseStats, *, scheduled: int | None = None) -> Judgement:
    """Judge a latency, `errors` or `achieved` expectation over the requests in `stats`.

    `scheduled` is what the plan scheduled in scope (None for closed-model scopes, where every
    request a user starts is one it scheduled).
    """
    if e.kind == "latency":
        if stats.latency.total_count == 0:
            return Judgement(e, Verdict.NOT_JUDGED, detail="no request completed in scope")
        if e.subject == "max":
            micros: float = stats.latency.max_value()
        elif e.subject == "mean":
            micros = stats.latency.mean_value()
        else:
            micros = stats.latency.value_at_percentile(_PERCENTILES[e.subject])
        observed = micros / 1_000_000.0
        return Judgement(e, _verdict(_holds(e, observed)), observed, detail=f"{observed:.3f}s")
    if e.kind == "errors":
        done = stats.succeeded + stats.failed
        if done == 0:
            return Judgement(e, Verdict.NOT_JUDGED, detail="no request completed in scope")
        observed = 100.0 * stats.failed / done
        return Judgement(
            e, _verdict(_holds(e, observed)), observed, detail=f"{stats.failed}/{done} failed"
        )
    if e.kind == "achieved":
        wanted = stats.scheduled if scheduled is None else scheduled
        if wanted == 0:
            return Judgement(e, Verdict.NOT_JUDGED, detail="nothing was scheduled in scope")
        observed = 100.0 * stats.sent / wanted
        return Judgement(
            e, _verdict(_holds(e, observed)), observed, detail=f"{stats.sent}/{wanted} sent"
        )
    raise ValueError(f"not a load expectation: {e.kind}")


def _verdict(ok: bool) -> Verdict:
    return Verdict.PASSED if ok else Verdict.FAILED


def replica_value(e: ExpectationPlan, point: Point) -> int:
    """The count an expectation looks at: ready (the default) or desired replicas."""
    return point.desired if e.subject == "desired replicas" else point.ready


def judge_replicas(
    e: ExpectationPlan,
    series: Sequence[Point],
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
    if e.window == "at end":
        if seen_until_s < end_s:
            return _unseen(e, seen_until_s)
        value = moments[-1][1] if moments else None
        if value is None:
            return Judgement(e, Verdict.NOT_JUDGED, detail="no sample before the phase end")
        return Judgement(e, _verdict(_holds(e, value)), value, end_s, f"{value} at the end")
    if e.window == "throughout":
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


def _moments(
    e: ExpectationPlan, series: Sequence[Point], start: float, end: float
) -> list[tuple[float, int]]:
    """(time, value) at the window start (the state carried in) and at each change inside it.

    Before the first sample nothing is known, so the window effectively starts there.
    """
    moments: list[tuple[float, int]] = []
    carried: Point | None = None
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
    return Judgement(
        e,
        Verdict.NOT_JUDGED,
        # The last contact may precede the run's offset 0 (the pre-flight list): never "+-0s".
        detail=(
            f"the replica source was lost at +{max(seen_until_s, 0.0):.0f}s, "
            "before the window closed"
        ),
    )


def _at(e: ExpectationPlan, value: int, into_s: float) -> str:
    """`ready replicas 3 at +74s into ramp`: a replica count and when, in its scope's terms."""
    where = "the run" if e.scope == "scenario" else e.scope
    return f"{e.subject} {value} at +{into_s:.0f}s into {where}"

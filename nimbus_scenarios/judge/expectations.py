"""Load expectations: a scope's statistics in, a verdict out (pure functions).

`judge_load` judges a latency statistic, `errors` or `achieved` over the requests of a phase or
of the whole run. Nothing is passed for lack of data: no request in scope gives `not_judged`.
Latency covers the requests that got a response, whatever its status (the engine times only
those: `engine.stats`), so a latency statistic over no response (every request reset, refused,
timed out or cancelled) is `not_judged` ("no response in scope"), never passed.
An expectation with `of NAME` (`ExpectationPlan.request`) is judged over that template's
requests in scope only (`scope_of`), and its `achieved` against what the plan scheduled of that
template (`planned_of`).
Replica windows are `judge.windows`'; the `before`/`after` checks are judged as the runner
probes them.
"""

from __future__ import annotations

from collections.abc import Mapping

from nimbus_scenarios.engine.records import DropKind
from nimbus_scenarios.engine.stats import PhaseStats
from nimbus_scenarios.language.vocabulary import ExpectationKind, Subject
from nimbus_scenarios.plan.model import ExpectationPlan
from nimbus_scenarios.results.model import Judgement, Verdict

__all__ = ["NO_RESPONSE", "judge_load", "planned_of", "scope_of"]

NO_RESPONSE = "no response in scope"
"""The detail of a latency expectation that is not judged because nothing in scope got a
response."""


def scope_of(e: ExpectationPlan, stats: PhaseStats) -> PhaseStats:
    """The statistics `e` is judged on: `stats` itself, or for `of NAME` a view holding only
    that template's (empty when the scope never scheduled it)."""
    if e.request is None:
        return stats
    view = PhaseStats(stats.name, stats.series)
    found = stats.requests.get(e.request)
    if found is not None:
        view.requests[e.request] = found
    return view


def planned_of(
    name: str,
    stats: PhaseStats,
    *,
    planned: int | None,
    plan_counts: Mapping[str, int] | None,
    plan_total: int | None,
) -> int | None:
    """What the plan scheduled of template `name` in a scope (one phase), given `planned`,
    what it scheduled of every template there for this run, shard or merge (None for a closed
    model), and the plan's own per-template counts of the whole phase.

    When every planned arrival was scheduled, the template's own count is exact (a shard's
    arrivals are every n-th of the phase, so its share of a template is known only once they
    are counted). When fewer were (the run was stopped), it is the plan's count for a whole
    run, and for a shard's share the plan's count in proportion, rounded.
    """
    if planned is None:
        return None
    request = stats.requests.get(name)
    counted = request.scheduled if request is not None else 0
    if planned == stats.scheduled or plan_counts is None or not plan_total:
        return counted
    whole = plan_counts.get(name, 0)
    if planned == plan_total:
        return whole
    return max(counted, round(whole * planned / plan_total))


def judge_load(e: ExpectationPlan, stats: PhaseStats, *, scheduled: int | None = None) -> Judgement:
    """Judge a latency, `errors` or `achieved` expectation over the requests in `stats` (only
    those of template `e.request` when it names one: then `scheduled` is that template's).

    Latency is judged over the responses in scope (`stats.latency` holds one value each).

    `scheduled` is what the plan scheduled in scope (None for closed-model scopes, where every
    request a user starts is one it scheduled).
    """
    stats = scope_of(e, stats)
    if e.request is not None and not stats.requests:
        return Judgement(e, Verdict.NOT_JUDGED, detail=f"no `{e.request}` request in scope")
    if e.kind is ExpectationKind.LATENCY:
        if stats.latency.total_count == 0:
            return Judgement(e, Verdict.NOT_JUDGED, detail=NO_RESPONSE)
        percentile = e.subject.percentile
        if percentile is not None:
            micros: float = stats.latency.value_at_percentile(percentile)
        elif e.subject is Subject.MAX:
            micros = stats.latency.max_value()
        else:
            micros = stats.latency.mean_value()
        observed = micros / 1_000_000.0
        return Judgement(e, _verdict(e, observed), observed, detail=f"{observed:.3f}s")
    if e.kind is ExpectationKind.ERRORS:
        done = stats.succeeded + stats.failed
        if done == 0:
            return Judgement(e, Verdict.NOT_JUDGED, detail="no request completed in scope")
        observed = 100.0 * stats.failed / done
        return Judgement(e, _verdict(e, observed), observed, detail=f"{stats.failed}/{done} failed")
    if e.kind is ExpectationKind.ACHIEVED:
        wanted = stats.scheduled if scheduled is None else scheduled
        if wanted == 0:
            return Judgement(e, Verdict.NOT_JUDGED, detail="nothing was scheduled in scope")
        observed = 100.0 * stats.sent / wanted
        detail = f"{stats.sent}/{wanted} sent"
        late = stats.dropped_by_kind.get(DropKind.LATE_START, 0)
        if late:
            # Due before a late shard started, so never sent: the target got less than the
            # plan, and `achieved` says so (docs/scenario-language.md, "A late shard").
            detail += f", {late} dropped for a late start"
        return Judgement(e, _verdict(e, observed), observed, detail=detail)
    raise ValueError(f"not a load expectation: {e.kind}")


def _verdict(e: ExpectationPlan, observed: float) -> Verdict:
    return Verdict.PASSED if e.comparator.holds(observed, e.value) else Verdict.FAILED

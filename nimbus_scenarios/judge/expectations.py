"""Load expectations: a scope's statistics in, a verdict out (pure functions).

`judge_load` judges a latency statistic, `errors` or `achieved` over the requests of a phase or
of the whole run. Nothing is passed for lack of data: no request in scope gives `not_judged`.
Latency covers the requests that got a response, whatever its status (the engine times only
those: `engine.stats`), so a latency statistic over no response (every request reset, refused,
timed out or cancelled) is `not_judged` ("no response in scope"), never passed.
Replica windows are `judge.windows`'; the `before`/`after` checks are judged as the runner
probes them.
"""

from __future__ import annotations

from nimbus_scenarios.engine.records import DropKind
from nimbus_scenarios.engine.stats import PhaseStats
from nimbus_scenarios.language.vocabulary import ExpectationKind, Subject
from nimbus_scenarios.plan.model import ExpectationPlan
from nimbus_scenarios.results.model import Judgement, Verdict

__all__ = ["NO_RESPONSE", "judge_load"]

NO_RESPONSE = "no response in scope"
"""The detail of a latency expectation that is not judged because nothing in scope got a
response."""


def judge_load(e: ExpectationPlan, stats: PhaseStats, *, scheduled: int | None = None) -> Judgement:
    """Judge a latency, `errors` or `achieved` expectation over the requests in `stats`.

    Latency is judged over the responses in scope (`stats.latency` holds one value each).

    `scheduled` is what the plan scheduled in scope (None for closed-model scopes, where every
    request a user starts is one it scheduled).
    """
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

"""The `before` and `after` stages: the steady-state hypothesis, probed until it holds.

`expect NAME succeeds [within D]` sends the request every second (and once more at the
window's end) until it succeeds; `expect replicas CMP N within D` watches the replica source
until the condition holds, judging only on data the source has proven fresh (stale data is not
judged). A stop abandons a probe in flight: the expectation is then not judged either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nimbus_scenarios.judge.windows import NO_SOURCE, replica_value
from nimbus_scenarios.language.vocabulary import ExpectationKind
from nimbus_scenarios.plan.model import ExpectationPlan
from nimbus_scenarios.results.model import Judgement, ReplicaPoint, Stage, Verdict
from nimbus_scenarios.runner.context import Interrupted, RunContext, unless

__all__ = ["run_hypotheses"]

RETRY_S = 1.0
"""How often a `succeeds` probe is sent again."""
REPLICA_POLL_S = 0.25
"""How often a replica probe looks at the source's latest sample."""


async def run_hypotheses(ctx: RunContext, stage: Stage, items: Sequence[ExpectationPlan]) -> bool:
    """Check a stage's expectations together; False if any failed."""
    if not items:
        return True
    ctx.enter(stage)
    results = await asyncio.gather(*(_probe(ctx, e) for e in items))
    for e, judgement in zip(items, results, strict=True):
        ctx.state.decided[id(e)] = judgement
        ctx.events.expectation_decided(judgement, judgement.met_at_s)
    return all(j.verdict is not Verdict.FAILED for j in results)


async def _probe(ctx: RunContext, e: ExpectationPlan) -> Judgement:
    if e.kind is ExpectationKind.SUCCEEDS:
        return await _succeeds(ctx, e)
    return await _replicas(ctx, e)


async def _succeeds(ctx: RunContext, e: ExpectationPlan) -> Judgement:
    template = ctx.templates[e.request or ""]
    clock = ctx.clock
    started = clock.now()
    window = e.window_s or 0.0
    attempts = 0
    last = ""
    while True:
        try:
            outcome = await unless(ctx.state.stop, ctx.transport.send(template.request))
        except Interrupted:
            return _stopped(e, f"after {_plural(attempts, 'attempt')}", last)
        attempts += 1
        if template.succeeded(outcome):
            return Judgement(
                e,
                Verdict.PASSED,
                1.0,
                clock.now() - started,
                f"succeeded after {_plural(attempts, 'attempt')}",
            )
        last = str(outcome.status) if outcome.status is not None else str(outcome.error)
        left = started + window - clock.now()
        if left <= 0:
            return Judgement(e, Verdict.FAILED, 0.0, None, f"{attempts} attempts, last: {last}")
        if not await ctx.sleep_until(clock.now() + min(RETRY_S, left)):
            return _stopped(e, f"after {_plural(attempts, 'attempt')}", last)


async def _replicas(ctx: RunContext, e: ExpectationPlan) -> Judgement:
    """Watch the source until the condition holds at a moment of the window that its data is
    proven fresh at; failed only once the data is proven fresh to the window's end without it
    holding; not judged if the data goes stale first (or the source is lost)."""
    source = ctx.source
    if source is None:
        return Judgement(e, Verdict.NOT_JUDGED, detail=NO_SOURCE)
    clock = ctx.clock
    started = clock.now()
    closes = started + (e.window_s or 0.0)
    observed = None
    while True:
        if source.lost_at is not None:
            return Judgement(e, Verdict.NOT_JUDGED, detail="the replica source was lost")
        fresh = source.fresh_until
        known = None if fresh is None else min(fresh, closes)
        if known is not None and known >= started:
            # The latest sample at or before `known` held from its time through `known`.
            latest = next((s for s in reversed(source.samples) if s.at <= known), None)
            if latest is not None:
                observed = replica_value(e, ReplicaPoint(0.0, latest.ready, latest.desired))
                if e.comparator.holds(observed, e.value):
                    return Judgement(
                        e, Verdict.PASSED, observed, clock.now() - started, f"{observed} replicas"
                    )
            if known >= closes:
                return Judgement(e, Verdict.FAILED, observed, None, "never held in the window")
        if ctx.replicas_stale():
            return Judgement(e, Verdict.NOT_JUDGED, detail=_stale(ctx, fresh, observed))
        wake = clock.now() + REPLICA_POLL_S
        if not await ctx.sleep_until(wake if clock.now() >= closes else min(wake, closes)):
            last = "" if observed is None else f"{observed} replicas"
            return _stopped(e, "before the window closed", last)


def _stale(ctx: RunContext, fresh: float | None, observed: int | None) -> str:
    """Why a replica probe is not judged: the source stopped proving its data fresh."""
    if fresh is None:
        return "replica data never proven fresh"
    last = "" if observed is None else f"; last: {observed} replicas"
    return f"replica data stale: nothing from the source for {ctx.clock.now() - fresh:.0f}s{last}"


def _stopped(e: ExpectationPlan, when: str, last: str) -> Judgement:
    """A `before`/`after` expectation the run was stopped in the middle of: not judged."""
    seen = f"; last: {last}" if last else ""
    return Judgement(e, Verdict.NOT_JUDGED, detail=f"the run was stopped {when}{seen}")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"

"""The end of a run: every expectation judged on what the run saw, the verdict, and the results
document built from the run's records."""

from __future__ import annotations

import asyncio
import datetime as dt

from nimbus_scenarios.engine.loop import loop_name
from nimbus_scenarios.engine.stats import PhaseStats
from nimbus_scenarios.judge.expectations import judge_load, planned_of, scope_of
from nimbus_scenarios.judge.reaction import judge_scaling
from nimbus_scenarios.judge.scaling import scaling_record
from nimbus_scenarios.judge.verdict import run_verdict
from nimbus_scenarios.judge.windows import Seen, judge_window
from nimbus_scenarios.language.vocabulary import ExpectationKind
from nimbus_scenarios.plan.arrivals import shard_share
from nimbus_scenarios.plan.model import ExpectationPlan, PhasePlan
from nimbus_scenarios.results.build import RunFacts, build_results, round_offset
from nimbus_scenarios.results.model import (
    Abort,
    Judgement,
    ReplicaPoint,
    ReplicaSourceResult,
    SampleResult,
    Verdict,
)
from nimbus_scenarios.runner.context import RunContext
from nimbus_scenarios.runner.options import RunOutcome
from nimbus_scenarios.scaling import PodRecord, ScalingRecord

__all__ = ["judge_all", "judge_recorded", "results_now"]


def _not_run(e: ExpectationPlan, what: str) -> Judgement:
    return Judgement(e, Verdict.NOT_JUDGED, detail=f"the {what} did not run")


def _planned(ctx: RunContext, phase: PhasePlan, stats: PhaseStats) -> int | None:
    """This shard's share of what the plan scheduled for the part of the phase that ran."""
    if phase.scheduled_total is None:
        return None
    ran = ctx.state.phases_run.get(phase.name)
    if ran is None or ran[1] + 1e-6 >= phase.end_s or ctx.state.abort is None:
        shard = ctx.options.shard
        return shard_share(phase.scheduled_total, shard.index, shard.count)
    return stats.scheduled  # stopped early: judge against what was due before the stop


def _planned_for(
    ctx: RunContext, e: ExpectationPlan, phase: PhasePlan, stats: PhaseStats
) -> int | None:
    """What the plan scheduled in scope for `e`: the phase's share, or its template's."""
    planned = _planned(ctx, phase, stats)
    if e.request is None:
        return planned
    return planned_of(
        e.request,
        stats,
        planned=planned,
        plan_counts=phase.scheduled,
        plan_total=phase.scheduled_total,
    )


def judge_recorded(
    ctx: RunContext,
    e: ExpectationPlan,
    seen: Seen,
    points: list[ReplicaPoint],
    pods: tuple[PodRecord, ...] | None,
) -> Judgement:
    """A replica window, `reaction` or `pod startup` judged on what the source recorded."""
    if e.kind is ExpectationKind.REPLICAS:
        return judge_window(e, points, seen)
    return judge_scaling(e, points, pods, seen, ctx.plan.phases)


def judge_all(ctx: RunContext) -> list[Judgement]:
    """Every verdict, in plan order. A shard other than 0 judges only its own load: replica
    windows and the `before`/`after` hypotheses are shard 0's."""
    plan = ctx.plan
    primary = ctx.primary
    decided = ctx.state.decided
    judgements: list[Judgement] = []
    if primary:
        judgements.extend(decided.get(id(e)) or _not_run(e, "before") for e in plan.before)
    seen = ctx.seen()
    points = ctx.replica_points()
    pods = ctx.scaling_pods()
    phases = ctx.stats.phases
    for phase in plan.phases:
        stats = phases.get(phase.name)
        for e in phase.expectations:
            if e.kind.watched:
                if primary:
                    judgements.append(judge_recorded(ctx, e, seen, points, pods))
            elif stats is None:
                judgements.append(_not_run(e, "phase"))
            else:
                judgements.append(
                    judge_load(e, stats, scheduled=_planned_for(ctx, e, phase, stats))
                )
    total = ctx.stats.total()
    for e in plan.expectations:
        if e.kind.watched:
            if primary:
                judgements.append(judge_recorded(ctx, e, seen, points, pods))
        elif not phases:
            judgements.append(_not_run(e, "run"))
        else:
            planned_total = sum(
                _planned_for(ctx, e, p, phases[p.name]) or scope_of(e, phases[p.name]).scheduled
                for p in plan.phases
                if p.name in phases
            )
            judgements.append(judge_load(e, total, scheduled=planned_total))
    if primary:
        judgements.extend(decided.get(id(e)) or _not_run(e, "after") for e in plan.after)
    return judgements


def _source_result(ctx: RunContext) -> ReplicaSourceResult | None:
    source = ctx.source
    if source is None:
        return None
    lost = source.lost_at
    return ReplicaSourceResult(
        description=source.description,
        autoscaler=source.autoscaler,
        lost_at_s=None if lost is None else round(lost - ctx.origin, 3),
        samples=tuple(
            SampleResult(
                t_s=round(s.at - ctx.origin, 3),
                ready=s.ready,
                desired=s.desired,
                current=s.current,
                autoscaler=s.autoscaler,
            )
            for s in source.samples
        ),
    )


def _scaling(ctx: RunContext) -> ScalingRecord | None:
    """Why it scaled, from the replica source (None without one, or before it started)."""
    source = ctx.source
    if source is None or not source.samples:
        return None
    return scaling_record(ctx.recorder(), ctx.origin, ctx.plan, list(source.samples))


def results_now(
    ctx: RunContext, infrastructure: str | None, *, scenario_text: str, trace_id: str | None
) -> RunOutcome:
    """Judge what the run has seen so far and build its results document (the runner calls
    it before cleanup, so the results exist if the process is killed there, and at the end)."""
    state = ctx.state
    judgements = [] if infrastructure or not state.started else judge_all(ctx)
    lost = ctx.source is not None and ctx.source.lost_at is not None
    verdict, code = run_verdict(
        judgements,
        aborted=state.abort is not None,
        infrastructure=infrastructure is not None or lost or bool(state.worker_errors),
    )
    abort = state.abort
    lateness = ctx.dispatcher.lateness if ctx.dispatcher is not None else None
    facts = RunFacts(
        run_id=ctx.run_id,
        scenario_text=scenario_text,
        target=ctx.shown_url,
        shard=ctx.options.shard,
        started_at=dt.datetime.fromtimestamp(ctx.started_wall, dt.UTC),
        ended_at=dt.datetime.fromtimestamp(ctx.clock.wall(), dt.UTC),
        stage_reached=state.stage,
        error=infrastructure or "; ".join(state.worker_errors) or None,
        abort=None if abort is None else Abort(abort.reason, round_offset(abort.at_s), abort.stage),
        trace_id=trace_id,
        phases_run=state.phases_run,
        kills=state.kills,
        cleanup=state.cleanup,
        notes=[*state.notes, *ctx.events.failures],
        replica_source=_source_result(ctx),
        send_lateness_ms=(
            lateness.summary() if lateness is not None and lateness.total_count else None
        ),
        grafana_url=ctx.options.grafana_url,
        grafana_tempo_uid=ctx.options.grafana_tempo_uid,
        grafana_org=ctx.options.grafana_org,
        start_late_s=state.start_late_s,
        scaling=_scaling(ctx),
        event_loop=loop_name(asyncio.get_running_loop()),
    )
    results = build_results(ctx.plan, facts, ctx.stats.freeze(), judgements, verdict, code)
    return RunOutcome(results, code, ctx.shutdown_left())

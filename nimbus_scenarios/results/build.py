"""From what a run recorded to its results document: the engine's frozen statistics, the judge's
verdicts and the runner's facts in, a `RunResults` out. Shared by `run` and `merge`, so a merged
document is built by the same rules as a shard's.

Values are rounded here, once: run offsets and rates to the millisecond, observed values to six
decimals.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from nimbus_scenarios import __version__
from nimbus_scenarios.engine.records import LatencySummary, PhaseRecord, RequestRecord, StatsRecord
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.plan.arrivals import shard_share
from nimbus_scenarios.plan.model import PhasePlan, Plan
from nimbus_scenarios.results.model import (
    Abort,
    CleanupResult,
    Judgement,
    KillResult,
    LoadResult,
    PhaseResult,
    ReplicaPoint,
    ReplicaSourceResult,
    RequestResult,
    RunResults,
    RunVerdict,
    ShardInfo,
    Stage,
)
from nimbus_scenarios.results.scaling_section import round_scaling
from nimbus_scenarios.scaling import ScalingRecord
from nimbus_scenarios.secrets import mask_url, mask_urls_in_text, mask_values

__all__ = [
    "RunFacts",
    "build_results",
    "load_result",
    "phase_result",
    "round_offset",
    "rounded_judgement",
    "secret_values",
]


def round_offset(value: float | None) -> float | None:
    """A run offset, a duration or a rate as written: to the millisecond."""
    return None if value is None else round(value, 3)


def rounded_judgement(judgement: Judgement) -> Judgement:
    """The judgement as the document keeps it: observed to six decimals, offsets to ms."""
    observed = judgement.observed
    return dataclasses.replace(
        judgement,
        observed=None if observed is None else round(observed, 6),
        met_at_s=round_offset(judgement.met_at_s),
    )


def _request(record: RequestRecord) -> RequestResult:
    c = record.counts
    responded = any(record.status_counts.values())  # latency covers responses only
    return RequestResult(
        name=record.name,
        scheduled=c.scheduled,
        sent=c.sent,
        dropped=c.dropped,
        dropped_by_kind=dict(sorted(record.dropped_by_kind.items())),
        succeeded=c.succeeded,
        failed=c.failed,
        timed_out=c.timed_out,
        truncated=c.truncated,
        errors_by_kind=dict(sorted(record.errors_by_kind.items())),
        status_counts=dict(sorted(record.status_counts.items())),
        latency_ms=record.latency_ms if responded else None,
        service_ms=record.service_time_ms if responded else None,
    )


def load_result(record: PhaseRecord | None) -> LoadResult:
    """The load over a scope (all zero when nothing ran in it)."""
    if record is None:
        return LoadResult()
    c = record.counts
    responded = any(record.status_counts.values())  # latency covers responses only
    return LoadResult(
        scheduled=c.scheduled,
        sent=c.sent,
        dropped=c.dropped,
        dropped_by_kind=dict(sorted(record.dropped_by_kind.items())),
        succeeded=c.succeeded,
        failed=c.failed,
        timed_out=c.timed_out,
        truncated=c.truncated,
        errors_by_kind=dict(sorted(record.errors_by_kind.items())),
        status_counts=dict(sorted(record.status_counts.items())),
        latency_ms=record.latency_ms if responded else None,
        service_ms=record.service_time_ms if responded else None,
        requests=tuple(_request(r) for r in record.requests),
    )


def phase_result(
    phase: PhasePlan,
    record: PhaseRecord | None,
    *,
    ran_s: tuple[float, float] | None,
    planned: int | None,
    target_rate: float | None,
    achieved_rate: float | None,
) -> PhaseResult:
    """One phase's result from its plan, what it ran and what was recorded in it."""
    return PhaseResult(
        name=phase.name,
        start_s=round(phase.start_s, 3),
        end_s=round(phase.end_s, 3),
        shape=phase.shape_text,
        ran=ran_s is not None,
        ran_s=None if ran_s is None else (round(ran_s[0], 3), round(ran_s[1], 3)),
        target_rate=round_offset(target_rate),
        achieved_rate=round_offset(achieved_rate),
        planned=planned,
        load=load_result(record),
    )


def secret_values(plan: Plan) -> list[str]:
    """Literal values of credential headers (`Authorization`, ...) in the plan."""
    pairs = [*plan.settings.headers]
    for template in plan.templates.values():
        pairs.extend(template.headers)
    return [text.value for _, text in pairs if text.secret and text.env is None and text.value]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFacts:
    """What a run knows about itself besides its statistics and verdicts."""

    run_id: str
    scenario_text: str
    target: str
    """The target as it may be shown."""
    shard: ShardInfo
    started_at: dt.datetime
    ended_at: dt.datetime
    stage_reached: Stage
    error: str | None = None
    abort: Abort | None = None
    trace_id: str | None = None
    phases_run: Mapping[str, tuple[float, float]]
    """Each phase that ran: its (start, end) as run offsets."""
    kills: Sequence[KillResult] = ()
    cleanup: Sequence[CleanupResult] = ()
    notes: Sequence[str] = ()
    replica_source: ReplicaSourceResult | None = None
    send_lateness_ms: LatencySummary | None = None
    grafana_url: str | None = None
    grafana_tempo_uid: str | None = None
    grafana_org: int | None = None
    start_late_s: float | None = None
    """Seconds after the common start that the phases started (None without one)."""
    scaling: ScalingRecord | None = None
    """What the replica source recorded of the autoscaler and the pods, with the scale events
    derived (`judge.scaling`), as run offsets; None when it recorded nothing."""
    event_loop: str | None = None
    """The event loop the engine ran on (`engine.loop.loop_name`)."""


def _phases(plan: Plan, facts: RunFacts, stats: StatsRecord) -> Iterable[PhaseResult]:
    records = {record.name: record for record in stats.phases}
    for phase in plan.phases:
        record = records.get(phase.name)
        ran = facts.phases_run.get(phase.name)
        planned = (
            shard_share(phase.scheduled_total, facts.shard.index, facts.shard.count)
            if phase.scheduled_total is not None
            else None
        )
        target = (
            planned / phase.duration_s if planned is not None and phase.duration_s > 0 else None
        )
        elapsed = (ran[1] - ran[0]) if ran else 0.0
        achieved = record.counts.sent / elapsed if record is not None and elapsed > 0 else None
        yield phase_result(
            phase,
            record,
            ran_s=ran,
            planned=planned,
            target_rate=target,
            achieved_rate=achieved,
        )


def build_results(
    plan: Plan,
    facts: RunFacts,
    stats: StatsRecord,
    judgements: Sequence[Judgement],
    verdict: RunVerdict,
    exit_code: ExitCode,
) -> RunResults:
    """The results document of one run (or one shard of a run)."""
    source = facts.replica_source
    secrets = secret_values(plan)
    return RunResults(
        run_id=facts.run_id,
        scenario=plan.scenario,
        verdict=verdict,
        exit_code=exit_code,
        trace_id=facts.trace_id,
        error=facts.error,
        abort=facts.abort,
        tool_version=__version__,
        shard=facts.shard,
        scenario_hash=hashlib.sha256(facts.scenario_text.encode("utf-8")).hexdigest(),
        scenario_source=mask_urls_in_text(mask_values(facts.scenario_text, secrets)),
        params={
            name: mask_urls_in_text(mask_values(value, secrets))
            for name, value in plan.params.items()
        },
        target=mask_url(facts.target),
        started_at=facts.started_at,
        ended_at=facts.ended_at,
        duration_s=round((facts.ended_at - facts.started_at).total_seconds(), 3),
        stage_reached=facts.stage_reached,
        phases=tuple(_phases(plan, facts, stats)),
        expectations=tuple(rounded_judgement(j) for j in judgements),
        replicas=(
            ()
            if source is None
            else tuple(ReplicaPoint(s.t_s, s.ready, s.desired) for s in source.samples)
        ),
        replica_source=source,
        kills=tuple(facts.kills),
        cleanup=tuple(facts.cleanup),
        totals=load_result(stats.total),
        send_lateness_ms=facts.send_lateness_ms,
        seconds=stats.seconds,
        stats=stats,
        notes=tuple(facts.notes),
        grafana_url=facts.grafana_url,
        grafana_tempo_uid=facts.grafana_tempo_uid,
        grafana_org=facts.grafana_org,
        start_late_s=round_offset(facts.start_late_s),
        scaling=round_scaling(facts.scaling),
        event_loop=facts.event_loop,
        plan=plan.masked(),
    )

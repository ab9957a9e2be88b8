"""What the listeners hear while a run goes on: a `Progress` every `progress_interval_s`, and
every replica sample the source records; from a source that also records why it scaled
(`scaling.ScalingRecorder`), every autoscaler status and each pod's creation, Ready, restart and
deletion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from nimbus_scenarios.engine.dispatch import ok_statuses
from nimbus_scenarios.engine.records import RequestSnapshot
from nimbus_scenarios.events import (
    PodChange,
    Progress,
    RequestErrors,
    WindowState,
    WindowStatus,
)
from nimbus_scenarios.judge.windows import awaiting_data, judge_window
from nimbus_scenarios.results.model import Stage, Verdict
from nimbus_scenarios.runner.context import RunContext
from nimbus_scenarios.runner.counts import TickCounts
from nimbus_scenarios.scaling import MetricStatus, PodRecord, ScalingRecorder

__all__ = [
    "PodChanges",
    "autoscaler_metrics",
    "progress",
    "request_errors",
    "start_watchers",
    "window_states",
]

REPLICA_POLL_S = 0.25
"""How often new replica samples (and autoscaler statuses and pod changes) are passed on to the
listeners."""

_STATE_OF = {
    Verdict.PASSED: WindowState.PASSED,
    Verdict.FAILED: WindowState.FAILED,
    Verdict.NOT_JUDGED: WindowState.NOT_JUDGED,
}


def window_states(ctx: RunContext) -> tuple[WindowStatus, ...]:
    """Each replica window so far: waiting, open, passed, failed (or not judged once closed and
    no proof of fresh data can come any more)."""
    now = ctx.now_s()
    seen = ctx.seen(now)
    points = ctx.replica_points()
    states = []
    for e in ctx.replica_expectations():
        if e.start_s is not None and e.start_s > now:
            states.append(WindowStatus(e.text, WindowState.WAITING))
            continue
        verdict = judge_window(e, points, seen).verdict
        closed = e.end_s is not None and e.end_s <= now
        decided = verdict is not Verdict.NOT_JUDGED or not awaiting_data(e, seen)
        final = (closed and decided) or verdict is Verdict.PASSED
        state = _STATE_OF[verdict] if final else WindowState.OPEN
        states.append(WindowStatus(e.text, state))
    return tuple(states)


def request_errors(
    ctx: RunContext, requests: tuple[RequestSnapshot, ...]
) -> tuple[RequestErrors, ...]:
    """The templates that failed so far, by failing status (per the plan's `ok` statuses of
    each template) and by error kind, most frequent first."""
    found = []
    for request in requests:
        if not request.failed:
            continue
        template = ctx.plan.templates.get(request.name)
        ok = ok_statuses(template.ok_status if template is not None else ("2xx", "3xx"))
        causes = [
            (str(status), n)
            for status, n in request.status_counts.items()
            if n and not (0 <= status < len(ok) and ok[status])
        ]
        causes.extend((kind, n) for kind, n in request.errors_by_kind.items() if n)
        causes.sort(key=lambda cause: (-cause[1], cause[0]))
        found.append(RequestErrors(request.name, request.failed, tuple(causes)))
    return tuple(found)


def autoscaler_metrics(ctx: RunContext) -> tuple[MetricStatus, ...]:
    """The autoscaler's metrics against their targets, from the latest status the source
    recorded (none when it records no autoscaler)."""
    source = ctx.source
    if not isinstance(source, ScalingRecorder):
        return ()
    samples = source.autoscaler_samples
    return samples[-1].metrics if samples else ()


def progress(ctx: RunContext) -> Progress:
    """Live progress: cheap to compute."""
    now = ctx.now_s()
    phase = (
        next((p for p in ctx.plan.phases if p.start_s <= now < p.end_s), None)
        if ctx.state.stage is Stage.PHASES
        else None
    )
    series = ctx.stats.series
    last = int(now) - 1
    sent_last = series.sent[last] if 0 <= last < len(series.sent) else 0
    snapshot = ctx.stats.snapshot(ctx.clock.now())
    mine = TickCounts(
        sent_last,
        snapshot.sent,
        snapshot.dropped,
        snapshot.succeeded,
        snapshot.failed,
        ctx.dispatcher.in_flight if ctx.dispatcher else 0,
    )
    # With --workers, the others' latest counts (about a second old) are added: one status line.
    counts = mine if ctx.crew_counts is None else mine.plus(ctx.crew_counts())
    done = counts.succeeded + counts.failed
    samples = ctx.source.samples if ctx.source is not None else []
    latest = samples[-1] if samples else None
    return Progress(
        stage=ctx.state.stage,
        phase=phase.name if phase else None,
        elapsed_s=now,
        remaining_s=max(ctx.plan.duration_s - now, 0.0),
        target_rate=phase.rate_at(now) if phase else 0.0,
        achieved_rate=float(counts.sent_last_s),
        in_flight=counts.in_flight,
        p95_ms=snapshot.recent_p95_ms,
        sent=counts.sent,
        dropped=counts.dropped,
        errors_pct=100.0 * counts.failed / done if done else 0.0,
        ready=latest.ready if latest else None,
        desired=latest.desired if latest else None,
        windows=window_states(ctx),
        request_errors=request_errors(ctx, snapshot.requests),
        metrics=autoscaler_metrics(ctx),
    )


@dataclass
class PodChanges:
    """Which pod changes the listeners were told already. A change from before `since` (the
    clock time the run's listeners started: pods that were there before the run) is not news;
    a restart has no time in the record, so it is told at the time it is seen."""

    since: float
    _told: dict[str, PodRecord] = field(default_factory=dict)

    def news(
        self, pods: Sequence[PodRecord], now: float
    ) -> list[tuple[PodRecord, PodChange, float]]:
        """The changes in `pods` (the source's latest records) not told yet, with their clock
        times, in time order."""
        found: list[tuple[PodRecord, PodChange, float]] = []
        for pod in pods:
            before = self._told.get(pod.name)
            self._told[pod.name] = pod
            if before is None:
                new = pod.created is not None and pod.created >= self.since
                before = PodRecord(pod.name, restarts=0 if new else pod.restarts)
            for change, was, is_ in (
                (PodChange.CREATED, before.created, pod.created),
                (PodChange.READY, before.ready, pod.ready),
                (PodChange.DELETED, before.deleted, pod.deleted),
            ):
                if was is None and is_ is not None and is_ >= self.since:
                    found.append((pod, change, is_))
            if pod.restarts > before.restarts:
                found.append((pod, PodChange.RESTARTED, now))
        found.sort(key=lambda news: news[2])
        return found


def start_watchers(ctx: RunContext) -> list[asyncio.Task[None]]:
    """The background tasks that keep the listeners informed (cancel them when done)."""
    tasks = []
    interval = ctx.options.progress_interval_s
    if interval is not None:
        tasks.append(asyncio.ensure_future(_progress_loop(ctx, interval)))
    if ctx.source is not None:
        tasks.append(asyncio.ensure_future(_replica_loop(ctx)))
    if isinstance(ctx.source, ScalingRecorder):
        tasks.append(asyncio.ensure_future(_scaling_loop(ctx, ctx.source)))
    return tasks


async def _progress_loop(ctx: RunContext, interval: float) -> None:
    clock = ctx.clock
    while True:
        await clock.sleep_until(clock.now() + interval)
        ctx.events.progress(progress(ctx))


async def _replica_loop(ctx: RunContext) -> None:
    source = ctx.source
    assert source is not None
    clock = ctx.clock
    seen = 0
    while True:
        samples = source.samples
        for sample in samples[seen:]:
            ctx.events.replica_sample(sample, sample.at - ctx.origin)
        seen = len(samples)
        await clock.sleep_until(clock.now() + REPLICA_POLL_S)


async def _scaling_loop(ctx: RunContext, recorder: ScalingRecorder) -> None:
    clock = ctx.clock
    pods = PodChanges(since=clock.now())
    seen = 0
    while True:
        samples = recorder.autoscaler_samples
        for sample in samples[seen:]:
            ctx.events.autoscaler_changed(sample, sample.at - ctx.origin)
        seen = len(samples)
        for pod, change, at in pods.news(recorder.pods, clock.now()):
            ctx.events.pod_changed(pod, change, at - ctx.origin)
        await clock.sleep_until(clock.now() + REPLICA_POLL_S)

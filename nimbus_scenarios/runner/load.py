"""The load stages: the phases (open-model pacers, closed-model users, pod kills, guards), the
wait for replica, `reaction` and `pod startup` windows that run past the last phase (or whose
data is not yet proven fresh to their end), and the drain of requests in flight.

Every wait is on the run's clock and ends early when the run is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from nimbus_scenarios.engine.pacer import run_open
from nimbus_scenarios.engine.records import DropKind
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.engine.users import run_users
from nimbus_scenarios.judge.guards import GuardSeries, check_guards
from nimbus_scenarios.judge.windows import NO_SOURCE, awaiting_data
from nimbus_scenarios.plan.model import ExpectationPlan, PhasePlan
from nimbus_scenarios.results.model import KillResult, Stage, Verdict
from nimbus_scenarios.runner.context import RunContext
from nimbus_scenarios.runner.crew_series import CrewRows
from nimbus_scenarios.runner.judging import judge_recorded

__all__ = ["drain", "run_phases", "wait_for_windows"]

PENDING_POLL_S = 0.5
"""How often the pending stage looks whether the open windows are all decided."""


async def run_phases(ctx: RunContext) -> None:
    """Play every phase at its offset; offset 0 is now, or the common start for shards.

    A shard that starts after the common start keeps the common offsets: what was due before
    it started is dropped (`late_start`) and the rest is sent on time, never a burst.
    """
    ctx.enter(Stage.PHASES)
    clock = ctx.clock
    ctx.origin = clock.now()
    start_at = ctx.start_at
    if start_at is not None:
        late = clock.wall() - start_at
        ctx.origin -= late
        if late > 0:
            ctx.missed_before = clock.now()
        elif not await ctx.sleep_until(ctx.origin):
            return
        ctx.state.start_late_s = clock.wall() - start_at
    ctx.stats = RunStats(ctx.origin)
    ctx.mark_restarts()
    ctx.events.load_started(ctx.stats)
    guards = asyncio.ensure_future(_guard_loop(ctx))
    try:
        for phase in ctx.plan.phases:
            if not await ctx.sleep_until(ctx.origin + phase.start_s):
                break
            await _run_phase(ctx, phase)
            if ctx.state.stop.is_set():
                break
    finally:
        guards.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await guards
        if ctx.missed_before is not None:
            ctx.state.notes.append(_late_note(ctx))


def _late_note(ctx: RunContext) -> str:
    """What a late start cost: the arrivals dropped, and the users that started late."""
    late = ctx.missed_before - ctx.origin if ctx.missed_before is not None else 0.0
    dropped = ctx.stats.total().dropped_by_kind.get(DropKind.LATE_START, 0)
    text = (
        f"started {late:.3f}s after the common start: {dropped} arrivals already due were "
        "dropped (late start), not sent"
    )
    closed = [p for p in ctx.plan.phases if not p.open_model and p.start_s < late]
    joined = [p.name for p in closed if p.end_s > late]
    if joined:
        text += f"; the users of {', '.join(joined)} started at once, {late:.3f}s late"
    missed = [p.name for p in closed if p.end_s <= late]
    if missed:
        text += f"; the users of {', '.join(missed)} did not run (their phase was over)"
    return text


async def _run_phase(ctx: RunContext, phase: PhasePlan) -> None:
    dispatcher = ctx.dispatcher
    assert dispatcher is not None
    stats = ctx.stats.phase(phase.name)
    started = ctx.now_s()
    ctx.state.running = (phase.name, started)
    ctx.state.load_started = True
    ctx.events.phase_started(phase, started)
    tasks: list[asyncio.Task[Any]] = []
    shard = (ctx.send_shard.index, ctx.send_shard.count)
    if phase.mix:
        mix = [ctx.templates[name] for name, _ in phase.mix]
        if phase.open_model:
            work = run_open(
                phase,
                mix,
                dispatcher,
                stats,
                ctx.origin,
                clock=ctx.clock,
                shard=shard,
                missed_before=ctx.missed_before,
            )
        else:
            work = run_users(
                phase,
                mix,
                dispatcher,
                stats,
                ctx.origin,
                ctx.background,
                clock=ctx.clock,
                shard=shard,
            )
        tasks.append(asyncio.ensure_future(work))
    for kill in phase.kills if ctx.primary else ():
        tasks.append(asyncio.ensure_future(_kill(ctx, kill.at_s, kill.count, phase.name)))
    finished = await ctx.sleep_until(ctx.origin + phase.end_s)
    # A phase that was over before a late shard started ends at once, but its pacer still
    # counts the arrivals it missed: it only drops, never waits, so it is let finish.
    missed = ctx.missed_before is not None and ctx.origin + phase.end_s <= ctx.missed_before
    for task in tasks:
        if not finished or not (task.done() or missed):
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    ended = ctx.now_s()
    ctx.state.phases_run[phase.name] = (started, ended)
    ctx.state.running = None
    ctx.events.phase_ended(phase, ended)


async def _kill(ctx: RunContext, at_s: float, count: int, phase: str) -> None:
    if ctx.missed_before is not None and ctx.origin + at_s < ctx.missed_before:
        # Due before a late shard 0 started: done now, it would hit the pods at another moment
        # of the load than the plan's.
        late = ctx.missed_before - ctx.origin
        error = f"not done: due before this shard started, {late:.3f}s after the common start"
        ctx.state.kills.append(KillResult(phase, round(at_s, 3), count, error=error))
        return
    if not await ctx.sleep_until(ctx.origin + at_s):
        return
    at = round(ctx.now_s(), 3)
    if ctx.source is None:
        ctx.state.kills.append(KillResult(phase, at, count, error=NO_SOURCE))
        return
    try:
        pods = await ctx.source.kill_pods(count)
    except Exception as exc:
        ctx.state.kills.append(KillResult(phase, at, count, error=str(exc)))
        return
    ctx.state.kills.append(KillResult(phase, at, count, pods=tuple(pods)))
    ctx.events.pods_killed(pods, at)


def _crew_request_series(crew: CrewRows, stats: RunStats) -> Callable[[str], GuardSeries | None]:
    def series(name: str) -> GuardSeries | None:
        return crew.request_series(name, stats.request_series(name))

    return series


async def _guard_loop(ctx: RunContext) -> None:
    interval = ctx.options.guard_interval_s
    clock = ctx.clock
    while not ctx.state.stop.is_set():
        await clock.sleep_until(clock.now() + interval)
        ready = None
        if ctx.source is not None and ctx.source.samples:
            ready = ctx.source.samples[-1].ready
        stats = ctx.stats
        crew = ctx.crew_rows
        if crew is None:
            fired = check_guards(
                ctx.plan.guards,
                stats.series,
                ctx.now_s(),
                ready,
                stats.request_series,
                restarts=ctx.pod_restarts(),
            )
        else:  # other processes send shares: the whole run, as far as every one has reported
            fired = check_guards(
                ctx.plan.guards,
                crew.series(stats.series),
                min(ctx.now_s(), crew.frontier()),
                ready,
                _crew_request_series(crew, stats),
                restarts=ctx.pod_restarts(),
            )
        if fired is not None:
            ctx.request_stop(f"guard `{fired.guard.text}` fired: {fired.detail}")


async def wait_for_windows(ctx: RunContext) -> None:
    """Wait, without load, until every replica window is decided: for windows that run past the
    last phase, and for the source to prove its data fresh past the windows' ends. The wait
    ends early when the run is stopped or the data goes stale (or the source is lost): what is
    still open then is not judged."""
    source = ctx.source
    if ctx.state.stop.is_set() or source is None:
        return
    windows = ctx.watched_expectations()
    if not _undecided(ctx, windows):
        return
    ctx.enter(Stage.PENDING)
    clock = ctx.clock
    end = max([ctx.plan.phases_end_s, *(e.end_s for e in windows if e.end_s is not None)])
    # A source proves itself within `stale_after_s` or goes stale: past this, nothing can change.
    deadline = clock.now() + max(end - ctx.now_s(), 0.0) + source.stale_after_s + PENDING_POLL_S
    guards = asyncio.ensure_future(_guard_loop(ctx))
    try:
        while _undecided(ctx, windows) and clock.now() < deadline:
            if not await ctx.sleep_until(min(clock.now() + PENDING_POLL_S, deadline)):
                break
    finally:
        guards.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await guards


def _undecided(ctx: RunContext, windows: list[ExpectationPlan]) -> list[ExpectationPlan]:
    """The windows that are neither passed nor failed yet, and that more data could decide."""
    seen = ctx.seen()
    points = ctx.replica_points()
    pods = ctx.scaling_pods()
    return [
        e
        for e in windows
        if awaiting_data(e, seen)
        and judge_recorded(ctx, e, seen, points, pods).verdict is Verdict.NOT_JUDGED
    ]


async def drain(ctx: RunContext) -> None:
    """Let requests in flight finish: up to the scenario's timeout (plus a second) after a
    normal end, until the shutdown deadline (the stop plus `--grace`) after a stop, not at all
    after a second signal."""
    dispatcher = ctx.dispatcher
    assert dispatcher is not None
    grace = ctx.options.grace_s if ctx.state.stop.is_set() else ctx.plan.settings.timeout_s + 1
    # Closed-model users start no request from here on; the requests they have in flight
    # are the dispatcher's, and are drained with the open-model ones.
    for task in list(ctx.background):
        task.cancel()
    if ctx.background:
        await asyncio.gather(*ctx.background, return_exceptions=True)
    draining = asyncio.ensure_future(dispatcher.drain(grace))
    forced = asyncio.ensure_future(ctx.state.force.wait())
    await asyncio.wait({draining, forced}, return_when=asyncio.FIRST_COMPLETED)
    forced.cancel()
    if not draining.done():
        draining.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await draining
    # After a forced exit, abandon what is still in flight now (counted as failed) rather
    # than leaving it half counted in the results.
    await dispatcher.drain(0.0)

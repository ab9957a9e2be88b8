"""The stage driver: pre-flight (and the wait for a common start written later, `runner.start`)
-> before -> phases -> pending windows -> after -> cleanup -> results, with signals and the
deadline. The one place that knows the order of a run.

A stop (a guard, SIGINT/SIGTERM, `--max-duration`) ends scheduling at once; requests in flight
and cleanup share one shutdown budget, `--grace` from the stop; every result gathered is kept,
and handed to `checkpoint` before cleanup. A second signal stops waiting for requests in flight
and for cleanup. Cleanup runs only if load was scheduled.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from nimbus_scenarios.clock import Clock, LoopClock, within
from nimbus_scenarios.engine.dispatch import Dispatcher, compile_templates
from nimbus_scenarios.engine.factory import make_transport
from nimbus_scenarios.engine.request import prepare
from nimbus_scenarios.engine.transport import LoadTransport
from nimbus_scenarios.events import Handlers, RunHandler
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.replicas import ReplicaSource
from nimbus_scenarios.results.model import RunResults, Stage
from nimbus_scenarios.runner.context import Interrupted, RunContext, unless
from nimbus_scenarios.runner.crew import Crew
from nimbus_scenarios.runner.judging import results_now
from nimbus_scenarios.runner.load import drain, run_phases, wait_for_windows
from nimbus_scenarios.runner.monitor import start_watchers
from nimbus_scenarios.runner.options import RunOptions, RunOutcome
from nimbus_scenarios.runner.probes import run_hypotheses
from nimbus_scenarios.runner.shutdown import Signals, cleanup, cleanup_steps
from nimbus_scenarios.runner.start import StartSource, await_start

if TYPE_CHECKING:
    from nimbus_scenarios.telemetry import Telemetry

__all__ = ["run_scenario"]


async def run_scenario(
    plan: Plan,
    options: RunOptions,
    *,
    source: ReplicaSource | None = None,
    handlers: Sequence[RunHandler] = (),
    scenario_text: str = "",
    environ: Mapping[str, str] | None = None,
    transport: LoadTransport | None = None,
    telemetry: Telemetry | None = None,
    clock: Clock | None = None,
    checkpoint: Callable[[RunResults], None] | None = None,
    start_source: StartSource | None = None,
    crew: Crew | None = None,
) -> RunOutcome:
    """Play `plan` against `options.url` and return its results and exit code.

    With `start_source`, the common start is read from it after pre-flight (waiting up to
    `options.start_wait_s`) instead of `options.start_at`.

    `checkpoint` gets the results as they stand just before cleanup (so they can be written
    before anything that may hang or be killed), the returned outcome has them final.

    With `crew` (`--workers`), other processes send shares of the same plan: see `runner.crew`.
    """
    listeners: list[RunHandler] = [telemetry.handler] if telemetry is not None else []
    listeners.extend(handlers)
    if transport is None:
        transport = make_transport(
            options.transport,
            timeout_s=plan.settings.timeout_s,
            connection_max_age_s=plan.settings.connection_max_age_s,
            max_connections=plan.settings.max_inflight,
        )
    run_id = options.run_id or (telemetry.run_id if telemetry is not None else None)
    ctx = RunContext(
        plan,
        options,
        clock=clock or LoopClock(),
        transport=transport,
        source=source,
        events=Handlers(listeners),
        run_id=run_id or uuid.uuid4().hex[:12],
    )
    trace_id = telemetry.trace_id if telemetry is not None else None
    if telemetry is not None:
        ctx.state.notes.extend(telemetry.notes)  # the OTEL_* settings not honoured
    infrastructure: str | None = None
    signals = Signals(ctx)
    signals.install()
    crew = crew or Crew()
    try:
        crew.attach(ctx)
        ctx.templates = compile_templates(plan.templates, options.url, environ)
        ctx.dispatcher = Dispatcher(
            transport,
            clock=ctx.clock,
            max_inflight=plan.settings.max_inflight,
            observers=(telemetry.observer,) if telemetry and telemetry.observer else (),
            headers_for=telemetry.headers_for if telemetry is not None else None,
        )
        if not ctx.state.stop.is_set():
            infrastructure = await _preflight(ctx)
        if infrastructure is None and not ctx.state.stop.is_set():
            infrastructure = await crew.ready(ctx)
        if infrastructure is None and start_source is not None and not ctx.state.stop.is_set():
            infrastructure = await await_start(ctx, start_source, options.start_wait_s)
        if infrastructure is None and not ctx.state.stop.is_set():
            ctx.state.started = True
            await _stages(ctx, crew)
        # Cleanup undoes what the load did; without load (pre-flight failed or stopped, the
        # hypothesis failed) there is nothing to undo.
        if ctx.primary and ctx.state.load_started and cleanup_steps(ctx):
            if checkpoint is not None:
                checkpoint(
                    results_now(ctx, None, scenario_text=scenario_text, trace_id=trace_id).results
                )
            await cleanup(ctx)
    finally:
        with contextlib.suppress(Exception):
            await crew.close()
        signals.remove()
        if source is not None:
            with contextlib.suppress(Exception):
                await source.stop()
        with contextlib.suppress(Exception):
            await transport.aclose()
    outcome = results_now(ctx, infrastructure, scenario_text=scenario_text, trace_id=trace_id)
    ctx.events.run_ended(outcome.results)
    return outcome


async def _stages(ctx: RunContext, crew: Crew) -> None:
    ctx.events.run_started(ctx.plan, ctx.run_id)
    tasks = start_watchers(ctx)
    deadline = _start_deadline(ctx)
    if deadline is not None:
        tasks.append(deadline)
    try:
        primary = ctx.primary
        held = not primary or await run_hypotheses(ctx, Stage.BEFORE, ctx.plan.before)
        if held and not ctx.state.stop.is_set():
            await crew.load_starting(ctx)
            await run_phases(ctx)
            await wait_for_windows(ctx)
        await drain(ctx)
        await crew.load_done(ctx)
        if held and not ctx.state.stop.is_set() and primary:
            await run_hypotheses(ctx, Stage.AFTER, ctx.plan.after)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _preflight(ctx: RunContext) -> str | None:
    """None if the target answers and the replica source starts (or the run was stopped
    meanwhile: then nothing more happens); else what is wrong."""
    ctx.state.stage = Stage.PREFLIGHT
    if ctx.options.preflight:
        request = prepare("GET", ctx.options.url, "/")
        wait = ctx.options.preflight_timeout_s
        clock = ctx.clock
        try:
            outcome = await unless(
                ctx.state.stop, within(clock, ctx.transport.send(request), clock.now() + wait)
            )
        except Interrupted:
            return None
        except TimeoutError:
            return f"target {ctx.shown_url} does not answer (no response in {wait:g}s)"
        if outcome.status is None:
            return f"target {ctx.shown_url} does not answer ({outcome.error} error)"
    if ctx.source is not None:
        try:
            await unless(ctx.state.stop, ctx.source.start())
        except Interrupted:
            return None
        except Exception as exc:
            return f"replica source {ctx.source.description}: {exc}"
    return None


def _start_deadline(ctx: RunContext) -> asyncio.Task[None] | None:
    limit = ctx.options.max_duration_s
    if limit is None:
        return None

    async def deadline() -> None:
        if await ctx.sleep_until(ctx.clock.now() + limit):
            ctx.request_stop(f"--max-duration of {limit:g}s reached")

    return asyncio.ensure_future(deadline())

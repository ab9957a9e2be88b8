"""The stage driver: pre-flight -> before -> phases -> pending windows -> after -> cleanup ->
results, with signals and the deadline. The one place that knows the order of a run.

A stop (a guard, SIGINT/SIGTERM, `--max-duration`) ends scheduling at once; requests in flight
get `--grace` to finish; cleanup still runs; every result gathered is kept. A second signal
stops waiting for requests in flight and for cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from nimbus_scenarios.clock import Clock, LoopClock, within
from nimbus_scenarios.engine.dispatch import Dispatcher, compile_templates
from nimbus_scenarios.engine.factory import make_transport
from nimbus_scenarios.engine.request import PreparedRequest, prepare
from nimbus_scenarios.engine.transport import LoadTransport
from nimbus_scenarios.events import Handlers, RunHandler
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.replicas import ReplicaSource
from nimbus_scenarios.results.model import CleanupResult, Stage
from nimbus_scenarios.runner.context import Interrupted, RunContext, unless
from nimbus_scenarios.runner.judging import finish
from nimbus_scenarios.runner.load import drain, run_phases, wait_for_windows
from nimbus_scenarios.runner.monitor import start_watchers
from nimbus_scenarios.runner.options import RunOptions, RunOutcome
from nimbus_scenarios.runner.probes import run_hypotheses

if TYPE_CHECKING:
    from nimbus_scenarios.telemetry import Telemetry

__all__ = ["run_scenario"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
) -> RunOutcome:
    """Play `plan` against `options.url` and return its results and exit code."""
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
    infrastructure: str | None = None
    loop = asyncio.get_running_loop()
    _install_signals(ctx, loop)
    try:
        ctx.templates = compile_templates(plan.templates, options.url, environ)
        ctx.dispatcher = Dispatcher(
            transport,
            clock=ctx.clock,
            max_inflight=plan.settings.max_inflight,
            observers=(telemetry.observer,) if telemetry and telemetry.observer else (),
            headers_for=telemetry.headers_for if telemetry is not None else None,
        )
        infrastructure = await _preflight(ctx)
        if infrastructure is None:
            await _stages(ctx)
        if ctx.primary:
            await _cleanup(ctx)
    finally:
        _remove_signals(ctx, loop)
        if source is not None:
            with contextlib.suppress(Exception):
                await source.stop()
        with contextlib.suppress(Exception):
            await transport.aclose()
    trace_id = telemetry.trace_id if telemetry is not None else None
    return finish(ctx, infrastructure, scenario_text=scenario_text, trace_id=trace_id)


async def _stages(ctx: RunContext) -> None:
    ctx.events.run_started(ctx.plan, ctx.run_id)
    tasks = start_watchers(ctx)
    deadline = _start_deadline(ctx)
    if deadline is not None:
        tasks.append(deadline)
    try:
        primary = ctx.primary
        held = not primary or await run_hypotheses(ctx, Stage.BEFORE, ctx.plan.before)
        if held and not ctx.state.stop.is_set():
            await run_phases(ctx)
            await wait_for_windows(ctx)
        await drain(ctx)
        if held and not ctx.state.stop.is_set() and primary:
            await run_hypotheses(ctx, Stage.AFTER, ctx.plan.after)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _preflight(ctx: RunContext) -> str | None:
    """None if the target answers and the replica source starts; else what is wrong."""
    ctx.state.stage = Stage.PREFLIGHT
    request = prepare("GET", ctx.options.url, "/")
    wait = ctx.options.preflight_timeout_s
    try:
        outcome = await within(ctx.clock, ctx.transport.send(request), ctx.clock.now() + wait)
    except TimeoutError:
        return f"target {ctx.shown_url} does not answer (no response in {wait:g}s)"
    if outcome.status is None:
        return f"target {ctx.shown_url} does not answer ({outcome.error} error)"
    if ctx.source is not None:
        try:
            await ctx.source.start()
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


def _cleanup_steps(ctx: RunContext) -> list[tuple[str, PreparedRequest]]:
    steps: list[tuple[str, PreparedRequest]] = []
    url = ctx.options.url
    for step in ctx.plan.cleanup:
        if step.template is not None and step.template in ctx.templates:
            steps.append((step.template, ctx.templates[step.template].request))
        elif step.method is not None and step.path is not None:
            steps.append((f"{step.method} {step.path}", prepare(step.method, url, step.path)))
    if ctx.options.consumer_cleanup and not any(
        request.method == "DELETE" and request.url.endswith("/process/cleanup")
        for _, request in steps
    ):
        steps.append(("DELETE /process/cleanup", prepare("DELETE", url, "/process/cleanup")))
    return steps


async def _cleanup(ctx: RunContext) -> None:
    """Send the cleanup requests, each bounded by the scenario's timeout plus a second."""
    steps = _cleanup_steps(ctx)
    if not steps:
        return
    ctx.enter(Stage.CLEANUP)
    record = ctx.state.cleanup
    force = ctx.state.force
    clock = ctx.clock
    for name, request in steps:
        if force.is_set():
            record.append(CleanupResult(name, error="skipped (forced exit)"))
            continue
        limit = clock.now() + ctx.plan.settings.timeout_s + 1
        try:
            outcome = await unless(force, within(clock, ctx.transport.send(request), limit))
        except TimeoutError:
            record.append(CleanupResult(name, error="timeout"))
        except Interrupted:
            record.append(CleanupResult(name, error="abandoned (forced exit)"))
        else:
            error = None if outcome.error is None else str(outcome.error)
            record.append(CleanupResult(name, status=outcome.status, error=error))


def _install_signals(ctx: RunContext, loop: asyncio.AbstractEventLoop) -> None:
    if not ctx.options.install_signal_handlers:
        return
    for sig in _SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, _on_signal, ctx, sig)


def _remove_signals(ctx: RunContext, loop: asyncio.AbstractEventLoop) -> None:
    if not ctx.options.install_signal_handlers:
        return
    for sig in _SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(sig)


def _on_signal(ctx: RunContext, sig: signal.Signals) -> None:
    ctx.state.signals += 1
    if ctx.state.signals == 1:
        ctx.request_stop(f"{sig.name} received")
    else:
        # A second signal: stop waiting for in-flight requests and cleanup; still write results.
        ctx.state.force.set()

"""The end of a run: stop signals on the event loop, and cleanup bounded by the shutdown budget.

A stopped run has `--grace` from the stop for everything left (requests in flight, cleanup), so
that it ends, with its results written, before a pod's `terminationGracePeriodSeconds` runs
out. Each cleanup request is bounded by the scenario's timeout plus a second, and after a stop
also by the shutdown deadline, which a stop arriving during the request moves in; a second
signal abandons it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from nimbus_scenarios import stops
from nimbus_scenarios.engine.request import Outcome, PreparedRequest, prepare
from nimbus_scenarios.results.model import CleanupResult, Stage
from nimbus_scenarios.runner.context import RunContext

__all__ = ["Signals", "cleanup", "cleanup_steps"]


class Signals:
    """SIGINT and SIGTERM handled on the run's event loop while it runs.

    Signals that arrived before (recorded by `stops` while the command prepared the run) stop
    the run at once. When the run is over, the process-wide handlers of `stops` take over again
    (if the command installed them), so a signal while results are written is recorded instead
    of killing the process.
    """

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.loop = asyncio.get_running_loop()

    def install(self) -> None:
        """Handle the stop signals on the loop; act on any that came already."""
        if not self.ctx.options.install_signal_handlers:
            return
        for sig in stops.SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self.loop.add_signal_handler(sig, self.on_signal, sig)
        for sig in stops.received():
            self.on_signal(sig)

    def remove(self) -> None:
        """Give the signals back to the process-wide handlers."""
        if not self.ctx.options.install_signal_handlers:
            return
        for sig in stops.SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self.loop.remove_signal_handler(sig)
        stops.restore()

    def on_signal(self, sig: signal.Signals) -> None:
        """The first signal stops the run; a second stops waiting for anything."""
        state = self.ctx.state
        state.signals += 1
        if state.signals == 1:
            self.ctx.request_stop(f"{sig.name} received")
        else:
            state.force.set()


def cleanup_steps(ctx: RunContext) -> list[tuple[str, PreparedRequest]]:
    """The cleanup requests: the scenario's, then the consumer's `DELETE /process/cleanup`
    with `--cleanup` (unless the scenario sends it already)."""
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


async def cleanup(ctx: RunContext) -> None:
    """Send the cleanup requests, in order, each within its bound."""
    steps = cleanup_steps(ctx)
    if not steps:
        return
    ctx.enter(Stage.CLEANUP)
    record = ctx.state.cleanup
    for name, request in steps:
        if ctx.state.force.is_set():
            record.append(CleanupResult(name, error="skipped (forced exit)"))
            continue
        left = ctx.shutdown_left()
        if left is not None and left <= 0:
            record.append(CleanupResult(name, error="skipped (shutdown deadline)"))
            continue
        try:
            outcome = await _send_bounded(ctx, request)
        except TimeoutError:
            past = ctx.shutdown_left() == 0.0
            record.append(CleanupResult(name, error="shutdown deadline" if past else "timeout"))
        except _Forced:
            record.append(CleanupResult(name, error="abandoned (forced exit)"))
        else:
            error = None if outcome.error is None else str(outcome.error)
            record.append(CleanupResult(name, status=outcome.status, error=error))


class _Forced(Exception):
    """A second signal came while a cleanup request was in flight."""


async def _send_bounded(ctx: RunContext, request: PreparedRequest) -> Outcome:
    """Send one cleanup request within the timeout plus a second and, once the run is stopped,
    within the shutdown deadline (a stop during the request brings its end forward)."""
    clock = ctx.clock
    state = ctx.state
    limit = clock.now() + ctx.plan.settings.timeout_s + 1
    task = asyncio.ensure_future(ctx.transport.send(request))
    try:
        while True:
            deadline = state.shutdown_deadline
            bound = limit if deadline is None else min(limit, deadline)
            sleeper = asyncio.ensure_future(clock.sleep_until(bound))
            forced = asyncio.ensure_future(state.force.wait())
            waiters: set[asyncio.Future[object]] = {task, sleeper, forced}  # type: ignore[arg-type]
            stopping = None
            if not state.stop.is_set():
                stopping = asyncio.ensure_future(state.stop.wait())
                waiters.add(stopping)  # type: ignore[arg-type]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (sleeper, forced, stopping):
                    if waiter is not None:
                        waiter.cancel()
            if task.done():
                return task.result()
            if forced.done() and not forced.cancelled():
                raise _Forced
            if sleeper.done() and not sleeper.cancelled():
                raise TimeoutError
            # A stop arrived: go round with the shutdown deadline as the new bound.
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

"""A worker process of `run --workers N`: shard `options.shard` of the parent's plan.

It is started by `runner.pool` (multiprocessing, spawn) with a `WorkerJob`: the parent's `Plan`
itself, so nothing is parsed again. It runs the same `run_scenario` as the parent, with no
pre-flight (the parent's), no replica source, kills, cleanup, metrics, log lines or run and
phase spans (the parent's), and its start read from the parent (`Go`) as a start source. When
the parent traces (`WorkerJob.trace`), its requests carry `traceparent`s and its request spans
join the parent's trace, exported from here (`Telemetry.for_worker`); with tracing off it does
nothing more (OpenTelemetry is not even imported). It tells the parent when it is ready, its
live counts every second with the seconds of its series that the parent's guards read (`Tick`:
the guards are judged by the parent, on every worker's seconds, never on one share), and a stop
of its own (`Aborted`); it obeys
the parent's `Stop` and `Force`, and stops itself if the parent is gone (the pipe closes). At
the end it flushes its spans (within `WORKER_FLUSH_S`, less if the stop's shutdown budget has
less left) and sends its statistics (`Report`), or what went wrong (`Failed`).

SIGINT is ignored (a terminal sends it to the whole process group: the parent alone decides);
SIGTERM keeps its default, so `multiprocessing` can still end a worker the parent gives up on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import signal
import threading
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from nimbus_scenarios.engine.loop import run_on_loop
from nimbus_scenarios.results.model import TelemetrySummary
from nimbus_scenarios.runner.context import RunContext
from nimbus_scenarios.runner.counts import TickCounts
from nimbus_scenarios.runner.crew import (
    Aborted,
    Crew,
    Failed,
    Force,
    Go,
    Ready,
    Report,
    Stop,
    Tick,
    WorkerJob,
)
from nimbus_scenarios.runner.crew_series import RowsTaker, series_read
from nimbus_scenarios.runner.options import RunOutcome, flush_budget
from nimbus_scenarios.runner.stages import run_scenario

if TYPE_CHECKING:
    from nimbus_scenarios.telemetry import Telemetry

__all__ = ["TICK_S", "WORKER_FLUSH_S", "worker_main"]

TICK_S = 1.0
"""How often a worker sends its live counts."""
ROW_DELAY_S = 0.005
"""How long after a whole second of the run a worker's tick takes that second's rows."""
WORKER_FLUSH_S = 2.5
"""How long a worker may take to export its last spans before it reports (the parent waits
twice this for the reports, `pool.REPORT_MARGIN_S`); a dead collector costs no more."""


def worker_main(conn: Connection, job: WorkerJob) -> None:
    """The worker process's entry point (picklable: a module-level function)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    telemetry = None
    try:
        telemetry = _telemetry(job)
        # The parent's loop: the choice comes from the same environment (`engine.loop`).
        (link, outcome), _ = run_on_loop(_work(conn, job, telemetry))
        summary = None
        if telemetry is not None:  # flushed before the report: the parent waits for that
            summary = telemetry.shutdown(flush_budget(WORKER_FLUSH_S, outcome.shutdown_left_s))
        conn.send(link.report(summary))
    except BaseException as exc:  # the parent must hear why, whatever it was
        with contextlib.suppress(OSError, ValueError):
            conn.send(Failed(f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
        if telemetry is not None:  # after a failure: what is queued gets a bounded try
            telemetry.shutdown(WORKER_FLUSH_S)


def _telemetry(job: WorkerJob) -> Telemetry | None:
    """The worker's request spans in the parent's trace, or None when the parent does not
    trace (then OpenTelemetry is not imported here at all)."""
    if job.trace is None:
        return None
    from nimbus_scenarios.telemetry import Telemetry

    return Telemetry.for_worker(job.plan, job.trace, job.index)


async def _work(
    conn: Connection, job: WorkerJob, telemetry: Telemetry | None
) -> tuple[ParentLink, RunOutcome]:
    read = series_read(job.plan.guards)
    link = ParentLink(conn, None if read is None else RowsTaker(*read))
    # The guards are the parent's: it judges them on every worker's seconds (`crew_series`).
    outcome = await run_scenario(
        dataclasses.replace(job.plan, guards=()),
        job.options,
        scenario_text=job.scenario_text,
        start_source=_ParentStart(link),
        crew=link,
        telemetry=telemetry,
    )
    return link, outcome


class _ParentStart:
    """The common start as the parent tells it (`Go`): a `StartSource` that waits for it."""

    def __init__(self, link: ParentLink) -> None:
        self.link = link

    @property
    def description(self) -> str:
        """For messages."""
        return "the parent process"

    async def read(self) -> str | None:
        """The parent's common start, once told."""
        start = self.link.start
        assert start is not None
        return repr(await asyncio.shield(start))

    def close(self) -> None:
        """Nothing to let go of."""


class ParentLink(Crew):
    """A worker's side of the pipe: a start source (the parent's `Go`) and its crew."""

    def __init__(self, conn: Connection, rows: RowsTaker | None = None) -> None:
        self.conn = conn
        self.rows = rows
        """The seconds the parent's guards read, taken at each tick (None: no guard reads
        any)."""
        self.ctx: RunContext | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.start: asyncio.Future[float] | None = None
        self.from_parent = False
        """The run was stopped by the parent (so the stop is not told back)."""
        self.tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ Crew
    def attach(self, ctx: RunContext) -> None:
        """Listen to the parent; say the worker is ready; send live counts and own stops."""
        self.ctx = ctx
        self.loop = asyncio.get_running_loop()
        self.start = self.loop.create_future()
        threading.Thread(target=self._listen, name="nimbus-parent", daemon=True).start()
        self.tasks = [
            asyncio.ensure_future(self._tell_stop(ctx)),
            asyncio.ensure_future(self._tick(ctx)),
        ]
        self.conn.send(Ready())

    async def close(self) -> None:
        """Stop the live counts and the stop watch."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def report(self, telemetry: TelemetrySummary | None = None) -> Report:
        """What this worker gathered (sent once its run is over), with what its span export
        did."""
        ctx = self.ctx
        if ctx is None:
            raise RuntimeError("the worker's run never started")
        lateness = ctx.dispatcher.lateness if ctx.dispatcher is not None else None
        encoded = lateness.encode() if lateness is not None and lateness.total_count else None
        notes = [*ctx.state.notes, *ctx.state.worker_errors]
        return Report(ctx.stats.freeze(), encoded, tuple(notes), telemetry)

    # ------------------------------------------------------------ the pipe
    def _listen(self) -> None:
        """Read the parent's messages (a thread: `recv` blocks) and act on the loop."""
        loop = self.loop
        assert loop is not None
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                message = None
            try:
                loop.call_soon_threadsafe(self._on_message, message)
            except RuntimeError:
                return  # the loop is closed: the run is over
            if message is None:
                return

    def _on_message(self, message: object) -> None:
        ctx = self.ctx
        assert ctx is not None
        assert self.start is not None
        match message:
            case Go(start_at):
                if not self.start.done():
                    self.start.set_result(start_at)
            case Stop(reason):
                self.from_parent = True
                ctx.request_stop(reason)
            case Force():
                self.from_parent = True
                ctx.request_stop("stopped by the parent process")
                ctx.state.force.set()
            case None:
                # The parent is gone: nobody will read the results, stop at once.
                self.from_parent = True
                ctx.request_stop("the parent process is gone")
                ctx.state.force.set()

    async def _tell_stop(self, ctx: RunContext) -> None:
        await ctx.state.stop.wait()
        if not self.from_parent and ctx.state.abort is not None:
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(Aborted(ctx.state.abort.reason))

    async def _tick(self, ctx: RunContext) -> None:
        """Every second; once the load started, just past each whole second of the run, so
        the second that just ended reaches the parent's guards at once."""
        clock = ctx.clock
        while True:
            wait = TICK_S
            if ctx.state.load_started:
                now_s = ctx.now_s()
                wait = math.floor(now_s) + 1.0 + ROW_DELAY_S - now_s
            await clock.sleep_until(clock.now() + wait)
            if not ctx.state.load_started:
                continue
            rows = None if self.rows is None else self.rows.take(ctx.stats, ctx.now_s())
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(Tick(live_counts(ctx), rows))


def live_counts(ctx: RunContext) -> TickCounts:
    """This process's live counts: what `Progress` shows."""
    series = ctx.stats.series
    last = math.floor(ctx.now_s()) - 1
    sent_last = series.sent[last] if 0 <= last < len(series.sent) else 0
    snapshot = ctx.stats.snapshot(ctx.clock.now())
    in_flight = ctx.dispatcher.in_flight if ctx.dispatcher is not None else 0
    return TickCounts(
        sent_last, snapshot.sent, snapshot.dropped, snapshot.succeeded, snapshot.failed, in_flight
    )

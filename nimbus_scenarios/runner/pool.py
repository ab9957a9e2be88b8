"""The parent's side of `run --workers N`: N-1 worker processes beside the parent's own engine.

The parent is worker 0. Shard I of N (`--shard`, 0 of 1 without one) with W workers: worker w
sends global shard I + N*w of N*W, so the W workers of a pod send exactly the arrivals k with
k % N == I, the pod's share, and the parent's results stand for shard I of N as they would
without workers (`merge` of the pods' documents works as before).

The workers are spawned (`multiprocessing`, spawn: a fresh interpreter, nothing inherited but
the `WorkerJob`) when the run starts, so they start while the parent checks the target. The
parent then waits for every one to be ready (`WORKER_START_S`), picks the common start
(`--start-at`, the shards' one, or now plus `GO_DELAY_S`), tells it (`Go`), plays its own share,
and after its drain gathers the workers' statistics into its own (counts add, histograms merge):
one results document, one verdict. Replica watching, kills, cleanup, `before`/`after`,
the run's spans, metrics and log lines and the console stay in the parent; when it traces,
each worker records and exports its own request spans in the parent's trace (`WorkerJob.trace`)
and reports what its export did (`telemetry`). A stop anywhere (a signal to the parent, a guard
in any process, `--max-duration`, a worker that fails) stops every process; a second signal
is passed on too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from nimbus_scenarios.clock import within
from nimbus_scenarios.engine.histogram import LatencyHistogram
from nimbus_scenarios.engine.stats import RunStats, merge
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.results.model import ShardInfo, TelemetrySummary
from nimbus_scenarios.runner.context import Interrupted, RunContext, unless
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
from nimbus_scenarios.runner.crew_series import CrewRows, series_read
from nimbus_scenarios.runner.options import RunOptions
from nimbus_scenarios.runner.worker import WORKER_FLUSH_S, worker_main
from nimbus_scenarios.telemetry.link import WorkerTrace

__all__ = [
    "GO_DELAY_S",
    "REPORT_MARGIN_S",
    "WORKER_START_S",
    "WorkerPool",
    "worker_jobs",
    "worker_shard",
]

WORKER_START_S = 60.0
"""How long the workers may take to start (a fresh interpreter each, imports included) before
the run gives up (exit 4)."""
GO_DELAY_S = 0.5
"""Without a common start given, the phases start this long after every worker is ready: time
for `Go` to reach them."""
REPORT_MARGIN_S = 2 * WORKER_FLUSH_S
"""How long past its own drain (or the shutdown budget) the parent waits for the workers'
statistics (a worker flushes its spans first, within `WORKER_FLUSH_S`)."""
EXIT_WAIT_S = 5.0
"""How long a worker has to exit once the run is over before it is killed."""
LONGEST_WAIT_S = 30 * 24 * 3600.0
"""A worker waits for `Go` as long as the parent's `before` hypotheses take."""


def worker_shard(shard: ShardInfo, workers: int, worker: int) -> ShardInfo:
    """The global shard worker `worker` of `workers` sends for shard `shard`: I + N*w of N*W."""
    if not 0 <= worker < workers:
        raise ValueError(f"worker {worker} of {workers}")
    return ShardInfo(shard.index + shard.count * worker, shard.count * workers)


def worker_jobs(
    plan: Plan,
    options: RunOptions,
    scenario_text: str,
    workers: int,
    trace: WorkerTrace | None = None,
) -> tuple[RunOptions, list[WorkerJob]]:
    """The parent's options (it sends worker 0's share, reports its shard) and each other
    worker's job; `trace` is the parent's trace for the workers to join (None: not traced)."""
    shard = options.shard
    parent = dataclasses.replace(options, send_shard=worker_shard(shard, workers, 0))
    jobs = []
    for w in range(1, workers):
        own = worker_shard(shard, workers, w)
        worker_options = dataclasses.replace(
            options,
            shard=own,
            send_shard=None,
            preflight=False,
            install_signal_handlers=False,
            progress_interval_s=None,
            max_duration_s=None,  # the parent's deadline stops every worker
            start_at=None,  # told by the parent (`Go`)
            start_wait_s=LONGEST_WAIT_S,
            consumer_cleanup=False,
            run_id=f"{options.run_id}-w{w}" if options.run_id else None,
        )
        jobs.append(WorkerJob(w, plan, worker_options, scenario_text, trace))
    return parent, jobs


class WorkerPool(Crew):
    """The parent's crew: spawns the workers, tells them the start and stops, merges them."""

    def __init__(self, jobs: Sequence[WorkerJob]) -> None:
        self.jobs = list(jobs)
        self.processes: dict[int, BaseProcess] = {}
        self.conns: dict[int, Connection] = {}
        self.ready_seen: set[int] = set()
        self.ticks: dict[int, TickCounts] = {}
        self.reports: dict[int, Report] = {}
        self.errors: dict[int, str] = {}
        self.telemetry: list[TelemetrySummary] = []
        """What the workers' span exports did (the results' `telemetry` adds them)."""
        self.changed = asyncio.Event()
        self.ctx: RunContext | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ Crew
    def attach(self, ctx: RunContext) -> None:
        """Spawn the workers; from now on a stop of the run stops them too."""
        self.ctx = ctx
        self.loop = asyncio.get_running_loop()
        ctx.crew_counts = self.live_counts
        if series_read(ctx.plan.guards) is not None:  # the guards judge every worker's seconds
            ctx.crew_rows = CrewRows(job.index for job in self.jobs)
        spawn = multiprocessing.get_context("spawn")
        for job in self.jobs:
            mine, theirs = spawn.Pipe()
            process = spawn.Process(
                target=worker_main, args=(theirs, job), name=f"nimbus-worker-{job.index}"
            )
            process.daemon = True  # never outlives the parent
            process.start()
            theirs.close()
            self.processes[job.index] = process
            self.conns[job.index] = mine
            threading.Thread(
                target=self._listen, args=(job.index, mine), name="nimbus-worker", daemon=True
            ).start()
        self.tasks = [asyncio.ensure_future(self._pass_stops(ctx))]

    async def ready(self, ctx: RunContext) -> str | None:
        """Wait until every worker runs (or one failed)."""
        clock = ctx.clock
        deadline = clock.now() + WORKER_START_S
        try:
            await unless(ctx.state.stop, within(clock, self._until(self._all_ready), deadline))
        except Interrupted:
            return None
        except TimeoutError:
            late = sorted(set(self.processes) - self.ready_seen)
            return f"worker process(es) {_list(late)} did not start within {WORKER_START_S:g}s"
        if self.errors:
            return "; ".join(f"worker {w}: {e}" for w, e in sorted(self.errors.items()))
        return None

    async def load_starting(self, ctx: RunContext) -> None:
        """Pick the common start (unless one is given) and tell every worker."""
        if ctx.start_at is None:
            ctx.start_at = ctx.clock.wall() + GO_DELAY_S
        self._send_all(Go(ctx.start_at))

    async def load_done(self, ctx: RunContext) -> None:
        """Wait for every worker's statistics and merge them into the parent's."""
        clock = ctx.clock
        left = ctx.shutdown_left()
        wait = (ctx.plan.settings.timeout_s + 1.0) if left is None else left
        if ctx.state.force.is_set():
            wait = 0.0
        with contextlib.suppress(TimeoutError):
            await within(clock, self._until(self._all_done), clock.now() + wait + REPORT_MARGIN_S)
        stats = ctx.stats
        lateness = ctx.dispatcher.lateness if ctx.dispatcher is not None else None
        for w in sorted(self.processes):
            report = self.reports.get(w)
            if report is None:
                error = self.errors.get(w, "sent no results in time; its share is missing")
                ctx.state.worker_errors.append(f"worker {w}: {error}")
                continue
            stats = merge(stats, RunStats.thaw(report.stats))
            if lateness is not None and report.lateness is not None:
                lateness.add(LatencyHistogram.decode(report.lateness))
            ctx.state.notes.extend(f"worker {w}: {note}" for note in report.notes)
            if report.telemetry is not None:
                self.telemetry.append(report.telemetry)
        ctx.stats = stats
        ctx.crew_counts = None  # the merged statistics hold the workers' counts now
        ctx.crew_rows = None  # and their seconds

    async def close(self) -> None:
        """Stop the workers still running, wait a little for them, kill the rest."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self._send_all(Stop("the run is over"))
        await asyncio.to_thread(self._reap)

    # ------------------------------------------------------------ live counts
    def live_counts(self) -> TickCounts:
        """The workers' latest live counts, added up."""
        total = TickCounts()
        for counts in self.ticks.values():
            total = total.plus(counts)
        return total

    # ------------------------------------------------------------ internals
    def _all_ready(self) -> bool:
        return bool(self.errors) or self.ready_seen >= set(self.processes)

    def _all_done(self) -> bool:
        return set(self.reports) | set(self.errors) >= set(self.processes)

    async def _until(self, condition: object) -> None:
        assert callable(condition)
        while not condition():
            self.changed.clear()
            await self.changed.wait()

    async def _pass_stops(self, ctx: RunContext) -> None:
        await ctx.state.stop.wait()
        reason = ctx.state.abort.reason if ctx.state.abort is not None else "stopped"
        self._send_all(Stop(reason))
        await ctx.state.force.wait()
        self._send_all(Force())

    def _send_all(self, message: object) -> None:
        for w, conn in self.conns.items():
            if w in self.reports or w in self.errors:
                continue
            with contextlib.suppress(OSError, ValueError):
                conn.send(message)

    def _listen(self, worker: int, conn: Connection) -> None:
        """Read one worker's messages (a thread: `recv` blocks) and act on them on the loop."""
        loop = self.loop
        assert loop is not None
        while True:
            try:
                message: object = conn.recv()
            except (EOFError, OSError):
                message = None
            except Exception as exc:  # a message that cannot be read is a broken worker
                message = Failed(f"unreadable message: {type(exc).__name__}: {exc}")
            try:
                loop.call_soon_threadsafe(self._on_message, worker, message)
            except RuntimeError:
                return  # the loop is closed: the run is over
            if message is None or isinstance(message, (Report, Failed)):
                return

    def _on_message(self, worker: int, message: object) -> None:
        ctx = self.ctx
        assert ctx is not None
        match message:
            case Ready():
                self.ready_seen.add(worker)
            case Tick(counts, rows):
                self.ticks[worker] = counts
                if rows is not None and ctx.crew_rows is not None:
                    ctx.crew_rows.add(worker, rows)
            case Aborted(reason):
                ctx.request_stop(f"{reason} (in worker {worker})")
            case Report():
                self.reports[worker] = message
                self.ticks.pop(worker, None)
                self._sends_no_rows(ctx, worker)
            case Failed(error):
                self._fail(ctx, worker, f"failed: {error}")
            case None:
                if worker not in self.reports and worker not in self.errors:
                    code = self.processes[worker].exitcode
                    how = "" if code is None else f" (exit code {code})"
                    self._fail(ctx, worker, f"exited without its results{how}")
        self.changed.set()

    @staticmethod
    def _sends_no_rows(ctx: RunContext, worker: int) -> None:
        if ctx.crew_rows is not None:
            ctx.crew_rows.done(worker)

    def _fail(self, ctx: RunContext, worker: int, error: str) -> None:
        self.errors[worker] = error
        self.ticks.pop(worker, None)
        self._sends_no_rows(ctx, worker)
        if ctx.state.started and not ctx.state.stop.is_set():
            ctx.request_stop(f"worker {worker} {error}")

    def _reap(self) -> None:
        deadline = time.monotonic() + EXIT_WAIT_S
        for process in self.processes.values():
            process.join(max(deadline - time.monotonic(), 0.0))
        for process in self.processes.values():
            if process.is_alive():
                process.kill()
                process.join(EXIT_WAIT_S)
        for conn in self.conns.values():
            conn.close()


def _list(indexes: Sequence[int]) -> str:
    return ", ".join(map(str, indexes))

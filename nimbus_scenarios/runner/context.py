"""What every stage of a run shares: the plan, the seams (clock, transport, replica source,
listeners), the statistics, and `RunState`, the record of what has happened so far.

Times: `clock.now()` is the run's clock (the event loop's in production); `origin` is the clock
time of run offset 0, set when the first phase starts; `now_s()` is the run offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nimbus_scenarios.clock import Clock, wait_for_event
from nimbus_scenarios.engine.dispatch import CompiledTemplate, Dispatcher
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.engine.transport import LoadTransport
from nimbus_scenarios.events import Handlers
from nimbus_scenarios.judge.scaling import pod_offsets, restarts_since
from nimbus_scenarios.judge.windows import Seen
from nimbus_scenarios.plan.model import ExpectationPlan, Plan
from nimbus_scenarios.replicas import ReplicaSource
from nimbus_scenarios.results.model import (
    Abort,
    CleanupResult,
    Judgement,
    KillResult,
    ReplicaPoint,
    Stage,
)
from nimbus_scenarios.runner.counts import TickCounts
from nimbus_scenarios.runner.crew_series import CrewRows
from nimbus_scenarios.runner.options import RunOptions
from nimbus_scenarios.scaling import PodRecord, ScalingRecorder

__all__ = ["Interrupted", "RunContext", "RunState", "unless"]

_T = TypeVar("_T")


@dataclass
class RunState:
    """What has happened so far (mutable: the stages write it, judging reads it)."""

    stage: Stage = Stage.PREFLIGHT
    abort: Abort | None = None
    signals: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    """Set on the first stop request: scheduling ends, stages wind down."""
    force: asyncio.Event = field(default_factory=asyncio.Event)
    """Set on a second signal: stop waiting for requests in flight and for cleanup."""
    shutdown_deadline: float | None = None
    """Clock time by which a stopped run must be done with requests in flight and cleanup
    (the stop plus `--grace`)."""
    started: bool = False
    """Pre-flight passed and the stages began (only then are expectations judged)."""
    load_started: bool = False
    """A phase began: from then on there is something for cleanup to clean up."""
    phases_run: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Each phase that ran: (start, end) as run offsets."""
    running: tuple[str, float] | None = None
    """The phase running now, and its start."""
    kills: list[KillResult] = field(default_factory=list)
    decided: dict[int, Judgement] = field(default_factory=dict)
    """`before`/`after` verdicts by id() of their expectation, as the probes decided them."""
    cleanup: list[CleanupResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    start_late_s: float | None = None
    """How long after the common start the phases started (None without a common start)."""
    worker_errors: list[str] = field(default_factory=list)
    """Worker processes (`--workers`) that failed or did not report: their share is missing,
    an infrastructure failure (exit 4)."""


class RunContext:
    """The shared state and seams of one run."""

    def __init__(
        self,
        plan: Plan,
        options: RunOptions,
        *,
        clock: Clock,
        transport: LoadTransport,
        source: ReplicaSource | None,
        events: Handlers,
        run_id: str,
    ) -> None:
        self.plan = plan
        self.options = options
        self.clock = clock
        self.transport = transport
        self.source = source
        self.events = events
        self.run_id = run_id
        self.state = RunState()
        self.origin = clock.now()
        self.started_wall = clock.wall()
        self.stats = RunStats(self.origin)
        self.templates: dict[str, CompiledTemplate] = {}
        self.dispatcher: Dispatcher | None = None
        self.background: set[asyncio.Task[None]] = set()
        self.start_at: float | None = options.start_at
        """The common start (Unix time of run offset 0): `--start-at`, or what
        `--start-at-from` read at pre-flight; None: the phases start at once."""
        self.restarts_at_start: dict[str, int] = {}
        """Each pod's restarts when the phases started (`abort when pod restarts` counts the
        ones after)."""
        self.crew_counts: Callable[[], TickCounts] | None = None
        self.crew_rows: CrewRows | None = None
        """While other processes send shares of this run (`--workers`) and their statistics are
        not merged in yet: their seconds, which the guards add to this process's own."""
        """While other processes send shares of this run (`--workers`) and their statistics are
        not merged in yet: their live counts, added up (the status line shows the whole)."""
        self.send_shard = options.send_shard or options.shard
        """The share this process's engine sends (`RunOptions.send_shard`)."""
        self.missed_before: float | None = None
        """When a shard started after the common start: the clock time it started; arrivals
        due before it are dropped (`late_start`), never sent."""

    @property
    def primary(self) -> bool:
        """Shard 0 (or a run that is not sharded): it judges replicas, kills and cleans up."""
        return self.options.shard.index == 0

    @property
    def shown_url(self) -> str:
        """The target as results and messages may show it."""
        return self.options.target_shown or self.options.url

    def now_s(self) -> float:
        """The run offset now."""
        return self.clock.now() - self.origin

    def enter(self, stage: Stage) -> None:
        """Move to `stage` and tell the listeners."""
        self.state.stage = stage
        self.events.stage_started(stage)

    def request_stop(self, reason: str) -> None:
        """Stop the run (the first reason is the one kept)."""
        state = self.state
        if state.abort is None:
            at = self.now_s()
            state.abort = Abort(reason, at, state.stage)
            state.shutdown_deadline = self.clock.now() + self.options.grace_s
            self.events.aborted(reason, at)
        state.stop.set()

    def shutdown_left(self) -> float | None:
        """Seconds left before the shutdown deadline (None while the run is not stopped)."""
        deadline = self.state.shutdown_deadline
        return None if deadline is None else max(deadline - self.clock.now(), 0.0)

    async def sleep_until(self, deadline: float) -> bool:
        """Sleep until clock time `deadline`; False if the run was stopped first."""
        return not await wait_for_event(self.clock, self.state.stop, deadline)

    # ---------------------------------------------------------------- replicas
    def replica_points(self) -> list[ReplicaPoint]:
        """The replica samples so far, as run offsets."""
        if self.source is None:
            return []
        return [ReplicaPoint(s.at - self.origin, s.ready, s.desired) for s in self.source.samples]

    def seen(self, until_s: float | None = None) -> Seen:
        """How far the run and its replica source got: what windows may be judged on."""
        source = self.source
        lost = source.lost_at if source is not None else None
        until = self.now_s() if until_s is None else until_s
        phases_run = dict(self.state.phases_run)
        if self.state.running is not None:
            name, start = self.state.running
            phases_run.setdefault(name, (start, until))
        fresh = source.fresh_until if source is not None else None
        return Seen(
            until_s=until,
            phases_run=phases_run,
            phases_end_s=self.plan.phases_end_s,
            stopped=self.state.abort is not None,
            lost_at_s=None if lost is None else lost - self.origin,
            has_source=source is not None,
            fresh_until_s=(
                math.inf if source is None else -math.inf if fresh is None else fresh - self.origin
            ),
            stale=self.replicas_stale(),
        )

    def replicas_stale(self) -> bool:
        """Whether the replica source has stopped proving its data fresh: nothing proven for
        longer than its `stale_after_s`, or nothing proven at all."""
        source = self.source
        if source is None:
            return False
        fresh = source.fresh_until
        return fresh is None or self.clock.now() - fresh > source.stale_after_s

    def recorder(self) -> ScalingRecorder | None:
        """The replica source when it also records the autoscaler and the pods."""
        source = self.source
        return source if isinstance(source, ScalingRecorder) else None

    def scaling_pods(self) -> tuple[PodRecord, ...] | None:
        """The pods recorded so far, as run offsets; None when the source records no pods (it
        is no `ScalingRecorder`, or did not watch them)."""
        recorder = self.recorder()
        if recorder is None or not recorder.pods_watched:
            return None
        return pod_offsets(list(recorder.pods), self.origin)

    def pod_restarts(self) -> int | None:
        """Pod restarts since the phases started (None: pods not watched)."""
        recorder = self.recorder()
        if recorder is None or not recorder.pods_watched:
            return None
        return restarts_since(list(recorder.pods), self.restarts_at_start)

    def mark_restarts(self) -> None:
        """Note each pod's restarts now, when the phases start."""
        recorder = self.recorder()
        if recorder is not None:
            self.restarts_at_start = {p.name: p.restarts for p in recorder.pods}

    def watched_expectations(self) -> list[ExpectationPlan]:
        """The expectations judged on what the replica source records (replica windows,
        `reaction`, `pod startup`) of the phases and the scenario, in plan order."""
        found = [e for p in self.plan.phases for e in p.expectations if e.kind.watched]
        return found + [e for e in self.plan.expectations if e.kind.watched]

    def replica_expectations(self) -> list[ExpectationPlan]:
        """The replica windows of the phases and the scenario, in plan order."""
        found = [e for p in self.plan.phases for e in p.expectations if e.kind == "replicas"]
        return found + [e for e in self.plan.expectations if e.kind == "replicas"]


class Interrupted(Exception):
    """The event some work was raced against (`unless`) was set first."""


async def unless(event: asyncio.Event, work: Coroutine[Any, Any, _T]) -> _T:
    """The result of `work`, unless `event` is set first: then `work` is cancelled and
    `Interrupted` raised. Exceptions of `work` propagate."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        waiter.cancel()
        raise
    waiter.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise Interrupted

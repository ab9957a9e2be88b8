"""The seam between a run and the other processes of the same run on one machine (`--workers`).

`run_scenario` calls a `Crew` at four moments: when the run's context exists (`attach`), after
pre-flight (`ready`: every worker started), just before the phases (`load_starting`: the common
start is picked and told), and after the drain (`load_done`: the workers' statistics are merged
in); `close` when the run is over, whatever happened. The parent's crew is `runner.pool`, a
worker's is `runner.worker`; the base class does nothing at each moment.

The messages they exchange over a pipe are frozen dataclasses (pickled by `multiprocessing`):
nothing crosses as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from nimbus_scenarios.engine.records import StatsRecord
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.results.model import TelemetrySummary
from nimbus_scenarios.runner.context import RunContext
from nimbus_scenarios.runner.counts import GuardRows, TickCounts
from nimbus_scenarios.runner.options import RunOptions
from nimbus_scenarios.telemetry.link import WorkerTrace

__all__ = [
    "Aborted",
    "Crew",
    "Failed",
    "Force",
    "Go",
    "Ready",
    "Report",
    "Stop",
    "Tick",
    "TickCounts",
    "WorkerJob",
]


class Crew:
    """What a run tells the other processes of its crew; every moment a no-op by default."""

    def attach(self, ctx: RunContext) -> None:
        """The run's context exists (signals are installed); nothing has been sent yet."""

    async def ready(self, ctx: RunContext) -> str | None:
        """After pre-flight: None when the crew can run, else the infrastructure problem."""
        return None

    async def load_starting(self, ctx: RunContext) -> None:
        """Just before the phases: `ctx.start_at` may be set here."""

    async def load_done(self, ctx: RunContext) -> None:
        """The phases and the drain are over: `ctx.stats` may take the crew's statistics."""

    async def close(self) -> None:
        """The run is over (or failed): let go of everything."""


@dataclass(frozen=True, slots=True)
class WorkerJob:
    """What a worker process is started with: the parent's plan (never parsed again), its
    options for this worker, the scenario's text (for the results' hash) and, when the parent
    traces, its trace to join."""

    index: int
    """1..W-1: the worker's number (the parent is worker 0)."""
    plan: Plan
    options: RunOptions
    scenario_text: str
    trace: WorkerTrace | None = None
    """The parent's trace (its request spans join it); None: tracing is off, nothing to do."""


# ---------------------------------------------------------------- parent -> worker


@dataclass(frozen=True, slots=True)
class Go:
    """Start the phases at wall-clock `start_at` (Unix seconds)."""

    start_at: float


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the run (the parent's first reason)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Force:
    """Stop waiting for requests in flight (a second signal to the parent)."""


# ---------------------------------------------------------------- worker -> parent


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker runs and waits for `Go`."""


@dataclass(frozen=True, slots=True)
class Tick:
    """A worker's live counts, every second while it runs, and the seconds of its series
    completed since the last tick when the parent judges guards on them."""

    counts: TickCounts
    rows: GuardRows | None = None


@dataclass(frozen=True, slots=True)
class Aborted:
    """The worker stopped its run itself (a guard fired): the parent stops every worker."""

    reason: str


@dataclass(frozen=True, slots=True)
class Report:
    """What a worker gathered, once its run is over: its statistics, its send lateness (an
    encoded histogram, None when it sent nothing on a schedule), its notes and, when it traced,
    what its span export did (sent once the export is flushed)."""

    stats: StatsRecord
    lateness: str | None
    notes: tuple[str, ...]
    telemetry: TelemetrySummary | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The worker could not run: what went wrong."""

    error: str

"""Run events: what the runner tells its listeners (console, `--monitor`, telemetry, logs).

Handlers subclass `RunHandler` and override what they need; every method is a no-op by default
and must not raise (the runner guards them anyway, so a broken listener never breaks a run).
`Handlers` fans one event out to many. Per-request events do not go through here: they are the
dispatcher's `RequestObserver`s, kept off the generic path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from nimbus_scenarios.plan.model import PhasePlan, Plan
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.results.model import Judgement, RunResults, Stage
from nimbus_scenarios.scaling import AutoscalerSample, MetricStatus, PodRecord

if TYPE_CHECKING:
    from nimbus_scenarios.engine.stats import RunStats

__all__ = [
    "Handlers",
    "PodChange",
    "Progress",
    "RequestErrors",
    "RunHandler",
    "WindowState",
    "WindowStatus",
]


class WindowState(StrEnum):
    """Where a replica window stands while the run goes on."""

    WAITING = "waiting"
    """Its window has not started."""
    OPEN = "open"
    """Its window is open and the condition has not been met (or not failed) yet."""
    PASSED = "passed"
    FAILED = "failed"
    NOT_JUDGED = "not_judged"


class PodChange(StrEnum):
    """What happened to one of the Deployment's pods (`RunHandler.pod_changed`)."""

    CREATED = "created"
    READY = "ready"
    """Its `Ready` condition turned True (the first time)."""
    RESTARTED = "restarted"
    """A container restarted (the restart count grew)."""
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class WindowStatus:
    """One replica expectation's state, by its text."""

    text: str
    state: WindowState


@dataclass(frozen=True, slots=True)
class RequestErrors:
    """One request template's failures so far, over every phase: how many, and by failing
    status (``"500"``) and error kind (``"timeout"``), most frequent first."""

    name: str
    failed: int
    causes: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Progress:
    """Live progress, every `progress_interval_s`: cheap to compute, plain data."""

    stage: Stage
    phase: str | None
    elapsed_s: float
    remaining_s: float
    target_rate: float
    achieved_rate: float
    """Requests sent in the last whole second."""
    in_flight: int
    p95_ms: float | None
    """Of the most recent second with completions."""
    sent: int
    dropped: int
    errors_pct: float
    ready: int | None
    desired: int | None
    windows: tuple[WindowStatus, ...] = ()
    request_errors: tuple[RequestErrors, ...] = ()
    """The templates that failed so far (none while nothing failed), in first-seen order."""
    metrics: tuple[MetricStatus, ...] = ()
    """The autoscaler's metrics against their targets, from its latest status (none when the
    replica source records no autoscaler)."""

    def count(self, state: WindowState) -> int:
        """How many replica windows are in `state`."""
        return sum(1 for window in self.windows if window.state is state)


class RunHandler:
    """A listener to a run's events; all methods default to doing nothing."""

    def run_started(self, plan: Plan, run_id: str) -> None:
        """Pre-flight passed; the `before` stage starts."""

    def stage_started(self, stage: Stage) -> None:
        """`before`, `phases`, `pending`, `after` or `cleanup` begins."""

    def load_started(self, stats: RunStats) -> None:
        """The phases are about to start; `stats` holds the engine's live counts (read them
        only; they keep changing until the run ends)."""

    def phase_started(self, phase: PhasePlan, at_s: float) -> None:
        """A phase begins at run offset `at_s`."""

    def phase_ended(self, phase: PhasePlan, at_s: float) -> None:
        """A phase stops scheduling at run offset `at_s`."""

    def replica_sample(self, sample: ReplicaSample, at_s: float) -> None:
        """The replica source recorded a change."""

    def autoscaler_changed(self, sample: AutoscalerSample, at_s: float) -> None:
        """The replica source recorded a new autoscaler status (`scaling.ScalingRecorder`):
        once per sample, at its run offset `at_s`."""

    def pod_changed(self, pod: PodRecord, change: PodChange, at_s: float) -> None:
        """One of the Deployment's pods was created, became Ready, restarted or was deleted
        (seen by a `scaling.ScalingRecorder` after the run's listeners started); `pod` is its
        latest record, `at_s` the change's run offset (a restart: when it was seen)."""

    def pods_killed(self, names: Sequence[str], at_s: float) -> None:
        """`at T kill N pods` deleted these pods."""

    def expectation_decided(self, judgement: Judgement, at_s: float | None) -> None:
        """An expectation got its verdict."""

    def aborted(self, reason: str, at_s: float) -> None:
        """The run stops early: a guard fired, a signal came, or the deadline passed."""

    def progress(self, status: Progress) -> None:
        """Live progress, every `progress_interval_s` while the run goes on."""

    def run_ended(self, results: RunResults) -> None:
        """The results document is complete."""


class Handlers(RunHandler):
    """Many handlers as one: each event goes to each, in order; one that raises is noted in
    `failures` and the others still hear the event."""

    def __init__(self, handlers: Sequence[RunHandler]) -> None:
        self.handlers = tuple(handlers)
        self.failures: list[str] = []

    def _each(self, name: str, *args: object) -> None:
        for handler in self.handlers:
            try:
                getattr(handler, name)(*args)
            except Exception as exc:
                self.failures.append(f"listener {type(handler).__name__}.{name} failed: {exc}")

    def run_started(self, plan: Plan, run_id: str) -> None:
        """Fan out."""
        self._each("run_started", plan, run_id)

    def stage_started(self, stage: Stage) -> None:
        """Fan out."""
        self._each("stage_started", stage)

    def load_started(self, stats: RunStats) -> None:
        """Fan out."""
        self._each("load_started", stats)

    def phase_started(self, phase: PhasePlan, at_s: float) -> None:
        """Fan out."""
        self._each("phase_started", phase, at_s)

    def phase_ended(self, phase: PhasePlan, at_s: float) -> None:
        """Fan out."""
        self._each("phase_ended", phase, at_s)

    def replica_sample(self, sample: ReplicaSample, at_s: float) -> None:
        """Fan out."""
        self._each("replica_sample", sample, at_s)

    def autoscaler_changed(self, sample: AutoscalerSample, at_s: float) -> None:
        """Fan out."""
        self._each("autoscaler_changed", sample, at_s)

    def pod_changed(self, pod: PodRecord, change: PodChange, at_s: float) -> None:
        """Fan out."""
        self._each("pod_changed", pod, change, at_s)

    def pods_killed(self, names: Sequence[str], at_s: float) -> None:
        """Fan out."""
        self._each("pods_killed", names, at_s)

    def expectation_decided(self, judgement: Judgement, at_s: float | None) -> None:
        """Fan out."""
        self._each("expectation_decided", judgement, at_s)

    def aborted(self, reason: str, at_s: float) -> None:
        """Fan out."""
        self._each("aborted", reason, at_s)

    def progress(self, status: Progress) -> None:
        """Fan out."""
        self._each("progress", status)

    def run_ended(self, results: RunResults) -> None:
        """Fan out."""
        self._each("run_ended", results)

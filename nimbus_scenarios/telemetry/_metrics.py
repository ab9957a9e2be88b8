"""The run's metrics: request counters, gauges fed by run events, and the duration histogram.

Its place: a `RunHandler` (`RunMetrics`) among telemetry's handlers; it owns the duration
histogram (`_durations`) that the request observer feeds. Imported only when telemetry is on.
Names follow the OpenTelemetry conventions (dotted namespaces, units in `unit`, never in the
name); docs/telemetry.md lists each with the Prometheus name the OTLP translation gives it:

- `nimbus.request.duration` (s): see `_durations`;
- `nimbus.requests.scheduled`, `.sent`, `.dropped`, `.failed` ({request}, monotonic counters):
  the engine's own counts per phase and `request` template, read live from its `RunStats`
  (handed over by `load_started`) when the metric reader collects, so they equal the results'
  counts; they keep reporting their final values after the run ends, for the last export;
- `nimbus.load.target_rate`, `nimbus.load.achieved_rate` ({request}/s) and
  `nimbus.requests.in_flight` ({request}), gauges from the last `Progress`;
- `nimbus.replicas` ({replica}) with `kind` = `ready` / `desired`, from the last replica sample;
- `nimbus.run.info`, always 1, and `nimbus.run.start_time` (s): the Unix time the run
  started (the dashboard lists runs newest first by it).

Every point has `scenario`, `run_id` and, inside a phase, `phase`. The gauges report nothing
after `run_ended`. Point times are the SDK's (real time), not the run's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Final

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from nimbus_scenarios.events import Progress, RunHandler
from nimbus_scenarios.plan.model import PhasePlan, Plan
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.results.model import RunResults
from nimbus_scenarios.telemetry._durations import (
    DURATION_BUCKETS_S,
    DurationHistogram,
    ExemplarFilter,
    SeriesKey,
    duration_attributes,
)

if TYPE_CHECKING:
    from nimbus_scenarios.engine.stats import RequestStats, RunStats

__all__ = ["COUNTERS", "GAUGES", "RunMetrics"]

REQUEST: Final = "{request}"
RATE: Final = "{request}/s"

GAUGES: Final[tuple[tuple[str, str, Callable[[Progress], float], str], ...]] = (
    ("nimbus.load.target_rate", RATE, lambda p: p.target_rate, "Target arrival rate"),
    ("nimbus.load.achieved_rate", RATE, lambda p: p.achieved_rate, "Requests sent last second"),
    ("nimbus.requests.in_flight", REQUEST, lambda p: p.in_flight, "Requests in flight"),
)
"""(name, unit, reading of `Progress`, description) of the progress gauges."""

COUNTERS: Final[tuple[tuple[str, Callable[[RequestStats], int], str], ...]] = (
    ("nimbus.requests.scheduled", lambda r: r.scheduled, "Requests due by the plan"),
    ("nimbus.requests.sent", lambda r: r.sent, "Requests sent"),
    ("nimbus.requests.dropped", lambda r: r.dropped, "Requests due but never sent"),
    (
        "nimbus.requests.failed",
        lambda r: r.failed,
        "Sent requests that failed (error status, no response, or abandoned in flight)",
    ),
)
"""(name, reading of a template's `RequestStats`, description) of the request counters."""


class RunMetrics(RunHandler):
    """The instruments of one run, fed by its events; the duration histogram's attributes."""

    def __init__(
        self,
        meter: Meter,
        plan: Plan,
        *,
        run_id: str,
        exemplars: ExemplarFilter = ExemplarFilter.TRACE_BASED,
    ) -> None:
        self.scenario = plan.scenario
        self.run_id = run_id
        self.durations = DurationHistogram(
            DURATION_BUCKETS_S, self.duration_attributes, exemplars=exemplars
        )
        self._attributes: dict[str | None, dict[str, str]] = {}
        self._status: Progress | None = None
        self._replicas: ReplicaSample | None = None
        self._stats: RunStats | None = None
        self._phase: str | None = None
        self._ended = False
        self._started = time.time()
        for name, unit, read, description in GAUGES:
            meter.create_observable_gauge(
                name, callbacks=[self._progress_gauge(read)], unit=unit, description=description
            )
        for name, count, description in COUNTERS:
            meter.create_observable_counter(
                name, callbacks=[self._counter(count)], unit=REQUEST, description=description
            )
        meter.create_observable_gauge(
            "nimbus.replicas",
            callbacks=[self._observe_replicas],
            unit="{replica}",
            description="Replicas of the target Deployment by kind (ready, desired)",
        )
        # Always one point: the SDK skips an export with no data at all, and the duration
        # histogram rides on exports (the last one at shutdown, after the gauges went quiet).
        meter.create_observable_gauge(
            "nimbus.run.info",
            callbacks=[self._observe_run],
            description="1 while the run's telemetry lives; attributes scenario, run_id",
        )
        meter.create_observable_gauge(
            "nimbus.run.start_time",
            callbacks=[self._observe_start],
            unit="s",
            description="Unix time the run started",
        )

    def attributes(self, phase: str | None) -> dict[str, str]:
        """`scenario`, `run_id` and (inside a phase) `phase`, built once per phase."""
        attributes = self._attributes.get(phase)
        if attributes is None:
            attributes = {"scenario": self.scenario, "run_id": self.run_id}
            if phase:
                attributes["phase"] = phase
            self._attributes[phase] = attributes
        return attributes

    def duration_attributes(self, key: SeriesKey) -> Mapping[str, str]:
        """The attributes of one duration series (`_durations.duration_attributes`, and ours)."""
        return {"scenario": self.scenario, "run_id": self.run_id, **duration_attributes(key)}

    def end(self) -> None:
        """Report nothing more from the gauges (the run ended, or telemetry shuts down)."""
        self._ended = True

    # ------------------------------------------------------------------ run events
    def run_started(self, plan: Plan, run_id: str) -> None:
        """Adopt the runner's run id (if it differs)."""
        self._started = time.time()
        if run_id and run_id != self.run_id:
            self.run_id = run_id
            self._attributes.clear()
            self.durations.forget_attributes()

    def load_started(self, stats: RunStats) -> None:
        """The engine's live counts, read by the request counters."""
        self._stats = stats

    def phase_started(self, phase: PhasePlan, at_s: float) -> None:
        """The phase the replica gauge is attributed to."""
        self._phase = phase.name

    def phase_ended(self, phase: PhasePlan, at_s: float) -> None:
        """Replicas are attributed to no phase between phases."""
        if self._phase == phase.name:
            self._phase = None

    def replica_sample(self, sample: ReplicaSample, at_s: float) -> None:
        """Keep the latest sample for `nimbus.replicas`."""
        self._replicas = sample

    def progress(self, status: Progress) -> None:
        """Keep the latest status for the progress gauges."""
        self._status = status

    def run_ended(self, results: RunResults) -> None:
        """The gauges go quiet."""
        self.end()

    # ------------------------------------------------------------------ callbacks
    def _progress_gauge(
        self, read: Callable[[Progress], float]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            status = self._status
            if status is None or self._ended:
                return []
            return [Observation(read(status), self.attributes(status.phase))]

        return callback

    def _counter(
        self, count: Callable[[RequestStats], int]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            stats = self._stats
            if stats is None:
                return []
            # Read on the export thread while the loop records: list() copies each dict in
            # one step, and every count is a plain int.
            return [
                Observation(count(request), {**self.attributes(phase.name), "request": name})
                for phase in list(stats.phases.values())
                for name, request in list(phase.requests.items())
            ]

        return callback

    def _observe_replicas(self, _options: CallbackOptions) -> Iterable[Observation]:
        sample = self._replicas
        if sample is None or self._ended:
            return []
        attributes = self.attributes(self._phase)
        return [
            Observation(sample.ready, {**attributes, "kind": "ready"}),
            Observation(sample.desired, {**attributes, "kind": "desired"}),
        ]

    def _observe_run(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(1, self.attributes(None))]

    def _observe_start(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._started, self.attributes(None))]

"""The run's metrics: gauges fed by run events, and the request duration histogram.

Its place: a `RunHandler` (`RunMetrics`) among telemetry's handlers, plus the histogram that the
request observer (`_requests.RequestSpans.observe`) feeds for every response. Imported only when
telemetry is on. The gauges read the last `Progress` and the last replica sample when the SDK's
metric reader collects (every `OTEL_METRIC_EXPORT_INTERVAL`, and at shutdown); after `run_ended`
they report nothing. Names and attributes are what the Grafana dashboards query:

- `nimbus_target_rate`, `nimbus_achieved_rate`, `nimbus_in_flight` (from `Progress`);
- `nimbus_replicas` with `kind` = `ready` / `desired` (from the last replica sample);
- `nimbus_run_info`, always 1;
- `nimbus_request_duration_seconds`, a cumulative explicit-bucket histogram of the requests
  that got a response (as the results' latency: a request with no response is not timed).

Every point has `scenario`, `run_id` and, inside a phase, `phase`. Point times are the SDK's
(real time), not the run's clock.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
)

from nimbus_scenarios.events import Progress, RunHandler
from nimbus_scenarios.plan.model import PhasePlan, Plan
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.results.model import RunResults

__all__ = ["DURATION_BUCKETS_S", "DurationHistogram", "RunMetrics"]

DURATION_BUCKETS_S: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
"""Upper bounds of `nimbus_request_duration_seconds`' buckets: 5 ms to a minute."""

_PROGRESS_GAUGES: Final[tuple[tuple[str, Callable[[Progress], float], str], ...]] = (
    ("nimbus_target_rate", lambda p: p.target_rate, "Target arrival rate, requests per second"),
    ("nimbus_achieved_rate", lambda p: p.achieved_rate, "Requests sent in the last second"),
    ("nimbus_in_flight", lambda p: p.in_flight, "Requests in flight"),
)


class _Series:
    """One attribute set (one phase) of `DurationHistogram`."""

    __slots__ = ("attributes", "count", "counts", "max", "min", "sum")

    def __init__(self, attributes: Mapping[str, str], buckets: int) -> None:
        self.attributes = dict(attributes)
        self.counts = [0] * buckets
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf


class DurationHistogram:
    """`nimbus_request_duration_seconds`, aggregated here rather than by the SDK.

    The SDK's `Histogram.record` costs about 8 us a call, too much for every request on the
    event loop; this costs a bisect and a few additions under an uncontended lock (under 1 us),
    so every request is counted. `_counting.CountingMetricExporter` adds `metric()` to every
    metric export: a cumulative explicit-bucket histogram, what the SDK's would have been.
    """

    NAME: Final = "nimbus_request_duration_seconds"
    UNIT: Final = "s"
    DESCRIPTION: Final = "Request duration, send to complete response"

    def __init__(
        self, boundaries: Sequence[float], attributes_for: Callable[[str], Mapping[str, str]]
    ) -> None:
        self.boundaries = tuple(boundaries)
        self.attributes_for = attributes_for
        self.started_ns = time.time_ns()
        self._series: dict[str, _Series] = {}
        self._lock = threading.Lock()

    def record(self, key: str, seconds: float) -> None:
        """Count one duration for the series `key` (the phase)."""
        series = self._series.get(key)
        if series is None:
            series = _Series(self.attributes_for(key), len(self.boundaries) + 1)
            self._series[key] = series
        index = bisect_left(self.boundaries, seconds)
        with self._lock:  # the export thread reads the series while the loop records
            series.counts[index] += 1
            series.count += 1
            series.sum += seconds
            series.min = min(series.min, seconds)
            series.max = max(series.max, seconds)

    def metric(self) -> Metric | None:
        """The histogram as an SDK `Metric` (None before the first request)."""
        now = time.time_ns()
        with self._lock:
            points = [
                HistogramDataPoint(
                    attributes=dict(series.attributes),
                    start_time_unix_nano=self.started_ns,
                    time_unix_nano=now,
                    count=series.count,
                    sum=series.sum,
                    bucket_counts=tuple(series.counts),
                    explicit_bounds=self.boundaries,
                    min=series.min,
                    max=series.max,
                )
                for series in self._series.values()
                if series.count
            ]
        if not points:
            return None
        return Metric(
            name=self.NAME,
            description=self.DESCRIPTION,
            unit=self.UNIT,
            data=Histogram(
                data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE
            ),
        )


class RunMetrics(RunHandler):
    """The gauges of one run, fed by its events; the duration histogram's attributes."""

    def __init__(self, meter: Meter, plan: Plan, *, run_id: str) -> None:
        self.scenario = plan.scenario
        self.run_id = run_id
        self.durations = DurationHistogram(DURATION_BUCKETS_S, self.attributes)
        self._attributes: dict[str | None, dict[str, str]] = {}
        self._status: Progress | None = None
        self._replicas: ReplicaSample | None = None
        self._phase: str | None = None
        self._ended = False
        # Gauges have no unit, so that the Prometheus names stay exactly these.
        for name, read, description in _PROGRESS_GAUGES:
            meter.create_observable_gauge(
                name, callbacks=[self._progress_gauge(read)], description=description
            )
        meter.create_observable_gauge(
            "nimbus_replicas",
            callbacks=[self._observe_replicas],
            description="Replicas of the target Deployment by kind (ready, desired)",
        )
        # Always one point: the SDK skips an export with no data at all, and the duration
        # histogram rides on exports (the last one at shutdown, after the gauges went quiet).
        meter.create_observable_gauge(
            "nimbus_run_info",
            callbacks=[self._observe_run],
            description="1 while the run's telemetry lives; attributes scenario, run_id",
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

    def end(self) -> None:
        """Report nothing more (the run ended, or telemetry shuts down)."""
        self._ended = True

    # ------------------------------------------------------------------ run events
    def run_started(self, plan: Plan, run_id: str) -> None:
        """Adopt the runner's run id (if it differs)."""
        if run_id and run_id != self.run_id:
            self.run_id = run_id
            self._attributes.clear()

    def phase_started(self, phase: PhasePlan, at_s: float) -> None:
        """The phase the replica gauge is attributed to."""
        self._phase = phase.name

    def phase_ended(self, phase: PhasePlan, at_s: float) -> None:
        """Replicas are attributed to no phase between phases."""
        if self._phase == phase.name:
            self._phase = None

    def replica_sample(self, sample: ReplicaSample, at_s: float) -> None:
        """Keep the latest sample for `nimbus_replicas`."""
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

"""`nimbus.request.duration`: the request duration histogram, aggregated here, with exemplars.

Its place: the request observer (`_requests.RequestSpans.observe`) records every finished
request into it, sampled or not; `_counting.CountingMetricExporter` adds `metric()` to every
metric export. Imported only when telemetry is on.

Every request that finished is timed from its send to its end: a response (any status) to its
last byte, a request with no response (timeout, refused, reset...) to the error. That differs
from the results' latency, which times responses only (`engine.stats`); this histogram answers
"how long did requests take, and how did they end", with the end in its attributes. A request
abandoned in flight when the run stopped is not timed (it has no end); the failed counter
counts it. Attributes (built once per series): `scenario`, `run_id`, `phase`, `request` (the
template), `outcome` (`success` or `error`, by the template's `ok_status`), `status_class`
(`2xx` ... `5xx`, or `none` without a response) and, as the HTTP client semantic conventions
define it, `error.type`: the status code for a status of 400 or more, the error kind (`timeout`,
`connect`, ...) when there was no response, absent otherwise.

Exemplars follow `OTEL_METRICS_EXEMPLAR_FILTER` (`ExemplarFilter`): with `trace_based` (the
default) a request whose span was sampled leaves an exemplar carrying its trace and span ids;
with `always_on` every request does (an unsampled one names its phase span); `always_off`
none. Each bucket keeps its latest exemplar until the next export, as the SDK's aligned
histogram bucket reservoir does.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Final

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
)

__all__ = [
    "DURATION_BUCKETS_S",
    "DurationHistogram",
    "ExemplarFilter",
    "SeriesKey",
    "duration_attributes",
    "exemplar_filter",
]

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
"""Upper bounds of `nimbus.request.duration`'s buckets: 5 ms to a minute."""

EXEMPLAR_FILTER_ENV: Final = "OTEL_METRICS_EXEMPLAR_FILTER"

SeriesKey = tuple[str, str, bool, int | None, str | None]
"""(phase, template, ok, status or None, error kind or None): one series of the histogram."""


class ExemplarFilter(StrEnum):
    """Which measurements may become exemplars (the specification's three filters)."""

    TRACE_BASED = "trace_based"
    ALWAYS_ON = "always_on"
    ALWAYS_OFF = "always_off"


def exemplar_filter(environ: Mapping[str, str]) -> tuple[ExemplarFilter, str | None]:
    """The filter `OTEL_METRICS_EXEMPLAR_FILTER` names (default `trace_based`), and a problem to
    report when the value is not one of the three (then the default is used)."""
    raw = environ.get(EXEMPLAR_FILTER_ENV, "").strip().lower()
    if not raw:
        return ExemplarFilter.TRACE_BASED, None
    try:
        return ExemplarFilter(raw), None
    except ValueError:
        known = ", ".join(f.value for f in ExemplarFilter)
        return (
            ExemplarFilter.TRACE_BASED,
            f"{EXEMPLAR_FILTER_ENV}={raw!r} is not one of {known}; using trace_based",
        )


def status_class(status: int | None) -> str:
    """`2xx`-style class of a status code; `none` without a response."""
    if status is None:
        return "none"
    return f"{status // 100}xx"


def duration_attributes(key: SeriesKey) -> dict[str, str]:
    """The attributes that tell one request series apart (without `scenario` and `run_id`)."""
    phase, template, ok, status, error = key
    attributes = {
        "phase": phase,
        "request": template,
        "outcome": "success" if ok else "error",
        "status_class": status_class(status),
    }
    if status is None:
        attributes["error.type"] = str(error) if error else "unknown"
    elif status >= 400:
        attributes["error.type"] = str(status)
    return attributes


class _Series:
    """One attribute set of `DurationHistogram`."""

    __slots__ = ("attributes", "count", "counts", "exemplars", "max", "min", "sum")

    def __init__(self, attributes: Mapping[str, str], buckets: int) -> None:
        self.attributes = dict(attributes)
        self.counts = [0] * buckets
        self.exemplars: list[Exemplar | None] = [None] * buckets
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf


class DurationHistogram:
    """`nimbus.request.duration`, aggregated here rather than by the SDK.

    The SDK's `Histogram.record` costs about 8 us a call, too much for every request on the
    event loop; this costs a bisect and a few additions under an uncontended lock (under 1 us),
    so every request is counted. `metric()` is a cumulative explicit-bucket histogram, what the
    SDK's would have been, exemplars included.
    """

    NAME: Final = "nimbus.request.duration"
    UNIT: Final = "s"
    DESCRIPTION: Final = "Duration of finished requests, send to response or error"

    def __init__(
        self,
        boundaries: Sequence[float],
        attributes_for: Callable[[SeriesKey], Mapping[str, str]],
        *,
        exemplars: ExemplarFilter = ExemplarFilter.TRACE_BASED,
    ) -> None:
        self.boundaries = tuple(boundaries)
        self.attributes_for = attributes_for
        self.exemplars = exemplars
        self.started_ns = time.time_ns()
        self._series: dict[SeriesKey, _Series] = {}
        self._lock = threading.Lock()

    def forget_attributes(self) -> None:
        """Build attributes anew for series seen from now on (the run id changed)."""
        with self._lock:
            self._series.clear()

    def record(self, key: SeriesKey, seconds: float, traceparent: str | None) -> None:
        """Count one duration for the series `key`; `traceparent` is the request's (None
        without tracing), whose sampled flag decides a trace-based exemplar."""
        series = self._series.get(key)
        if series is None:
            series = _Series(self.attributes_for(key), len(self.boundaries) + 1)
            self._series[key] = series
        index = bisect_left(self.boundaries, seconds)
        exemplar = None
        mode = self.exemplars
        if mode is ExemplarFilter.TRACE_BASED:
            if traceparent is not None and traceparent[-1] == "1":
                exemplar = _exemplar(seconds, traceparent)
        elif mode is ExemplarFilter.ALWAYS_ON:
            exemplar = _exemplar(seconds, traceparent)
        with self._lock:  # the export thread reads the series while the loop records
            series.counts[index] += 1
            series.count += 1
            series.sum += seconds
            series.min = min(series.min, seconds)
            series.max = max(series.max, seconds)
            if exemplar is not None:
                series.exemplars[index] = exemplar

    def metric(self) -> Metric | None:
        """The histogram as an SDK `Metric` (None before the first request); the exemplars
        are handed out once."""
        now = time.time_ns()
        points = []
        with self._lock:
            for series in self._series.values():
                if not series.count:
                    continue
                exemplars = [e for e in series.exemplars if e is not None]
                series.exemplars = [None] * len(series.exemplars)
                points.append(
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
                        exemplars=exemplars,
                    )
                )
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


def _exemplar(seconds: float, traceparent: str | None) -> Exemplar:
    """An exemplar now, naming the span in `traceparent` (`00-<trace>-<span>-<flags>`)."""
    if traceparent is None:
        return Exemplar({}, seconds, time.time_ns())
    return Exemplar(
        {}, seconds, time.time_ns(), int(traceparent[36:52], 16), int(traceparent[3:35], 16)
    )

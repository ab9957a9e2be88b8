"""KEDA/HPA arithmetic for the local fleet: metric samples in, a desired replica count out.

Its place: the `local` stage. In the cluster the consumer's replica count comes from a KEDA
ScaledObject (three Prometheus triggers, see design/consumer-api.md) feeding the Kubernetes HPA.
`local.fleet.Fleet` stands in for that stack on loopback: it scrapes every reference consumer's
`/metrics`, hands the scrapes to an `Autoscaler` from this module and applies its `Decision`.
This module is pure arithmetic (no I/O, no clock of its own: every call takes `now`), so it is
unit-tested with made-up samples.

What is reproduced, in order:

1. Per trigger, the value of its Prometheus query at `now`: `rate()` over the metric window with
   Prometheus's extrapolation (`prometheus_rate`), per replica series, summed over replicas
   (series of replicas that are gone still count until they age out of the window, as in
   Prometheus). The latency trigger divides the summed rates of `_sum` and `_count`. An empty
   result (fewer than two samples in the window) counts as 0, as KEDA's default
   `ignoreNullValues: true` does.
2. Per trigger, the HPA's proposal for an External metric with an `AverageValue` target (KEDA's
   default metric type): `ceil(value / threshold)`, unless the usage ratio
   `value / (threshold * current)` is within the tolerance (10%) of 1, in which case `current`.
3. The recommendation: the largest proposal, clamped to [min, max].
4. Stabilization: scale up to the *lowest* recommendation within the scale-up window (default 0 s:
   immediately), scale down only to the *highest* recommendation within the scale-down window
   (default 300 s).
5. Rate policies (HPA defaults): up by at most max(4 pods, 100 %) per 15 s period, down by at most
   100 % per period; then the [min, max] clamp.

Simplifications: one replica's series of a metric are summed before `rate()` (exact unless a new
label set, such as a first 5xx, appears mid-window); each replica's scrape is taken at one instant.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final

__all__ = [
    "GC_TRIGGER",
    "HTTP_RATE_TRIGGER",
    "LATENCY_TRIGGER",
    "Autoscaler",
    "AutoscalerConfig",
    "Decision",
    "MetricSample",
    "Point",
    "TriggerReading",
    "parse_metrics_text",
    "prometheus_rate",
]

HTTP_RATE_TRIGGER: Final = "http_rate"
"""`sum(rate(http_requests_total{handler="/process",method="POST"}[1m]))`, target 5 req/s."""
LATENCY_TRIGGER: Final = "latency"
"""`sum(rate(http_request_duration_seconds_sum[1m])) / sum(rate(..._count[1m]))`, target 2 s."""
GC_TRIGGER: Final = "gc"
"""`sum(rate(python_gc_collections_total[2m]))`, target 0.5 /s."""

_QUERIES: Final = {
    HTTP_RATE_TRIGGER: 'sum(rate(http_requests_total{{handler="/process",method="POST"}}[{w}]))',
    LATENCY_TRIGGER: (
        "sum(rate(http_request_duration_seconds_sum[{w}])) / "
        "sum(rate(http_request_duration_seconds_count[{w}]))"
    ),
    GC_TRIGGER: "sum(rate(python_gc_collections_total[{w}]))",
}
_UNITS: Final = {HTTP_RATE_TRIGGER: "/s", LATENCY_TRIGGER: "s", GC_TRIGGER: "/s"}
_EXTRAPOLATION_SLACK: Final = 1.1  # Prometheus extrapolates to a range edge within 1.1 intervals


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True, slots=True)
class AutoscalerConfig:
    """The local autoscaler's settings; the defaults are the cluster's (KEDA + HPA defaults).

    - `poll_interval_s` 15 s: how often metrics are scraped and a decision is taken. With
      `minReplicaCount >= 1` KEDA's `pollingInterval` (30 s by default) only governs activation
      (0 <-> 1); scaling between 1 and max is done by the HPA controller, which queries the
      trigger through KEDA's metrics server every `--horizontal-pod-autoscaler-sync-period`
      (15 s by default). Prometheus scraping every 15 s gives the same cadence of new data.
    - `metric_window_s` 60 s: the `[1m]` of the HTTP rate and latency queries;
      `gc_window_s` 120 s: the `[2m]` of the GC query.
    - `min_replicas` 1, `max_replicas` 50: the ScaledObject's bounds.
    - `scale_down_stabilization_s` 300 s, `scale_up_stabilization_s` 0 s: the HPA defaults.
    - `readiness_delay_s` 5 s: how long a new replica answers 503 on `/ready` (a pod's start-up
      and readiness probe delay); used by the fleet, not by the arithmetic.
    - `tolerance` 0.1: the HPA's `--horizontal-pod-autoscaler-tolerance`.
    - Thresholds (per replica, `AverageValue`): 5 req/s, 2 s, 0.5 GC/s; None disables a trigger.
    - Rate policies (HPA defaults): up by max(`scale_up_pods`, `scale_up_percent` %) and down by
      `scale_down_percent` % per `policy_period_s`; None removes that limit.

    `quick()` shortens every window for a two-minute demo (see there).
    """

    poll_interval_s: float = 15.0
    metric_window_s: float = 60.0
    gc_window_s: float = 120.0
    min_replicas: int = 1
    max_replicas: int = 50
    scale_down_stabilization_s: float = 300.0
    scale_up_stabilization_s: float = 0.0
    readiness_delay_s: float = 5.0
    tolerance: float = 0.1
    http_rate_threshold: float | None = 5.0
    latency_threshold_s: float | None = 2.0
    gc_threshold: float | None = 0.5
    scale_up_pods: int | None = 4
    scale_up_percent: float | None = 100.0
    scale_down_percent: float | None = 100.0
    policy_period_s: float = 15.0

    def __post_init__(self) -> None:
        positive = {
            "poll_interval_s": self.poll_interval_s,
            "metric_window_s": self.metric_window_s,
            "gc_window_s": self.gc_window_s,
            "policy_period_s": self.policy_period_s,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, not {value}")
        non_negative = {
            "scale_down_stabilization_s": self.scale_down_stabilization_s,
            "scale_up_stabilization_s": self.scale_up_stabilization_s,
            "readiness_delay_s": self.readiness_delay_s,
            "tolerance": self.tolerance,
        }
        for name, value in non_negative.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, not {value}")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(
                f"need 1 <= min_replicas <= max_replicas, not {self.min_replicas}.."
                f"{self.max_replicas}"
            )
        for name, threshold in self.thresholds().items():
            if not (math.isfinite(threshold) and threshold > 0):
                raise ValueError(f"the {name} threshold must be a finite number > 0")
        if not self.thresholds():
            raise ValueError("at least one trigger needs a threshold")
        for name, limit in (
            ("scale_up_pods", self.scale_up_pods),
            ("scale_up_percent", self.scale_up_percent),
            ("scale_down_percent", self.scale_down_percent),
        ):
            if limit is not None and not (math.isfinite(limit) and limit > 0):
                raise ValueError(f"{name} must be > 0 or None, not {limit}")

    @classmethod
    def quick(cls) -> AutoscalerConfig:
        """The `make demo` preset: the cluster's arithmetic with every window shortened.

        Poll every 5 s, rate windows 20 s (GC 40 s), scale-down stabilization 30 s, policy period
        5 s, readiness delay 2 s. A replica is added about one or two polls after the load
        passes the trigger, and the fleet is back to one replica about window + stabilization
        (about 50 s) after the load stops, instead of the cluster's 6 minutes or more.
        """
        return cls(
            poll_interval_s=5.0,
            metric_window_s=20.0,
            gc_window_s=40.0,
            scale_down_stabilization_s=30.0,
            readiness_delay_s=2.0,
            policy_period_s=5.0,
        )

    def thresholds(self) -> dict[str, float]:
        """The enabled triggers and their per-replica targets."""
        found: dict[str, float] = {}
        if self.http_rate_threshold is not None:
            found[HTTP_RATE_TRIGGER] = self.http_rate_threshold
        if self.latency_threshold_s is not None:
            found[LATENCY_TRIGGER] = self.latency_threshold_s
        if self.gc_threshold is not None:
            found[GC_TRIGGER] = self.gc_threshold
        return found

    def window_for(self, trigger: str) -> float:
        """The rate window of `trigger`'s query, in seconds."""
        return self.gc_window_s if trigger == GC_TRIGGER else self.metric_window_s

    def query_for(self, trigger: str) -> str:
        """`trigger`'s PromQL with this configuration's window."""
        return _QUERIES[trigger].format(w=_duration(self.window_for(trigger)))

    def describe(self) -> str:
        """One line: triggers, bounds and the windows that shape timing."""
        triggers = ", ".join(
            f"{name} > {_amount(threshold)}{_UNITS[name]}"
            for name, threshold in self.thresholds().items()
        )
        return (
            f"{triggers} per replica; replicas {self.min_replicas}..{self.max_replicas}; "
            f"poll {_amount(self.poll_interval_s)}s, window {_amount(self.metric_window_s)}s, "
            f"scale-down stabilization {_amount(self.scale_down_stabilization_s)}s"
        )


def _amount(value: float) -> str:
    return f"{value:g}"


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


# --------------------------------------------------------------------------------------------
# Samples and Prometheus arithmetic


@dataclass(frozen=True, slots=True)
class MetricSample:
    """One scrape of one replica: the counters the triggers read, at one moment.

    `requests` is `http_requests_total{handler="/process",method="POST"}` (all statuses),
    `latency_sum`/`latency_count` are `http_request_duration_seconds_sum`/`_count` over every
    handler (the trigger's query has no label filter), `gc_collections` is
    `python_gc_collections_total` over every generation.
    """

    replica: str
    at: float
    requests: float = 0.0
    latency_sum: float = 0.0
    latency_count: float = 0.0
    gc_collections: float = 0.0


@dataclass(frozen=True, slots=True)
class Point:
    """One (time, counter value) pair of a series."""

    at: float
    value: float


def prometheus_rate(points: Sequence[Point], now: float, window_s: float) -> float | None:
    """`rate(counter[window])` evaluated at `now`, as Prometheus computes it; None if empty.

    Uses the points in (now - window, now]; needs two. The increase between the first and last
    point (counter resets add the value before the reset) is extrapolated towards the window's
    edges: fully to an edge closer than 1.1 average sample intervals, else by half an interval,
    and never back past the time the counter would have been zero. Divided by the window.
    """
    start = now - window_s
    inside = [p for p in points if start < p.at <= now]
    if len(inside) < 2:
        return None
    first, last = inside[0], inside[-1]
    increase = last.value - first.value
    for before, after in pairwise(inside):
        if after.value < before.value:
            increase += before.value
    sampled = last.at - first.at
    if sampled <= 0:
        return None
    average_gap = sampled / (len(inside) - 1)
    threshold = average_gap * _EXTRAPOLATION_SLACK
    to_start = first.at - start
    to_end = now - last.at
    if to_start >= threshold:
        to_start = average_gap / 2
    if increase > 0 and first.value >= 0:
        to_zero = sampled * (first.value / increase)
        to_start = min(to_start, to_zero)
    if to_end >= threshold:
        to_end = average_gap / 2
    return increase * (sampled + to_start + to_end) / sampled / window_s


_LINE: Final = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL: Final = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def _labels(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    return {name: _unescape(value) for name, value in _LABEL.findall(text)}


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def parse_metrics_text(replica: str, at: float, text: str) -> MetricSample:
    """Read the trigger counters from one Prometheus text exposition (unknown lines ignored)."""
    requests = latency_sum = latency_count = gc_collections = 0.0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            continue
        name, label_text, value_text = match.groups()
        try:
            value = float(value_text)
        except ValueError:
            continue
        if not math.isfinite(value):
            continue
        if name == "http_requests_total":
            labels = _labels(label_text)
            if labels.get("handler") == "/process" and labels.get("method") == "POST":
                requests += value
        elif name == "http_request_duration_seconds_sum":
            latency_sum += value
        elif name == "http_request_duration_seconds_count":
            latency_count += value
        elif name == "python_gc_collections_total":
            gc_collections += value
    return MetricSample(replica, at, requests, latency_sum, latency_count, gc_collections)


# --------------------------------------------------------------------------------------------
# Decisions


@dataclass(frozen=True, slots=True)
class TriggerReading:
    """One trigger at one decision: its query's value and the replicas it proposes."""

    trigger: str
    value: float
    threshold: float
    proposal: int
    has_data: bool
    within_tolerance: bool

    def describe(self) -> str:
        """`http_rate 12.6/s (target 5/s) -> 3`."""
        unit = _UNITS.get(self.trigger, "")
        value = f"{self.value:.3g}{unit}" if self.has_data else "no data (0)"
        held = ", within tolerance" if self.within_tolerance else ""
        return (
            f"{self.trigger} {value} (target {_amount(self.threshold)}{unit}{held}) "
            f"-> {self.proposal}"
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """What the autoscaler decided at `at`, and why."""

    at: float
    current: int
    desired: int
    recommendation: int
    readings: tuple[TriggerReading, ...]
    trigger: str | None
    reason: str

    @property
    def change(self) -> int:
        """`desired - current`: positive to scale up, negative to scale down."""
        return self.desired - self.current

    def reading(self, trigger: str) -> TriggerReading | None:
        """The reading of one trigger, if it is enabled."""
        return next((r for r in self.readings if r.trigger == trigger), None)

    def describe(self) -> str:
        """`scale 1 -> 3: http_rate 12.6/s (target 5/s) -> 3; latency ...`."""
        head = (
            f"scale {self.current} -> {self.desired}" if self.change else f"stay at {self.current}"
        )
        readings = "; ".join(r.describe() for r in self.readings)
        return f"{head}: {self.reason} [{readings}]"


@dataclass(slots=True)
class _Series:
    """One replica's four counters over time."""

    requests: list[Point] = field(default_factory=list)
    latency_sum: list[Point] = field(default_factory=list)
    latency_count: list[Point] = field(default_factory=list)
    gc: list[Point] = field(default_factory=list)

    def add(self, sample: MetricSample) -> None:
        self.requests.append(Point(sample.at, sample.requests))
        self.latency_sum.append(Point(sample.at, sample.latency_sum))
        self.latency_count.append(Point(sample.at, sample.latency_count))
        self.gc.append(Point(sample.at, sample.gc_collections))

    def prune(self, before: float) -> None:
        for points in (self.requests, self.latency_sum, self.latency_count, self.gc):
            cut = next((i for i, p in enumerate(points) if p.at > before), len(points))
            del points[:cut]

    @property
    def empty(self) -> bool:
        return not self.requests

    @property
    def last_at(self) -> float | None:
        return self.requests[-1].at if self.requests else None


class Autoscaler:
    """The HPA's loop body over KEDA's Prometheus triggers (see the module docstring).

    Feed scrapes with `observe`, then call `decide(now, current)` once per poll with the current
    desired replica count (the Deployment's `spec.replicas`); the caller applies `desired`.
    """

    def __init__(self, config: AutoscalerConfig | None = None) -> None:
        self.config = config if config is not None else AutoscalerConfig()
        self._series: dict[str, _Series] = {}
        self._recommendations: deque[tuple[float, int]] = deque()
        self._scale_events: deque[tuple[float, int]] = deque()

    # -- metrics ------------------------------------------------------------------------------

    def observe(self, sample: MetricSample) -> None:
        """Record one replica scrape (times must not go backwards per replica)."""
        series = self._series.setdefault(sample.replica, _Series())
        last = series.last_at
        if last is not None and sample.at <= last:
            return
        series.add(sample)

    def observe_all(self, samples: Iterable[MetricSample]) -> None:
        """Record several scrapes."""
        for sample in samples:
            self.observe(sample)

    def _rate_sum(
        self, now: float, window_s: float, pick: Callable[[_Series], list[Point]]
    ) -> float | None:
        """`sum(rate(...))` over every replica's series (None when no series has a rate)."""
        total: float | None = None
        for series in self._series.values():
            rate = prometheus_rate(pick(series), now, window_s)
            if rate is not None:
                total = rate if total is None else total + rate
        return total

    def metric_values(self, now: float) -> dict[str, float | None]:
        """Each enabled trigger's query value at `now` (None: an empty result)."""
        values: dict[str, float | None] = {}
        for trigger in self.config.thresholds():
            window = self.config.window_for(trigger)
            if trigger == HTTP_RATE_TRIGGER:
                values[trigger] = self._rate_sum(now, window, lambda s: s.requests)
            elif trigger == GC_TRIGGER:
                values[trigger] = self._rate_sum(now, window, lambda s: s.gc)
            else:
                seconds = self._rate_sum(now, window, lambda s: s.latency_sum)
                count = self._rate_sum(now, window, lambda s: s.latency_count)
                values[trigger] = (
                    None if seconds is None or count is None or count <= 0 else seconds / count
                )
        return values

    def _prune(self, now: float) -> None:
        keep_from = now - max(self.config.metric_window_s, self.config.gc_window_s)
        for name in list(self._series):
            series = self._series[name]
            series.prune(keep_from)
            if series.empty:
                del self._series[name]
        window = max(self.config.scale_down_stabilization_s, self.config.scale_up_stabilization_s)
        while self._recommendations and self._recommendations[0][0] <= now - window:
            self._recommendations.popleft()
        while self._scale_events and self._scale_events[0][0] <= now - self.config.policy_period_s:
            self._scale_events.popleft()

    # -- the decision -------------------------------------------------------------------------

    def readings(self, now: float, current: int) -> tuple[TriggerReading, ...]:
        """Each trigger's value and proposal (steps 1-2 of the module docstring)."""
        values = self.metric_values(now)
        found: list[TriggerReading] = []
        for trigger, threshold in self.config.thresholds().items():
            value = values.get(trigger)
            has_data = value is not None
            amount = 0.0 if value is None else max(0.0, value)
            ratio = amount / (threshold * current) if current > 0 else math.inf
            within = current > 0 and abs(ratio - 1.0) <= self.config.tolerance
            proposal = current if within else math.ceil(amount / threshold)
            found.append(TriggerReading(trigger, amount, threshold, proposal, has_data, within))
        return tuple(found)

    def decide(self, now: float, current: int) -> Decision:
        """The desired replica count at `now` given `current` desired replicas (steps 1-5)."""
        config = self.config
        self._prune(now)
        readings = self.readings(now, current)
        top = max(readings, key=lambda r: r.proposal)
        recommendation = _clamp(top.proposal, config.min_replicas, config.max_replicas)

        # As the HPA: this recommendation and those strictly after `now - window`.
        up_from = now - config.scale_up_stabilization_s
        down_from = now - config.scale_down_stabilization_s
        up_floor = min(
            (r for at, r in self._recommendations if at > up_from), default=recommendation
        )
        down_ceiling = max(
            (r for at, r in self._recommendations if at > down_from), default=recommendation
        )
        up_floor = min(up_floor, recommendation)
        down_ceiling = max(down_ceiling, recommendation)
        self._recommendations.append((now, recommendation))
        stabilized = min(max(current, up_floor), down_ceiling)

        desired = stabilized
        reason: str
        if stabilized > current:
            limit = self._scale_up_limit(current)
            desired = min(stabilized, limit)
            reason = f"{top.trigger} {_value_text(top)} needs {recommendation}"
            if desired < stabilized:
                reason += f", limited to {desired} by the scale-up policy"
        elif stabilized < current:
            limit = self._scale_down_limit(current)
            desired = max(stabilized, limit)
            reason = (
                f"every recommendation in the last "
                f"{_amount(config.scale_down_stabilization_s)}s is <= {stabilized}"
            )
        elif recommendation < current:
            reason = (
                f"recommendation {recommendation} held by the scale-down stabilization: "
                f"{down_ceiling} within {_amount(config.scale_down_stabilization_s)}s"
            )
        elif recommendation > current:
            reason = f"recommendation {recommendation} held by the scale-up stabilization"
        else:
            reason = f"{top.trigger} {_value_text(top)} needs {recommendation}"
        desired = _clamp(desired, config.min_replicas, config.max_replicas)
        if desired != current:
            self._scale_events.append((now, desired - current))
        return Decision(now, current, desired, recommendation, readings, top.trigger, reason)

    def _scale_up_limit(self, current: int) -> int:
        added = sum(change for _, change in self._scale_events if change > 0)
        start = current - added
        limits = []
        if self.config.scale_up_pods is not None:
            limits.append(start + self.config.scale_up_pods)
        if self.config.scale_up_percent is not None:
            limits.append(math.ceil(start * (1 + self.config.scale_up_percent / 100)))
        return max(limits) if limits else self.config.max_replicas

    def _scale_down_limit(self, current: int) -> int:
        removed = -sum(change for _, change in self._scale_events if change < 0)
        start = current + removed
        if self.config.scale_down_percent is None:
            return self.config.min_replicas
        return math.floor(start * (1 - self.config.scale_down_percent / 100))

    def recommendations(self) -> list[tuple[float, int]]:
        """The (time, recommendation) pairs still inside a stabilization window."""
        return list(self._recommendations)


def _value_text(reading: TriggerReading) -> str:
    if not reading.has_data:
        return "no data"
    return f"{reading.value:.3g}{_UNITS.get(reading.trigger, '')}"


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))

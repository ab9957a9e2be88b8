"""KEDA/HPA arithmetic for the local fleet: metric samples in, a desired replica count out.

Its place: the `local` stage. In the cluster the consumer's replica count comes from a KEDA
ScaledObject (three Prometheus triggers, see design/consumer-api.md) feeding the Kubernetes HPA.
`local.fleet.Fleet` stands in for that stack on loopback: it scrapes every reference consumer's
`/metrics` (`local.scrape`), hands the samples to an `Autoscaler` from this module and applies
its `Decision`. This module is pure arithmetic (no I/O, no clock of its own: every call takes
`now`), so it is unit-tested with made-up samples. Its settings are `AutoscalerConfig`
(`local.autoscaler_config`); the series and `rate()` it reads are `local.series`.

What is reproduced, in order:

1. Per trigger, the value of its Prometheus query at `now`: `rate()` over the metric window with
   Prometheus's extrapolation (`series.prometheus_rate`), per replica series, summed over
   replicas (series of replicas that are gone still count until they age out of the window, as
   in Prometheus). The latency trigger divides the summed rates of `_sum` and `_count`. An empty
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
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from nimbus_scenarios.local.autoscaler_config import (
    GC_TRIGGER,
    HTTP_RATE_TRIGGER,
    LATENCY_TRIGGER,
    AutoscalerConfig,
    Trigger,
    amount,
)
from nimbus_scenarios.local.series import CounterName, MetricSample, ReplicaSeries

# AutoscalerConfig, the trigger names and MetricSample are re-exported: callers such as
# `cli_run` configure and feed the autoscaler through this module alone.
__all__ = [
    "GC_TRIGGER",
    "HTTP_RATE_TRIGGER",
    "LATENCY_TRIGGER",
    "Autoscaler",
    "AutoscalerConfig",
    "Decision",
    "MetricSample",
    "Trigger",
    "TriggerReading",
]


@dataclass(frozen=True, slots=True)
class TriggerReading:
    """One trigger at one decision: its query's value and the replicas it proposes."""

    trigger: Trigger
    value: float
    threshold: float
    proposal: int
    has_data: bool
    within_tolerance: bool

    def describe(self) -> str:
        """`http_rate 12.6/s (target 5/s) -> 3`."""
        unit = self.trigger.unit
        value = f"{self.value:.3g}{unit}" if self.has_data else "no data (0)"
        held = ", within tolerance" if self.within_tolerance else ""
        return (
            f"{self.trigger} {value} (target {amount(self.threshold)}{unit}{held}) "
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
    trigger: Trigger | None
    reason: str
    stabilized: int | None = None
    """The recommendation after the stabilization windows, before the rate policies."""
    rate_limited: bool = False
    """Whether a rate policy held `desired` short of `stabilized`."""

    @property
    def proposal(self) -> int:
        """The largest trigger proposal, before the [min, max] clamp."""
        return max((r.proposal for r in self.readings), default=self.recommendation)

    @property
    def change(self) -> int:
        """`desired - current`: positive to scale up, negative to scale down."""
        return self.desired - self.current

    def reading(self, trigger: Trigger) -> TriggerReading | None:
        """The reading of one trigger, if it is enabled."""
        return next((r for r in self.readings if r.trigger == trigger), None)

    def describe(self) -> str:
        """`scale 1 -> 3: http_rate 12.6/s (target 5/s) -> 3; latency ...`."""
        head = (
            f"scale {self.current} -> {self.desired}" if self.change else f"stay at {self.current}"
        )
        readings = "; ".join(r.describe() for r in self.readings)
        return f"{head}: {self.reason} [{readings}]"


class Autoscaler:
    """The HPA's loop body over KEDA's Prometheus triggers (see the module docstring).

    Feed scrapes with `observe`, then call `decide(now, current)` once per poll with the current
    desired replica count (the Deployment's `spec.replicas`); the caller applies `desired`.
    """

    def __init__(self, config: AutoscalerConfig | None = None) -> None:
        self.config = config if config is not None else AutoscalerConfig()
        self._series = ReplicaSeries()
        self._recommendations: deque[tuple[float, int]] = deque()
        self._scale_events: deque[tuple[float, int]] = deque()

    # -- metrics ------------------------------------------------------------------------------

    def observe(self, sample: MetricSample) -> None:
        """Record one replica scrape (times must not go backwards per replica)."""
        self._series.observe(sample)

    def observe_all(self, samples: Iterable[MetricSample]) -> None:
        """Record several scrapes."""
        self._series.observe_all(samples)

    def metric_values(self, now: float) -> dict[Trigger, float | None]:
        """Each enabled trigger's query value at `now` (None: an empty result)."""
        values: dict[Trigger, float | None] = {}
        for trigger in self.config.thresholds():
            window = self.config.window_for(trigger)
            match trigger:
                case Trigger.HTTP_RATE:
                    values[trigger] = self._series.rate_sum(now, window, CounterName.REQUESTS)
                case Trigger.GC:
                    values[trigger] = self._series.rate_sum(now, window, CounterName.GC_COLLECTIONS)
                case Trigger.LATENCY:
                    seconds = self._series.rate_sum(now, window, CounterName.LATENCY_SUM)
                    count = self._series.rate_sum(now, window, CounterName.LATENCY_COUNT)
                    values[trigger] = (
                        None if seconds is None or count is None or count <= 0 else seconds / count
                    )
        return values

    def _prune(self, now: float) -> None:
        self._series.prune(now - max(self.config.metric_window_s, self.config.gc_window_s))
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
            level = 0.0 if value is None else max(0.0, value)
            ratio = level / (threshold * current) if current > 0 else math.inf
            within = current > 0 and abs(ratio - 1.0) <= self.config.tolerance
            proposal = current if within else math.ceil(level / threshold)
            found.append(TriggerReading(trigger, level, threshold, proposal, has_data, within))
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
                f"{amount(config.scale_down_stabilization_s)}s is <= {stabilized}"
            )
        elif recommendation < current:
            reason = (
                f"recommendation {recommendation} held by the scale-down stabilization: "
                f"{down_ceiling} within {amount(config.scale_down_stabilization_s)}s"
            )
        elif recommendation > current:
            reason = f"recommendation {recommendation} held by the scale-up stabilization"
        else:
            reason = f"{top.trigger} {_value_text(top)} needs {recommendation}"
        rate_limited = desired != stabilized
        desired = _clamp(desired, config.min_replicas, config.max_replicas)
        if desired != current:
            self._scale_events.append((now, desired - current))
        return Decision(
            now,
            current,
            desired,
            recommendation,
            readings,
            top.trigger,
            reason,
            stabilized=stabilized,
            rate_limited=rate_limited,
        )

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
    return f"{reading.value:.3g}{reading.trigger.unit}"


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))

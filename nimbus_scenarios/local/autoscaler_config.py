"""What the local autoscaler is set to: its three triggers and the HPA settings around them.

Its place: the `local` stage. `autoscaler.Autoscaler` reads an `AutoscalerConfig`; `cli_run`
builds one from a preset (`AutoscalerConfig()` is the cluster's, `quick()` the demo's) and the
command line's overrides. The triggers are the KEDA ScaledObject's Prometheus queries in
design/consumer-api.md; the defaults are those of KEDA and the Kubernetes HPA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = [
    "GC_TRIGGER",
    "HTTP_RATE_TRIGGER",
    "LATENCY_TRIGGER",
    "AutoscalerConfig",
    "Trigger",
    "amount",
]


class Trigger(StrEnum):
    """One of the ScaledObject's triggers (each with a per-replica `AverageValue` target)."""

    HTTP_RATE = "http_rate"
    """`sum(rate(http_requests_total{handler="/process",method="POST"}[1m]))`, target 5 req/s."""
    LATENCY = "latency"
    """`sum(rate(http_request_duration_seconds_sum[1m])) / sum(rate(..._count[1m]))`, target 2 s."""
    GC = "gc"
    """`sum(rate(python_gc_collections_total[2m]))`, target 0.5 /s."""

    @property
    def unit(self) -> str:
        """The unit its value is shown in."""
        return "s" if self is Trigger.LATENCY else "/s"


HTTP_RATE_TRIGGER: Final = Trigger.HTTP_RATE
LATENCY_TRIGGER: Final = Trigger.LATENCY
GC_TRIGGER: Final = Trigger.GC

_QUERIES: Final = {
    Trigger.HTTP_RATE: 'sum(rate(http_requests_total{{handler="/process",method="POST"}}[{w}]))',
    Trigger.LATENCY: (
        "sum(rate(http_request_duration_seconds_sum[{w}])) / "
        "sum(rate(http_request_duration_seconds_count[{w}]))"
    ),
    Trigger.GC: "sum(rate(python_gc_collections_total[{w}]))",
}


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
        for trigger, threshold in self.thresholds().items():
            if not (math.isfinite(threshold) and threshold > 0):
                raise ValueError(f"the {trigger} threshold must be a finite number > 0")
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

    def thresholds(self) -> dict[Trigger, float]:
        """The enabled triggers and their per-replica targets."""
        found: dict[Trigger, float] = {}
        if self.http_rate_threshold is not None:
            found[Trigger.HTTP_RATE] = self.http_rate_threshold
        if self.latency_threshold_s is not None:
            found[Trigger.LATENCY] = self.latency_threshold_s
        if self.gc_threshold is not None:
            found[Trigger.GC] = self.gc_threshold
        return found

    def window_for(self, trigger: Trigger) -> float:
        """The rate window of `trigger`'s query, in seconds."""
        return self.gc_window_s if trigger is Trigger.GC else self.metric_window_s

    def query_for(self, trigger: Trigger) -> str:
        """`trigger`'s PromQL with this configuration's window."""
        return _QUERIES[trigger].format(w=_duration(self.window_for(trigger)))

    def describe(self) -> str:
        """One line: triggers, bounds and the windows that shape timing."""
        triggers = ", ".join(
            f"{trigger} > {amount(threshold)}{trigger.unit}"
            for trigger, threshold in self.thresholds().items()
        )
        return (
            f"{triggers} per replica; replicas {self.min_replicas}..{self.max_replicas}; "
            f"poll {amount(self.poll_interval_s)}s, window {amount(self.metric_window_s)}s, "
            f"scale-down stabilization {amount(self.scale_down_stabilization_s)}s"
        )


def amount(value: float) -> str:
    """A number as the messages show it (`5`, `0.5`, `300`)."""
    return f"{value:g}"


def _duration(seconds: float) -> str:
    """A PromQL range: `1m` for whole minutes, else seconds."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"

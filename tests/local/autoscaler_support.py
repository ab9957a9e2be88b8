"""Made-up replica scrapes for the local autoscaler's tests (`test_autoscaler`, `test_records`).

`Feed` plays replicas whose counters grow at chosen rates, sampled every 5 s. With a 10 s window
and 5 s samples, Prometheus's `rate()` at a sample time is exactly the slope of the last 5 s
interval (two samples, extrapolated to the window's edges), so each step sets the next value.
"""

from __future__ import annotations

from nimbus_scenarios.local.autoscaler import Autoscaler, AutoscalerConfig, MetricSample

STEP = 5.0
# The cluster's arithmetic with a 10 s window (so one 5 s step sets the rate) and no rate policy.
BASE = AutoscalerConfig(
    metric_window_s=10.0,
    gc_window_s=10.0,
    scale_up_pods=None,
    scale_up_percent=None,
    scale_down_percent=None,
)


class Feed:
    """Replicas whose counters grow at set rates; each `step` samples them all STEP s later."""

    def __init__(self, scaler: Autoscaler, replicas: int = 1) -> None:
        self.scaler = scaler
        self.now = 0.0
        self.names = [f"r{i}" for i in range(replicas)]
        # Counters start high, as on long-running pods (no extrapolation clamp at zero).
        self.counters = {name: [10_000.0, 10_000.0, 10_000.0, 10_000.0] for name in self.names}
        self._sample()

    def _sample(self) -> None:
        for name in self.names:
            requests, seconds, count, gc = self.counters[name]
            self.scaler.observe(MetricSample(name, self.now, requests, seconds, count, gc))

    def step(
        self, rate: float = 0.0, latency_s: float = 0.01, gc_rate: float = 0.0, steps: int = 1
    ) -> None:
        """Advance `steps` x STEP s with `rate` POST /process per second in total."""
        for _ in range(steps):
            self.now += STEP
            share = rate / len(self.names)
            for name in self.names:
                counters = self.counters[name]
                counters[0] += share * STEP
                counters[1] += share * STEP * latency_s
                counters[2] += share * STEP
                counters[3] += gc_rate / len(self.names) * STEP
            self._sample()

    def decide(self, current: int) -> int:
        """The autoscaler's desired count now."""
        return self.scaler.decide(self.now, current).desired

"""Each replica's trigger counters over time, and Prometheus's `rate()` over them.

Its place: the `local` stage, between the scrapes (`scrape.parse_metrics_text` makes a
`MetricSample` per replica and poll) and the decisions (`autoscaler.Autoscaler` asks for
`sum(rate(counter[window]))` at `now`). This is the part of Prometheus the triggers need: a
series per replica, kept until it ages out of the longest window (a replica that is gone still
counts until then, as in Prometheus), and `rate()` with Prometheus's extrapolation.

Simplifications: one replica's series of a metric are summed before `rate()` (exact unless a new
label set, such as a first 5xx, appears mid-window); each replica's scrape is taken at one instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from typing import Final

__all__ = ["CounterName", "MetricSample", "Point", "ReplicaSeries", "prometheus_rate"]

# Prometheus extrapolates a rate to a range edge closer than 1.1 average sample intervals.
_EXTRAPOLATION_SLACK: Final = 1.1


class CounterName(StrEnum):
    """The four counters the triggers read (one `MetricSample` field each)."""

    REQUESTS = "requests"
    LATENCY_SUM = "latency_sum"
    LATENCY_COUNT = "latency_count"
    GC_COLLECTIONS = "gc_collections"


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

    def counter(self, name: CounterName) -> float:
        """The value of one of the four counters."""
        match name:
            case CounterName.REQUESTS:
                return self.requests
            case CounterName.LATENCY_SUM:
                return self.latency_sum
            case CounterName.LATENCY_COUNT:
                return self.latency_count
            case CounterName.GC_COLLECTIONS:
                return self.gc_collections


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


class _Replica:
    """One replica's four series (mutable: points are appended and pruned in place)."""

    __slots__ = ("points",)

    def __init__(self) -> None:
        self.points: dict[CounterName, list[Point]] = {name: [] for name in CounterName}

    def add(self, sample: MetricSample) -> None:
        for name, points in self.points.items():
            points.append(Point(sample.at, sample.counter(name)))

    def prune(self, before: float) -> None:
        for points in self.points.values():
            cut = next((i for i, p in enumerate(points) if p.at > before), len(points))
            del points[:cut]

    @property
    def last_at(self) -> float | None:
        requests = self.points[CounterName.REQUESTS]
        return requests[-1].at if requests else None


class ReplicaSeries:
    """Every replica's counter series, as Prometheus keeps them for the triggers' queries."""

    def __init__(self) -> None:
        self._replicas: dict[str, _Replica] = {}

    def observe(self, sample: MetricSample) -> None:
        """Record one replica scrape (a scrape not later than that replica's last is dropped)."""
        replica = self._replicas.setdefault(sample.replica, _Replica())
        last = replica.last_at
        if last is not None and sample.at <= last:
            return
        replica.add(sample)

    def observe_all(self, samples: Iterable[MetricSample]) -> None:
        """Record several scrapes."""
        for sample in samples:
            self.observe(sample)

    def prune(self, before: float) -> None:
        """Forget points at or before `before`, and replicas left with none."""
        for name in list(self._replicas):
            replica = self._replicas[name]
            replica.prune(before)
            if replica.last_at is None:
                del self._replicas[name]

    def rate_sum(self, now: float, window_s: float, counter: CounterName) -> float | None:
        """`sum(rate(counter[window]))` over every replica (None when no series has a rate)."""
        total: float | None = None
        for replica in self._replicas.values():
            rate = prometheus_rate(replica.points[counter], now, window_s)
            if rate is not None:
                total = rate if total is None else total + rate
        return total

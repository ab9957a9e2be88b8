"""Abort guards: `abort when errors/pNN ... over D` on the per-second series,
`abort when replicas ...` on the latest replica sample, and `abort when pod restarts ...` on the
pod restarts since the run started. Pure: data in, the guard that fired out.

A latency guard reads the per-second latency, which holds responses only (`engine.stats`): over
a window with no response it is not judged, so it does not fire (a target that only resets or
times out is caught by `abort when errors ...`).

A guard with `of NAME` (`GuardPlan.request`) reads that template's own per-second series: it
fires on that template's requests whatever the others do, and waits while it has none.

The series is anything with the per-second `succeeded` and `failed` counts and each second's
latency histogram (`GuardSeries`): a process's own `SecondSeries`, or, under `run --workers`,
the parent's merged view of every worker's (`runner.crew_series`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from nimbus_scenarios.engine.histogram import LatencyHistogram
from nimbus_scenarios.language.vocabulary import GuardSubject
from nimbus_scenarios.plan.model import GuardPlan

__all__ = ["Fired", "GuardSeries", "check_guards", "window_errors", "window_latency"]


class GuardSeries(Protocol):
    """What a guard reads of a per-second series (`engine.series.SecondSeries` is one)."""

    @property
    def succeeded(self) -> Sequence[int]:
        """Responses that succeeded, per second of completion."""
        ...

    @property
    def failed(self) -> Sequence[int]:
        """Requests that failed, per second of completion."""
        ...

    def latency_histogram(self, sec: int) -> LatencyHistogram | None:
        """A new histogram of second ``sec``'s response latencies (None: none in it)."""
        ...


@dataclass(frozen=True, slots=True)
class Fired:
    """A guard that fired, with the value that made it fire."""

    guard: GuardPlan
    observed: float
    detail: str


def window_errors(series: GuardSeries, now_s: float, over_s: float) -> tuple[int, int]:
    """(failed, completed) over the whole seconds in [now - over, now)."""
    last = int(now_s)
    first = max(int(now_s - over_s), 0)
    failed = sum(series.failed[first:last])
    done = failed + sum(series.succeeded[first:last])
    return failed, done


def window_latency(series: GuardSeries, now_s: float, over_s: float) -> LatencyHistogram | None:
    """The merged latency histogram of the responses in the whole seconds in [now - over,
    now); None when there was none."""
    merged: LatencyHistogram | None = None
    for sec in range(max(int(now_s - over_s), 0), int(now_s)):
        histogram = series.latency_histogram(sec)
        if histogram is None:
            continue
        if merged is None:
            merged = histogram
        else:
            merged.add(histogram)
    return merged


def _no_requests(name: str) -> GuardSeries | None:
    return None


def check_guards(
    guards: Sequence[GuardPlan],
    series: GuardSeries,
    now_s: float,
    ready_replicas: int | None,
    request_series: Callable[[str], GuardSeries | None] = _no_requests,
    *,
    restarts: int | None = None,
) -> Fired | None:
    """The first guard that fires now, if any. `now_s` is the run offset; `request_series`
    gives a template's own series (None before it has one) for the guards with `of NAME`;
    `restarts` is the pod restarts since the run started (None: pods not watched, and
    `abort when pod restarts` does not fire)."""
    run_series = series
    for guard in guards:
        holds = guard.comparator.holds
        if guard.subject is GuardSubject.REPLICAS:
            if ready_replicas is not None and holds(ready_replicas, guard.value):
                return Fired(guard, ready_replicas, f"{ready_replicas} ready replicas")
            continue
        if guard.subject is GuardSubject.POD_RESTARTS:
            if restarts is not None and holds(restarts, guard.value):
                detail = (
                    f"{restarts} pod restart{'s' if restarts != 1 else ''} since the run started"
                )
                return Fired(guard, restarts, detail)
            continue
        over = guard.over_s or 0.0
        if now_s < min(over, 1.0):
            continue
        of = ""
        if guard.request is None:
            series = run_series
        else:
            found = request_series(guard.request)
            if found is None:
                continue
            series, of = found, f" of {guard.request}"
        if guard.subject is GuardSubject.ERRORS:
            failed, done = window_errors(series, now_s, over)
            if done == 0:
                continue
            share = 100.0 * failed / done
            if holds(share, guard.value):
                return Fired(guard, share, f"{failed}/{done}{of} failed over {over:g}s")
            continue
        histogram = window_latency(series, now_s, over)
        if histogram is None or histogram.total_count == 0:
            continue
        percentile = guard.subject.percentile
        if percentile is not None:
            micros: float = histogram.value_at_percentile(percentile)
        elif guard.subject is GuardSubject.MAX:
            micros = histogram.max_value()
        else:
            micros = histogram.mean_value()
        seconds = micros / 1_000_000.0
        if holds(seconds, guard.value):
            detail = f"{guard.subject}{of} {seconds:.3f}s over {over:g}s"
            return Fired(guard, seconds, detail)
    return None

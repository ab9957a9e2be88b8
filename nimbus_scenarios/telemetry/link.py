"""What a worker process of `run --workers N` needs to put its request spans in the run's trace.

Its place: handed by the parent's `Telemetry.for_workers` to `runner.pool`, which puts it in
each worker's `WorkerJob` (pickled by `multiprocessing`, never JSON); the worker gives it to
`Telemetry.for_worker`. It names the run's trace, its root span and the span each phase will
have in the parent (drawn before the phases start, see `_spans.PlannedIds`), so that a worker's
request spans hang under the same spans as the parent's. The worker exports them itself, with
the parent's resolved configuration (`--otlp-endpoint` included) reduced to traces: metrics and
log lines are the parent's alone. `with_workers` adds the workers' export counts to the parent's
summary. Imports no OpenTelemetry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from nimbus_scenarios.results.model import TelemetrySummary
from nimbus_scenarios.telemetry.config import TelemetryConfig

__all__ = ["WORKER_ATTRIBUTE", "WorkerTrace", "with_workers"]

WORKER_ATTRIBUTE = "nimbus.worker"
"""The request span attribute naming the process that sent it (0: the parent) in a run with
worker processes."""


@dataclass(frozen=True, slots=True)
class WorkerTrace:
    """The parent's trace as a worker process joins it."""

    config: TelemetryConfig
    """The parent's resolved configuration, traces only (no metrics, logs or notices)."""
    trace_id: int
    root_span_id: int
    """The run's root span (`scenario <name>`): what requests outside a phase hang under."""
    phase_span_ids: tuple[tuple[str, int], ...]
    """(phase name, the span id that phase's span gets in the parent), for every phase."""
    run_id: str
    """The parent's run id, as its request spans carry it (`nimbus.run_id`)."""
    url: str | None
    """The target as the parent's spans show it (password masked; None for a secret target)."""


_SPAN_COUNTS = ("spans_exported", "spans_dropped", "spans_queue_full", "export_errors")


def with_workers(
    summary: TelemetrySummary, workers: Iterable[TelemetrySummary]
) -> TelemetrySummary:
    """The parent's export summary with the workers' span counts and export errors added."""
    totals = {name: getattr(summary, name) for name in _SPAN_COUNTS}
    for worker in workers:
        for name in _SPAN_COUNTS:
            totals[name] += getattr(worker, name)
    return dataclasses.replace(summary, **totals)

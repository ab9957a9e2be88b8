"""A worker process's view of the parent's span tree (`run --workers N`).

Its place: the `SpanParents` of a worker's `_requests.RequestSpans`, and the only `RunHandler`
of a worker's telemetry (imported only when tracing is on). The parent owns the root and phase
spans and records them; a worker only names them: its `traceparent`s and request spans hang
under the spans whose ids `link.WorkerTrace` carries, as the parent's own do: a phase's span
once the phase started here, else the root. Since every process starts a phase at the same
moment of the common start, a worker names a phase span exactly when the parent has one.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags

from nimbus_scenarios.events import RunHandler
from nimbus_scenarios.plan.model import PhasePlan, Plan
from nimbus_scenarios.telemetry._spans import ParentSpan
from nimbus_scenarios.telemetry._walltime import WallTime
from nimbus_scenarios.telemetry.link import WorkerTrace

__all__ = ["JoinedSpans"]


def _remote(trace_id: int, span_id: int, name: str) -> ParentSpan:
    """A span of the parent's, known here by its ids only (nothing is recorded on it)."""
    context = SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    return ParentSpan(name, trace.NonRecordingSpan(context))


class JoinedSpans(RunHandler):
    """The parent's root and phase spans, as a worker's request spans name them."""

    def __init__(self, link: WorkerTrace, wall: WallTime) -> None:
        self.trace_hex = f"{link.trace_id:032x}"
        """The run's trace id as 32 hex digits."""
        self.root = _remote(link.trace_id, link.root_span_id, "")
        self._planned = {
            name: _remote(link.trace_id, span_id, name) for name, span_id in link.phase_span_ids
        }
        self._phases: dict[str, ParentSpan] = {}
        self._wall = wall

    def parent(self, phase: str) -> ParentSpan:
        """The span a request of `phase` hangs under: the phase's once it started, else the
        root."""
        return self._phases.get(phase) or self.root

    def run_started(self, plan: Plan, run_id: str) -> None:
        """Read the clock's wall-time offset (the loop runs now); the parent's run id stays."""
        self._wall.calibrate()

    def phase_started(self, phase: PhasePlan, at_s: float) -> None:
        """From now on requests of `phase` hang under its span (in the parent)."""
        planned = self._planned.get(phase.name)
        if planned is not None:
            self._phases[phase.name] = planned

"""The run's identity as the log processors see it: run id, scenario, phase, trace and span ids.

One process plays one run at a time, so this is a single process-wide record that the run
handlers update (the logging handler: run id, scenario, phase; the tracing handler: trace and
span ids, and the OTLP log sink). Log lines read it from any task or thread, which structlog's
context variables alone cannot give: the runner's progress task was created before the first
phase started and would never see a phase bound later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["LogSink", "RunContext", "current", "reset"]

LogSink = Callable[[str, str, Mapping[str, object]], None]
"""Receives every log record: (level, event, the record's fields, read only); telemetry's OTLP
logs."""


@dataclass
class RunContext:
    """What every log line of the current run carries (None: not known, left out)."""

    run_id: str | None = None
    scenario: str | None = None
    phase: str | None = None
    trace_id: str | None = None
    """The run's trace id (32 hex digits) while tracing is on."""
    span_id: str | None = None
    """The current phase span's id, else the root span's (16 hex digits)."""
    sink: LogSink | None = None
    """Where log records also go (OTLP logs), set by telemetry while it runs."""


_CURRENT = RunContext()


def current() -> RunContext:
    """The process-wide run context (mutable; updated by the run handlers)."""
    return _CURRENT


def reset() -> None:
    """Forget the previous run (telemetry calls it when a run starts and when it shuts down)."""
    _CURRENT.run_id = None
    _CURRENT.scenario = None
    _CURRENT.phase = None
    _CURRENT.trace_id = None
    _CURRENT.span_id = None
    _CURRENT.sink = None

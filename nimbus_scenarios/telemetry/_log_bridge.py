"""Logs across the OpenTelemetry boundary, both ways (imported only when telemetry is on).

Out: `OtlpLogs.emit` is the `context.LogSink` that `logs.forward_to_sink` hands every structlog
record to; it becomes one OTLP log record (severity, body = the event name, attributes = the
fields, in the running phase's span or the root's). In: `SdkLogBridge` takes the SDK's own
stdlib log records (export failures, full queues) off stderr and reports each kind once as a
structured line (`telemetry_export_problem`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Final

from opentelemetry._logs import Logger, SeverityNumber
from opentelemetry.util.types import AttributeValue

from nimbus_scenarios.telemetry import context as run_context
from nimbus_scenarios.telemetry._spans import RunSpans
from nimbus_scenarios.telemetry._walltime import WallTime

__all__ = ["OtlpLogs", "SdkLogBridge", "attribute_value", "log_attributes"]

_SEVERITY: Final = {
    "debug": SeverityNumber.DEBUG,
    "info": SeverityNumber.INFO,
    "warning": SeverityNumber.WARN,
    "warn": SeverityNumber.WARN,
    "error": SeverityNumber.ERROR,
    "critical": SeverityNumber.FATAL,
}
_SKIP: Final = frozenset({"event", "level", "timestamp", "trace_id", "span_id"})
"""Fields the OTLP record carries elsewhere (body, severity, time, trace context)."""


def attribute_value(value: object) -> AttributeValue:
    """A log field as an OTLP attribute value: primitives kept, sequences of strings or of
    numbers as tuples (None items left out), anything else as its `str`."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        items = [v for v in value if v is not None]
        strings = [v for v in items if isinstance(v, str)]
        if items and len(strings) == len(items):
            return tuple(strings)
        numbers = [v for v in items if isinstance(v, bool | int | float)]
        if items and len(numbers) == len(items):
            return tuple(numbers)
    return str(value)


def log_attributes(
    fields: Mapping[str, object], skip: Collection[str]
) -> dict[str, AttributeValue]:
    """The attributes of an OTLP log record from a structlog record's fields."""
    return {
        key: attribute_value(value)
        for key, value in fields.items()
        if key not in skip and value is not None
    }


class OtlpLogs:
    """The log sink of one run: structlog records as OTLP log records."""

    def __init__(self, logger: Logger, *, spans: RunSpans | None, wall: WallTime) -> None:
        self.logger = logger
        self.spans = spans
        self.wall = wall

    def emit(self, level: str, event: str, fields: Mapping[str, object]) -> None:
        """One OTLP log record, in the running phase's (or the root's) span."""
        attributes = log_attributes(fields, _SKIP)
        ctx = run_context.current()
        attributes.setdefault("run_id", ctx.run_id or "")
        attributes.setdefault("scenario", ctx.scenario or "")
        spans = self.spans
        self.logger.emit(
            timestamp=self.wall.now_ns(),
            context=spans.current().log_context if spans is not None else None,
            severity_number=_SEVERITY.get(level, SeverityNumber.INFO),
            severity_text=level.upper(),
            body=event,
            attributes=attributes,
        )


class SdkLogBridge(logging.Handler):
    """Takes the SDK's own stdlib log records (export failures, full queues) off stderr.

    Each distinct message is passed once to `report` (the project's structured log), so a
    collector that is down gives one warning per kind of failure instead of a line per export.
    """

    def __init__(self, report: Callable[[str, str], None]) -> None:
        super().__init__(logging.WARNING)
        self.report = report
        self._seen: set[object] = set()
        self._lock_seen = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Report the record the first time its message template is seen."""
        key = record.msg  # the template: once whatever the signal or the error
        with self._lock_seen:
            if key in self._seen:
                return
            self._seen.add(key)
        try:
            self.report(record.levelname.lower(), record.getMessage())
        except Exception:  # a broken log line must not break an export thread
            return

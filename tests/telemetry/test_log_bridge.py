"""Tests of `_log_bridge`: structlog records as OTLP log records, and the SDK's own log lines."""

from __future__ import annotations

import logging

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.telemetry import context as run_context
from nimbus_scenarios.telemetry._log_bridge import (
    OtlpLogs,
    SdkLogBridge,
    attribute_value,
    log_attributes,
)
from nimbus_scenarios.telemetry._spans import RunSpans
from nimbus_scenarios.telemetry._walltime import WallTime
from tests.support.results import plan_of

WALL_START = 2_000_000_000.0


def test_field_values_become_attribute_values() -> None:
    """Primitives stay; sequences of strings or numbers become tuples; the rest is text."""
    assert attribute_value("a") == "a"
    assert attribute_value(True) is True
    assert attribute_value(3) == 3
    assert attribute_value(2.5) == 2.5
    assert attribute_value(["pod-a", None, "pod-b"]) == ("pod-a", "pod-b")
    assert attribute_value((1, 2.5, True)) == (1, 2.5, True)
    assert attribute_value(["a", 1]) == "['a', 1]"
    assert attribute_value([]) == "[]"
    assert attribute_value({"k": 1}) == "{'k': 1}"


def test_log_attributes_leave_out_what_the_record_carries_elsewhere() -> None:
    """Skipped keys and None values are left out."""
    fields = {"event": "x", "level": "info", "phase": "warm", "p95_ms": None, "pods": ["a"]}
    assert log_attributes(fields, {"event", "level"}) == {"phase": "warm", "pods": ("a",)}


def test_records_go_out_in_the_current_span_on_the_run_clock() -> None:
    """A record is in the running phase's span, on the run's clock, with run id and scenario."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    plan = plan_of()
    wall = WallTime(ManualClock(wall_start=WALL_START))
    spans = RunSpans(TracerProvider().get_tracer("t"), plan, url=None, run_id="r", wall=wall)
    spans.phase_started(plan.phases[0], 0.0)
    ctx = run_context.current()
    ctx.run_id, ctx.scenario = "run0", "factory"
    logs = OtlpLogs(provider.get_logger("t"), spans=spans, wall=wall)
    logs.emit("warning", "pods_killed", {"event": "pods_killed", "count": 1, "pods": ["c-0"]})
    (readable,) = exporter.get_finished_logs()
    record = readable.log_record
    assert record.body == "pods_killed"
    assert (record.severity_text, record.severity_number) == ("WARNING", SeverityNumber.WARN)
    assert record.timestamp == round(WALL_START * 1e9)
    warm = spans.parent("warm").context
    assert (record.trace_id, record.span_id) == (warm.trace_id, warm.span_id)
    assert dict(record.attributes or {}) == {
        "count": 1,
        "pods": ("c-0",),
        "run_id": "run0",
        "scenario": "factory",
    }


def test_the_sdk_own_problems_are_reported_once_per_kind() -> None:
    """The SDK's repeated warnings reach the structured log once per message template."""
    reported: list[tuple[str, str]] = []
    bridge = SdkLogBridge(lambda level, message: reported.append((level, message)))
    logger = logging.getLogger("tests.telemetry.sdk")
    logger.addHandler(bridge)
    logger.propagate = False
    try:
        for attempt in range(3):
            logger.warning("Failed to export %s batch, code: %s", "span", 503 + attempt)
        logger.error("Exception while exporting %s.", "logs")
        logger.info("below the bridge's level")
    finally:
        logger.removeHandler(bridge)
        logger.propagate = True
    assert reported == [
        ("warning", "Failed to export span batch, code: 503"),
        ("error", "Exception while exporting logs."),
    ]

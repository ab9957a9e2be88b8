"""Telemetry of a run: OpenTelemetry traces, metrics and logs over OTLP, and structlog lines.

Its place: the `telemetry` stage, a listener of the runner (`events.RunHandler`) plus a request
observer and a per-request header source for the dispatcher. See docs/telemetry.md.

- `Telemetry` (`core`): `Telemetry.start(plan, url=..., run_id=..., otlp_endpoint=...)` gives
  `handler`, `observer`, `headers_for`, `trace_id`, and `shutdown()` the results'
  `TelemetrySummary`.
- `configure_logging`, `LoggingHandler` (`logs`): structlog JSON lines / console lines.
- `explore_link`, `trace_summary` (`links`): a Grafana Explore link to the run's trace.
- `resolve_config` (`config`): the `OTEL_*` variables.

Importing this package imports neither OpenTelemetry nor structlog: names are loaded on first use
(OpenTelemetry only when telemetry is actually on).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nimbus_scenarios.telemetry.config import TelemetryConfig, resolve_config
    from nimbus_scenarios.telemetry.core import Telemetry
    from nimbus_scenarios.telemetry.links import explore_link, trace_summary
    from nimbus_scenarios.telemetry.logs import LoggingHandler, configure_logging

__all__ = [
    "LoggingHandler",
    "Telemetry",
    "TelemetryConfig",
    "configure_logging",
    "explore_link",
    "resolve_config",
    "trace_summary",
]

_WHERE = {
    "LoggingHandler": "logs",
    "configure_logging": "logs",
    "Telemetry": "core",
    "TelemetryConfig": "config",
    "resolve_config": "config",
    "explore_link": "links",
    "trace_summary": "links",
}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)

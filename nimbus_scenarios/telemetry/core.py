"""`Telemetry`: what the runner wires in: a run handler, a request observer, per-request headers.

`Telemetry.start(...)` reads the configuration (`config.resolve_config`); with no endpoint (or
`OTEL_SDK_DISABLED=true`) it returns a disabled object at once, having imported no
OpenTelemetry: its handler only logs, `observer` and `headers_for` are None (the dispatcher's hot
path then pays one `is None` check), `trace_id` is None. Otherwise it builds the SDK pipelines
(`_pipeline`) and the run's spans and instruments (`_tracing`), all exporting on background
threads through bounded queues; nothing here can fail a run: a failure to set telemetry up is
logged as a warning and gives the disabled object.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nimbus_scenarios.engine.dispatch import HeadersFor, RequestObserver
from nimbus_scenarios.events import Progress, RunHandler
from nimbus_scenarios.telemetry import context as run_context
from nimbus_scenarios.telemetry.config import TelemetryConfig, resolve_config

if TYPE_CHECKING:
    from nimbus_scenarios.plan.model import PhasePlan, Plan
    from nimbus_scenarios.replicas import ReplicaSample
    from nimbus_scenarios.results.model import Judgement, RunResults
    from nimbus_scenarios.telemetry._pipeline import Pipeline, SdkLogBridge
    from nimbus_scenarios.telemetry._tracing import RunTelemetry

__all__ = ["Telemetry"]

SHUTDOWN_TIMEOUT_S = 5.0


class _Combined(RunHandler):
    """Spans and metrics first, then the log line (so it carries the new phase's span id);
    at a phase's end the log line comes first (still inside the phase span)."""

    def __init__(self, tracing: RunHandler, logging_handler: RunHandler | None) -> None:
        self.tracing = tracing
        self.logging = logging_handler

    def _both(self, name: str, *args: Any, log_first: bool = False) -> None:
        handlers = [self.tracing, self.logging] if not log_first else [self.logging, self.tracing]
        for handler in handlers:
            if handler is not None:
                try:
                    getattr(handler, name)(*args)
                except Exception:  # one listener failing must not stop the other
                    continue

    def run_started(self, plan: Plan, run_id: str) -> None:
        """See `RunHandler`."""
        self._both("run_started", plan, run_id)

    def stage_started(self, stage: str) -> None:
        """See `RunHandler`."""
        self._both("stage_started", stage)

    def phase_started(self, phase: PhasePlan, at_s: float) -> None:
        """See `RunHandler`."""
        self._both("phase_started", phase, at_s)

    def phase_ended(self, phase: PhasePlan, at_s: float) -> None:
        """See `RunHandler`."""
        self._both("phase_ended", phase, at_s, log_first=True)

    def replica_sample(self, sample: ReplicaSample, at_s: float) -> None:
        """See `RunHandler`."""
        self._both("replica_sample", sample, at_s)

    def pods_killed(self, names: Sequence[str], at_s: float) -> None:
        """See `RunHandler`."""
        self._both("pods_killed", names, at_s)

    def expectation_decided(self, judgement: Judgement, at_s: float | None) -> None:
        """See `RunHandler`."""
        self._both("expectation_decided", judgement, at_s)

    def aborted(self, reason: str, at_s: float) -> None:
        """See `RunHandler`."""
        self._both("aborted", reason, at_s)

    def progress(self, status: Progress) -> None:
        """See `RunHandler`."""
        self._both("progress", status)

    def run_ended(self, results: RunResults) -> None:
        """See `RunHandler`."""
        self._both("run_ended", results, log_first=True)


def _logger() -> Any:
    from nimbus_scenarios.telemetry.logs import ensure_logging, get_logger

    ensure_logging()
    return get_logger()


def _empty_counters() -> dict[str, int]:
    return {
        "spans_exported": 0,
        "spans_dropped": 0,
        "spans_queue_full": 0,
        "logs_exported": 0,
        "logs_dropped": 0,
        "logs_queue_full": 0,
        "metric_exports": 0,
        "export_errors": 0,
    }


class Telemetry:
    """A run's telemetry: build it with `Telemetry.start`, end it with `shutdown`.

    Wire in: `handler` (a `RunHandler`: spans, span events, metrics and, unless
    `log_events=False`, the structured log lines of `LoggingHandler`), `observer` (a dispatcher
    `RequestObserver`, or None) and `headers_for` (the dispatcher's per-request headers, or
    None); read `trace_id` for the results document and the summary, and put what `shutdown`
    returns in the results as `telemetry`.
    """

    def __init__(
        self,
        config: TelemetryConfig,
        *,
        handler: RunHandler,
        run_id: str | None,
        sample_percent: float,
        run: RunTelemetry | None = None,
        pipeline: Pipeline | None = None,
        bridge: SdkLogBridge | None = None,
    ) -> None:
        self.config = config
        self.handler = handler
        self.sample_percent = sample_percent
        self._run = run
        self._pipeline = pipeline
        self._bridge = bridge
        self._result: dict[str, Any] | None = None
        self._run_id = run_id
        self.observer: RequestObserver | None = None
        """Counts request durations and records sampled request spans; None when off."""
        self.headers_for: HeadersFor | None = None
        """`(phase, template) -> (("traceparent", ...),)` for every request; None when off."""
        if run is not None and run.tracer is not None:
            self.observer = run.observe
            self.headers_for = run.headers_for
        elif run is not None and pipeline is not None and pipeline.meter_provider is not None:
            self.observer = run.observe  # durations only: no headers, so no spans

    @property
    def enabled(self) -> bool:
        """Whether anything is exported."""
        return self._pipeline is not None

    @property
    def run_id(self) -> str | None:
        """The run id (the runner's, once the run started)."""
        return self._run.run_id if self._run is not None else self._run_id

    @property
    def trace_id(self) -> str | None:
        """The run's trace id as 32 hex digits; None when tracing is off."""
        return None if self._run is None else self._run.trace_hex

    @classmethod
    def start(
        cls,
        plan: Plan,
        *,
        url: str | None = None,
        run_id: str | None = None,
        otlp_endpoint: str | None = None,
        environ: Mapping[str, str] | None = None,
        log_events: bool = True,
    ) -> Telemetry:
        """Start a run's telemetry; returns a disabled object when there is nowhere to export.

        `url` is the target's base URL (for `url.full`, `server.address`, `server.port` on the
        request spans); `run_id` the runner's run id (adopted at `run_started` anyway);
        `otlp_endpoint` overrides `OTEL_EXPORTER_OTLP_ENDPOINT`; `environ` defaults to
        `os.environ`. `log_events` adds `LoggingHandler`'s lines to `handler`.
        """
        env = os.environ if environ is None else environ
        config = resolve_config(env, otlp_endpoint)
        run_context.reset()
        ctx = run_context.current()
        ctx.run_id = run_id
        ctx.scenario = plan.scenario
        logging_handler = _logging_handler() if log_events else None
        sample = plan.settings.trace_sample
        log = _logger()
        for problem in config.warnings:
            log.warning("telemetry_config", problem=problem)
        if not config.enabled:
            log.debug("telemetry_disabled", reason=config.reason)
            return cls._disabled(config, logging_handler, run_id, sample)
        try:
            return cls._enabled(config, plan, url, run_id, logging_handler)
        except ImportError as exc:
            log.warning(
                "telemetry_disabled",
                reason=f"{config.protocol} exporter not installed ({exc.name})",
                protocol=config.protocol,
            )
        except Exception as exc:
            log.warning("telemetry_disabled", reason=f"setup failed: {exc}")
        return cls._disabled(config, logging_handler, run_id, sample)

    @classmethod
    def _disabled(
        cls,
        config: TelemetryConfig,
        logging_handler: RunHandler | None,
        run_id: str | None,
        sample: float,
    ) -> Telemetry:
        handler = logging_handler if logging_handler is not None else RunHandler()
        return cls(
            TelemetryConfig(enabled=False, reason=config.reason or "setup failed"),
            handler=handler,
            run_id=run_id,
            sample_percent=sample,
        )

    @classmethod
    def _enabled(
        cls,
        config: TelemetryConfig,
        plan: Plan,
        url: str | None,
        run_id: str | None,
        logging_handler: RunHandler | None,
    ) -> Telemetry:
        from nimbus_scenarios.telemetry._pipeline import SdkLogBridge, build_pipeline
        from nimbus_scenarios.telemetry._tracing import RunTelemetry

        pipeline = build_pipeline(config)
        bridge = SdkLogBridge(_report_sdk_problem)
        otel_logger = logging.getLogger("opentelemetry")
        otel_logger.addHandler(bridge)
        otel_logger.propagate = False
        wall_offset_ns = time.time_ns() - int(time.monotonic() * 1e9)
        run = RunTelemetry(pipeline, plan, url=url, run_id=run_id, wall_offset_ns=wall_offset_ns)
        _logger().info(
            "telemetry_started",
            endpoint=config.endpoint,
            protocol=config.protocol,
            trace_sample=plan.settings.trace_sample,
            trace_id=run.trace_hex,
        )
        return cls(
            config,
            handler=_Combined(run, logging_handler),
            run_id=run_id,
            sample_percent=plan.settings.trace_sample,
            run=run,
            pipeline=pipeline,
            bridge=bridge,
        )

    def shutdown(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> dict[str, Any]:
        """End open spans, flush every signal within `timeout_s`, return the counters.

        The counters (for `results["telemetry"]`): spans_exported, spans_dropped (everything
        not delivered: full queue, failed export, not flushed in time), spans_queue_full,
        logs_exported, logs_dropped, logs_queue_full, metric_exports, export_errors (failed
        export calls of any signal); plus enabled, endpoint, protocol and trace_sample.
        Idempotent: later calls return the same dict.
        """
        if self._result is not None:
            return self._result
        counters = _empty_counters()
        try:
            if self._run is not None:
                self._run.end_spans(incomplete=True)
            ctx = run_context.current()
            ctx.sink = None
            if self._pipeline is not None:
                self._pipeline.shutdown(timeout_s)
                counters = self._pipeline.counters.snapshot()
        except Exception as exc:
            _logger().warning("telemetry_shutdown_failed", error=str(exc))
        finally:
            if self._bridge is not None:
                otel_logger = logging.getLogger("opentelemetry")
                otel_logger.removeHandler(self._bridge)
                otel_logger.propagate = True
        result: dict[str, Any] = {
            "enabled": self.enabled,
            "endpoint": self.config.endpoint,
            "protocol": self.config.protocol if self.enabled else None,
            "trace_sample": self.sample_percent,
            **counters,
        }
        if self.enabled and (result["spans_dropped"] or result["logs_dropped"]):
            _logger().warning(
                "telemetry_dropped",
                spans_dropped=result["spans_dropped"],
                logs_dropped=result["logs_dropped"],
                export_errors=result["export_errors"],
            )
        self._result = result
        return result


def _logging_handler() -> RunHandler:
    from nimbus_scenarios.telemetry.logs import LoggingHandler

    return LoggingHandler()


def _report_sdk_problem(level: str, message: str) -> None:
    log = _logger()
    (log.warning if level in ("warning", "info", "debug") else log.error)(
        "telemetry_export_problem", message=message
    )

"""`Telemetry`: what the runner wires in: a run handler, a request observer, per-request headers.

Its place: the face of the `telemetry` stage. `Telemetry.start(...)` reads the configuration
(`config.resolve_config`); with no endpoint (or `OTEL_SDK_DISABLED=true`) it returns a disabled
object at once, having imported no OpenTelemetry: its handler only logs, `observer` and
`headers_for` are None (the dispatcher's hot path then pays one `is None` check), `trace_id` is
None. Otherwise it builds the SDK pipelines (`_pipeline`) and the run's handlers: spans
(`_spans`), request spans and durations (`_requests`), metrics (`_metrics`), OTLP logs
(`_log_bridge`) and the log lines (`logs.LoggingHandler`), all exporting on background threads
through bounded queues. Nothing here can fail a run: a failure to set telemetry up is logged as
a warning and gives the disabled object. `shutdown` returns the results' `TelemetrySummary`.

With worker processes (`run --workers N`), the parent's `for_workers` gives what each worker
needs (`link.WorkerTrace`), and a worker's `Telemetry.for_worker` records request spans only,
in the parent's trace, exporting them from the worker (see docs/telemetry.md).

Importing this module loads neither OpenTelemetry, structlog nor an HTTP client.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from nimbus_scenarios.clock import Clock, LoopClock
from nimbus_scenarios.engine.dispatch import HeadersFor, RequestObserver
from nimbus_scenarios.events import Handlers, RunHandler
from nimbus_scenarios.results.model import TelemetrySummary
from nimbus_scenarios.telemetry import context as run_context
from nimbus_scenarios.telemetry.config import TelemetryConfig, resolve_config
from nimbus_scenarios.telemetry.link import WorkerTrace, with_workers

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from nimbus_scenarios.plan.model import Plan
    from nimbus_scenarios.telemetry._metrics import RunMetrics
    from nimbus_scenarios.telemetry._pipeline import Pipeline
    from nimbus_scenarios.telemetry._requests import RequestSpans
    from nimbus_scenarios.telemetry._spans import RunSpans

__all__ = ["Telemetry"]

SHUTDOWN_TIMEOUT_S = 5.0
_SDK_LOGGER = "opentelemetry"


class Telemetry:
    """A run's telemetry: build it with `Telemetry.start`, end it with `shutdown`.

    Wire in: `handler` (a `RunHandler`: spans, span events, metrics and, unless
    `log_events=False`, the structured log lines of `LoggingHandler`), `observer` (a dispatcher
    `RequestObserver`, or None) and `headers_for` (the dispatcher's per-request headers, or
    None); read `trace_id` for the results and the summary, and put what `shutdown` returns in
    the results as `telemetry`.
    """

    def __init__(
        self,
        config: TelemetryConfig,
        *,
        handler: RunHandler,
        run_id: str | None,
        sample_percent: float,
        observer: RequestObserver | None = None,
        headers_for: HeadersFor | None = None,
        spans: RunSpans | None = None,
        metrics: RunMetrics | None = None,
        pipeline: Pipeline | None = None,
        bridge: logging.Handler | None = None,
        requests: RequestSpans | None = None,
        logs: bool = True,
    ) -> None:
        self.config = config
        self.handler = handler
        self.sample_percent = sample_percent
        self.observer = observer
        """Counts request durations and records sampled request spans; None when off."""
        self.headers_for = headers_for
        """`(phase, template) -> (("traceparent", ...),)` for every request; None when off."""
        self._run_id = run_id
        self._spans = spans
        self._metrics = metrics
        self._pipeline = pipeline
        self._bridge = bridge
        self._requests = requests
        self._logs = logs
        """Whether this process logs (a worker does not: the parent reports its counts)."""
        self._summary: TelemetrySummary | None = None

    @property
    def enabled(self) -> bool:
        """Whether anything is exported."""
        return self._pipeline is not None

    @property
    def notes(self) -> tuple[str, ...]:
        """For the results' notes: the line naming the `OTEL_*` settings not honoured, if any."""
        notice = self.config.notice()
        return () if notice is None else (notice,)

    @property
    def run_id(self) -> str | None:
        """The run id (the runner's, once the run started)."""
        return self._spans.run_id if self._spans is not None else self._run_id

    @property
    def trace_id(self) -> str | None:
        """The run's trace id as 32 hex digits; None when tracing is off."""
        return None if self._spans is None else self._spans.trace_hex

    def for_workers(self, run_id: str | None = None) -> WorkerTrace | None:
        """What worker processes need to send their request spans into this run's trace (None
        when tracing is off); from now on this process's request spans say `nimbus.worker` 0.
        `run_id` is the runner's run id when one is given (else this telemetry's)."""
        spans, requests = self._spans, self._requests
        if spans is None or requests is None:
            return None
        requests.mark_worker(0)
        root = spans.root.context
        return WorkerTrace(
            config=dataclasses.replace(self.config, metrics=None, logs=None, ignored=()),
            trace_id=root.trace_id,
            root_span_id=root.span_id,
            phase_span_ids=tuple(spans.planned_ids.items()),
            run_id=run_id or spans.run_id,
            url=requests.url,
        )

    @classmethod
    def for_worker(cls, plan: Plan, link: WorkerTrace, worker: int) -> Telemetry:
        """A worker process's telemetry: request spans in the parent's trace (under the
        parent's phase spans, `nimbus.worker` = `worker`), exported from this process; no
        metrics, no log lines, no run or phase spans (the parent's). Never raises: a failure
        gives the disabled object, and the worker sends as before without spans."""
        try:
            return cls._joined(plan, link, worker)
        except Exception as exc:
            return cls(
                TelemetryConfig(enabled=False, reason=f"setup failed: {exc}"),
                handler=RunHandler(),
                run_id=link.run_id,
                sample_percent=plan.settings.trace_sample,
                logs=False,
            )

    @classmethod
    def _joined(cls, plan: Plan, link: WorkerTrace, worker: int) -> Telemetry:
        from nimbus_scenarios.telemetry._joined import JoinedSpans
        from nimbus_scenarios.telemetry._pipeline import build_pipeline
        from nimbus_scenarios.telemetry._requests import RequestSpans
        from nimbus_scenarios.telemetry._walltime import WallTime

        pipeline = build_pipeline(link.config)
        processor = pipeline.span_processor
        if processor is None:
            raise ValueError("the parent's configuration exports no traces")
        wall = WallTime(LoopClock())
        spans = JoinedSpans(link, wall)
        requests = RequestSpans(
            plan,
            url=link.url,
            run_id=link.run_id,
            wall=wall,
            spans=spans,
            submit=processor.on_end,  # type: ignore[arg-type]  # see `_enabled`
            durations=None,
            worker=worker,
        )
        # Export failures are counted (the parent adds them to its summary and says so); the
        # SDK's own lines would repeat them on stderr once per worker.
        quiet = logging.NullHandler()
        sdk_logger = logging.getLogger(_SDK_LOGGER)
        sdk_logger.addHandler(quiet)
        sdk_logger.propagate = False
        return cls(
            link.config,
            handler=spans,
            run_id=link.run_id,
            sample_percent=plan.settings.trace_sample,
            observer=requests.observe,
            headers_for=requests.headers_for,
            pipeline=pipeline,
            bridge=quiet,
            requests=requests,
            logs=False,
        )

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
        clock: Clock | None = None,
    ) -> Telemetry:
        """Start a run's telemetry; returns a disabled object when there is nowhere to export.

        `url` is the target's base URL (for `url.full`, `server.address`, `server.port` on the
        request spans; a password in it is masked); `run_id` the runner's run id (adopted at
        `run_started` anyway); `otlp_endpoint` overrides `OTEL_EXPORTER_OTLP_ENDPOINT`;
        `environ` defaults to `os.environ`. `log_events` adds `LoggingHandler`'s lines to
        `handler`. `clock` is the run's clock (the one given to the runner; by default the
        event loop's), which every span and log timestamp is read from.
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
        notice = config.notice()
        if notice is not None:
            log.warning("telemetry_config", message=notice, ignored=list(config.ignored))
        if not config.enabled:
            log.debug("telemetry_disabled", reason=config.reason)
            return cls._disabled(config, logging_handler, run_id, sample)
        try:
            return cls._enabled(
                config, plan, url, run_id, logging_handler, clock or LoopClock(), env
            )
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
        return cls(
            TelemetryConfig(
                enabled=False, reason=config.reason or "setup failed", ignored=config.ignored
            ),
            handler=logging_handler if logging_handler is not None else RunHandler(),
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
        clock: Clock,
        environ: Mapping[str, str],
    ) -> Telemetry:
        from nimbus_scenarios import __version__
        from nimbus_scenarios.telemetry._durations import exemplar_filter
        from nimbus_scenarios.telemetry._log_bridge import OtlpLogs, SdkLogBridge
        from nimbus_scenarios.telemetry._metrics import RunMetrics
        from nimbus_scenarios.telemetry._pipeline import SCOPE_NAME, build_pipeline
        from nimbus_scenarios.telemetry._requests import RequestSpans
        from nimbus_scenarios.telemetry._spans import RunSpans
        from nimbus_scenarios.telemetry._walltime import WallTime

        pipeline = build_pipeline(config)
        wall = WallTime(clock)
        identity = run_id or ""
        spans = None
        if pipeline.tracer_provider is not None:
            tracer = pipeline.tracer_provider.get_tracer(SCOPE_NAME, __version__)
            spans = RunSpans(tracer, plan, url=url, run_id=identity, wall=wall, ids=pipeline.ids)
        metrics = None
        if pipeline.meter_provider is not None and pipeline.metric_exporter is not None:
            meter = pipeline.meter_provider.get_meter(SCOPE_NAME, __version__)
            exemplars, problem = exemplar_filter(environ)
            if problem is not None:
                _logger().warning("telemetry_config", problem=problem)
            metrics = RunMetrics(meter, plan, run_id=identity, exemplars=exemplars)
            pipeline.metric_exporter.extra = metrics.durations.metric
        processor = pipeline.span_processor
        requests = RequestSpans(
            plan,
            url=url,
            run_id=identity,
            wall=wall,
            spans=spans,
            # The batch processor queues any span whose context says sampled; a `RequestSpan`
            # is one (see `_wire`), and the exporter tells the two kinds apart.
            submit=processor.on_end if processor is not None else None,  # type: ignore[arg-type]
            durations=metrics.durations if metrics is not None else None,
        )
        if pipeline.logger_provider is not None:
            otel_logger = pipeline.logger_provider.get_logger(SCOPE_NAME, __version__)
            run_context.current().sink = OtlpLogs(otel_logger, spans=spans, wall=wall).emit
        bridge = SdkLogBridge(_report_sdk_problem)
        sdk_logger = logging.getLogger(_SDK_LOGGER)
        sdk_logger.addHandler(bridge)
        sdk_logger.propagate = False
        _logger().info(
            "telemetry_started",
            endpoint=config.endpoint,
            protocol=config.protocol,
            trace_sample=plan.settings.trace_sample,
            trace_id=spans.trace_hex if spans is not None else None,
        )
        # Order matters: spans and metrics first, so that a phase's log line carries the new
        # phase span; span endings last, so that the lines about an end are still inside it.
        handlers: list[RunHandler] = [requests]
        if spans is not None:
            handlers.append(spans)
        if metrics is not None:
            handlers.append(metrics)
        if logging_handler is not None:
            handlers.append(logging_handler)
        if spans is not None:
            handlers.append(spans.ending)
        tracing = spans is not None
        return cls(
            config,
            handler=Handlers(handlers),
            run_id=run_id,
            sample_percent=plan.settings.trace_sample,
            observer=requests.observe if tracing or metrics is not None else None,
            headers_for=requests.headers_for if tracing else None,
            spans=spans,
            metrics=metrics,
            pipeline=pipeline,
            bridge=bridge,
            requests=requests,
        )

    def shutdown(
        self, timeout_s: float = SHUTDOWN_TIMEOUT_S, workers: Iterable[TelemetrySummary] = ()
    ) -> TelemetrySummary:
        """End open spans, flush every signal within `timeout_s`, return what was exported,
        with what the `workers`' span exports did added (`run --workers`: the drops warned of
        are the whole run's).

        Spans still open (a crash) are ended marked incomplete. In the summary: spans_dropped is
        everything not delivered (full queue, failed export, not flushed in time), export_errors
        counts failed export calls of any signal. Idempotent: later calls return the same one.
        """
        if self._summary is not None:
            return self._summary
        summary = TelemetrySummary(
            enabled=self.enabled,
            endpoint=self.config.endpoint,
            protocol=self.config.protocol if self.enabled else None,
            trace_sample=self.sample_percent,
        )
        try:
            if self._spans is not None:
                self._spans.end_spans(incomplete=True)
            if self._metrics is not None:
                self._metrics.end()
            run_context.current().sink = None
            if self._pipeline is not None:
                self._pipeline.shutdown(timeout_s)
                summary = self._pipeline.counters.summary(summary)
        except Exception as exc:  # a failing flush loses records, never the run's results
            if self._logs:
                _logger().warning("telemetry_shutdown_failed", error=str(exc))
        finally:
            if self._bridge is not None:
                sdk_logger = logging.getLogger(_SDK_LOGGER)
                sdk_logger.removeHandler(self._bridge)
                sdk_logger.propagate = True
        summary = with_workers(summary, workers)
        if self._logs and self.enabled and (summary.spans_dropped or summary.logs_dropped):
            _logger().warning(
                "telemetry_dropped",
                spans_dropped=summary.spans_dropped,
                logs_dropped=summary.logs_dropped,
                export_errors=summary.export_errors,
            )
        self._summary = summary
        return summary


def _logger() -> FilteringBoundLogger:
    from nimbus_scenarios.telemetry.logs import ensure_logging, get_logger

    ensure_logging()
    return get_logger()


def _logging_handler() -> RunHandler:
    from nimbus_scenarios.telemetry.logs import LoggingHandler

    return LoggingHandler()


def _report_sdk_problem(level: str, message: str) -> None:
    log = _logger()
    report = log.warning if level in ("warning", "info", "debug") else log.error
    report("telemetry_export_problem", message=message)

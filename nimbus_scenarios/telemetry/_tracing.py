"""Spans, span events, metrics and OTLP logs of one run (imported only when telemetry is on).

The span tree: a root span `scenario <name>` from `Telemetry.start` to `run_ended`, a span
`phase <name>` per phase (child of the root), and a CLIENT span per sampled request (child of its
phase span). Replica changes, kills, expectation verdicts, stages and aborts are span events.

Request spans are the hot path, so they are not SDK `Span` objects: `headers_for` draws the span
id itself and puts it in the `traceparent`, and the request observer, given the same headers
back, records a finished `_wire.RequestSpan` (span id, times, status; parent and fixed
attributes shared per phase and template) and hands it straight to the batch processor; the
export thread encodes it (and records its duration in the histogram). A request that is not
sampled carries a pre-built `traceparent` naming the phase span as parent with the sampled flag
00 (no id drawn, nothing recorded); one that is cancelled in flight is simply never recorded.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlsplit

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from nimbus_scenarios import __version__
from nimbus_scenarios.engine.dispatch import ExtraHeaders
from nimbus_scenarios.engine.request import Outcome
from nimbus_scenarios.events import Progress, RunHandler
from nimbus_scenarios.telemetry import context as run_context
from nimbus_scenarios.telemetry._pipeline import (
    SCOPE_NAME,
    DurationHistogram,
    Pipeline,
    log_attributes,
)
from nimbus_scenarios.telemetry._wire import RequestShape, RequestSpan

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Span

    from nimbus_scenarios.plan.model import PhasePlan, Plan, Template
    from nimbus_scenarios.replicas import ReplicaSample
    from nimbus_scenarios.results.model import Judgement, RunResults

__all__ = ["RunTelemetry"]

_SEVERITY: Final = {
    "debug": SeverityNumber.DEBUG,
    "info": SeverityNumber.INFO,
    "warning": SeverityNumber.WARN,
    "warn": SeverityNumber.WARN,
    "error": SeverityNumber.ERROR,
    "critical": SeverityNumber.FATAL,
}
_LOG_SKIP: Final = ("event", "level", "timestamp", "trace_id", "span_id")
_DURATION_BUCKETS_S: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


def _redacted_url(base_url: str, template: Template) -> str:
    """The template's URL as sent, with secret and `env(...)` query values `REDACTED`."""
    from nimbus_scenarios.engine.request import prepare

    query = [
        (k, "REDACTED" if v.env is not None or v.secret else v.value) for k, v in template.query
    ]
    try:
        return prepare(template.method, base_url, template.path, query).url
    except ValueError:
        return base_url.rstrip("/") + "/" + quote(template.path.lstrip("/"), safe="/:@%")


class _Phase:
    """A phase's span and what its requests need: parent context and pre-built headers."""

    __slots__ = ("context", "ended", "log_context", "name", "span", "unsampled")

    def __init__(self, name: str, span: Span, trace_hex: str) -> None:
        self.name = name
        self.span = span
        self.context: SpanContext = span.get_span_context()
        self.unsampled: ExtraHeaders = (
            ("traceparent", f"00-{trace_hex}-{self.context.span_id:016x}-00"),
        )
        self.log_context: Context = trace.set_span_in_context(span)
        self.ended = False


class RunTelemetry(RunHandler):
    """The run handler, request observer and header source of one traced run."""

    def __init__(
        self,
        pipeline: Pipeline,
        plan: Plan,
        *,
        url: str | None,
        run_id: str | None,
        wall_offset_ns: int,
    ) -> None:
        self.pipeline = pipeline
        self.plan = plan
        self.scenario = plan.scenario
        self.run_id = run_id or ""
        self.url = url
        self._offset_ns = wall_offset_ns
        self._p = max(0.0, min(plan.settings.trace_sample, 100.0)) / 100.0
        self._random = random.random
        self._bits = random.getrandbits
        self._processor = pipeline.span_processor
        self._phases: dict[str, _Phase] = {}
        self._current: _Phase | None = None
        self._phase_name: str | None = None
        self._metric_attrs: dict[str | None, dict[str, str]] = {}
        self._shapes: dict[tuple[str, str], RequestShape] = {}
        self._logged: set[tuple[str, str]] = set()
        self._status: Progress | None = None
        self._replicas: ReplicaSample | None = None
        self._ended = False
        # Tracing: the root span starts now (so preflight is inside it).
        self.tracer = (
            pipeline.tracer_provider.get_tracer(SCOPE_NAME, __version__)
            if pipeline.tracer_provider is not None
            else None
        )
        self.root: Span | None = None
        self.trace_hex: str | None = None
        self._root_phase: _Phase | None = None
        if self.tracer is not None:
            root = self.tracer.start_span(
                f"scenario {plan.scenario}",
                kind=SpanKind.INTERNAL,
                attributes={
                    "nimbus.scenario": plan.scenario,
                    "nimbus.run_id": self.run_id,
                    "nimbus.trace_sample": plan.settings.trace_sample,
                    "nimbus.planned_duration_s": plan.duration_s,
                    **({"nimbus.target": url} if url else {}),
                },
            )
            self.root = root  # type: ignore[assignment]
            self.trace_hex = f"{root.get_span_context().trace_id:032x}"
            self._root_phase = _Phase("", root, self.trace_hex)  # type: ignore[arg-type]
            self._prefix = f"00-{self.trace_hex}-"
            ctx = run_context.current()
            ctx.trace_id = self.trace_hex
            ctx.span_id = f"{root.get_span_context().span_id:016x}"
        # Metrics.
        self._durations: DurationHistogram | None = None
        if pipeline.meter_provider is not None:
            self._make_instruments()
        # OTLP logs.
        self._otel_logger: Any = None
        if pipeline.logger_provider is not None:
            self._otel_logger = pipeline.logger_provider.get_logger(SCOPE_NAME, __version__)
            run_context.current().sink = self.emit_log

    # ------------------------------------------------------------------ hot path
    def headers_for(self, phase: str, template: str) -> ExtraHeaders | None:
        """The `traceparent` for one request: a fresh span id when sampled, else the phase's."""
        state = self._phases.get(phase) or self._root_phase
        if state is None:
            return None
        if self._random() >= self._p:
            return state.unsampled
        return (("traceparent", f"{self._prefix}{self._bits(64) or 1:016x}-01"),)

    def observe(
        self,
        phase: str,
        template: str,
        scheduled: float,
        sent: float,
        done: float,
        outcome: Outcome,
        ok: bool,
        extra: ExtraHeaders | None,
    ) -> None:
        """Count the request's duration; record its span when it was sampled."""
        durations = self._durations
        if durations is not None:
            durations.record(phase, done - sent)
        if extra is None:
            return
        traceparent = extra[0][1]
        if traceparent[-1] != "1":
            return
        try:
            self._record(phase, template, scheduled, sent, done, outcome, ok, traceparent)
        except Exception:  # never break the dispatcher; a bad span is a lost span
            return

    def _record(
        self,
        phase: str,
        template: str,
        scheduled: float,
        sent: float,
        done: float,
        outcome: Outcome,
        ok: bool,
        traceparent: str,
    ) -> None:
        shape = self._shapes.get((phase, template))
        if shape is None:
            shape = self._shape_for(phase, template)
        status = outcome.status
        if status is None:
            error: str | None = str(outcome.error)
        elif status >= 400:
            error = str(status)
        else:
            error = None
        late = sent - scheduled
        offset = self._offset_ns
        span = RequestSpan(
            shape,
            int(traceparent[36:52], 16),
            int(sent * 1e9) + offset,
            int(done * 1e9) + offset,
            status,
            error,
            round(late * 1000.0, 3) if late > 0 else 0.0,
            ok,
        )
        if self._processor is not None:
            self._processor.on_end(span)  # type: ignore[arg-type]

    def _shape_for(self, phase: str, template: str) -> RequestShape:
        """Span name, parent and fixed attributes of a (phase, template) pair, built once."""
        state = self._phases.get(phase) or self._root_phase
        assert state is not None
        plan_template = self.plan.templates.get(template)
        attributes: dict[str, Any] = {
            "nimbus.scenario": self.scenario,
            "nimbus.phase": phase,
            "nimbus.template": template,
            "nimbus.run_id": self.run_id,
        }
        name = template
        if plan_template is not None:
            method = plan_template.method.upper()
            path = plan_template.path.partition("?")[0]
            attributes["http.request.method"] = method
            name = method
            if self.url is not None:
                full = _redacted_url(self.url, plan_template)
                attributes["url.full"] = full
                parts = urlsplit(full)
                if parts.hostname:
                    attributes["server.address"] = parts.hostname
                port = parts.port or (443 if parts.scheme == "https" else 80)
                attributes["server.port"] = port
            if not path.startswith(("http://", "https://")):
                attributes["url.template"] = path if path.startswith("/") else "/" + path
                name = f"{method} {attributes['url.template']}"
        shape = RequestShape(name, state.context, attributes)
        self._shapes[(phase, template)] = shape
        return shape

    # ------------------------------------------------------------------ run events
    def _target(self) -> Span | None:
        state = self._current
        if state is not None and not state.ended:
            return state.span
        return self.root if not self._ended else None

    def _event(self, name: str, attributes: Mapping[str, Any], *, root: bool = False) -> None:
        span = self.root if root else self._target()
        if span is None or self._ended:
            return
        span.add_event(name, {k: v for k, v in attributes.items() if v is not None})

    def _metric_attributes(self, phase: str | None) -> dict[str, str]:
        attributes = self._metric_attrs.get(phase)
        if attributes is None:
            attributes = {"scenario": self.scenario, "run_id": self.run_id}
            if phase:
                attributes["phase"] = phase
            self._metric_attrs[phase] = attributes
        return attributes

    def run_started(self, plan: Plan, run_id: str) -> None:
        """Adopt the runner's run id (if it differs) and note the start on the root span."""
        if run_id and run_id != self.run_id:
            self.run_id = run_id
            self._shapes.clear()
            self._metric_attrs.clear()
            if self.root is not None:
                self.root.set_attribute("nimbus.run_id", run_id)
        ctx = run_context.current()
        ctx.run_id = self.run_id
        ctx.scenario = self.scenario
        self._event("run_started", {"run_id": self.run_id}, root=True)

    def stage_started(self, stage: str) -> None:
        """A span event `stage_started` on the root span."""
        self._event("stage_started", {"stage": stage}, root=True)

    def phase_started(self, phase: PhasePlan, at_s: float) -> None:
        """Start the phase's span (child of the root)."""
        self._phase_name = phase.name
        if self.tracer is None or self.root is None or self._ended:
            return
        span = self.tracer.start_span(
            f"phase {phase.name}",
            context=trace.set_span_in_context(self.root),
            kind=SpanKind.INTERNAL,
            attributes={
                "nimbus.scenario": self.scenario,
                "nimbus.run_id": self.run_id,
                "nimbus.phase": phase.name,
                "nimbus.phase.index": phase.index,
                "nimbus.phase.shape": phase.shape_text,
                "nimbus.phase.start_s": round(at_s, 3),
                "nimbus.phase.planned_duration_s": phase.duration_s,
                **(
                    {"nimbus.phase.scheduled": phase.scheduled_total}
                    if phase.scheduled_total is not None
                    else {}
                ),
            },
        )
        assert self.trace_hex is not None
        state = _Phase(phase.name, span, self.trace_hex)  # type: ignore[arg-type]
        self._phases[phase.name] = state
        self._current = state
        ctx = run_context.current()
        ctx.phase = phase.name
        ctx.span_id = f"{state.context.span_id:016x}"

    def phase_ended(self, phase: PhasePlan, at_s: float) -> None:
        """End the phase's span."""
        if self._phase_name == phase.name:
            self._phase_name = None
        state = self._phases.get(phase.name)
        if state is None or state.ended:
            return
        state.span.set_attribute("nimbus.phase.end_s", round(at_s, 3))
        state.span.end()
        state.ended = True
        if self._current is state:
            self._current = None
            if self.root is not None:
                run_context.current().span_id = f"{self.root.get_span_context().span_id:016x}"

    def replica_sample(self, sample: ReplicaSample, at_s: float) -> None:
        """A span event `replicas` (on the phase span, else the root)."""
        self._replicas = sample
        self._event(
            "replicas",
            {
                "ready": sample.ready,
                "desired": sample.desired,
                "current": sample.current,
                "autoscaler": sample.autoscaler,
                "at_s": round(at_s, 3),
            },
        )

    def pods_killed(self, names: Sequence[str], at_s: float) -> None:
        """A span event `pods_killed`."""
        self._event("pods_killed", {"pods": tuple(names), "count": len(names), "at_s": at_s})

    def expectation_decided(self, judgement: Judgement, at_s: float | None) -> None:
        """A span event `expectation_decided` on the root span."""
        e = judgement.expectation
        self._logged.add((e.scope, e.text))
        self._event(
            "expectation_decided",
            {
                "expectation": e.text,
                "scope": e.scope,
                "verdict": str(judgement.verdict),
                "observed": judgement.observed,
                "detail": judgement.detail or None,
                "at_s": None if at_s is None else round(at_s, 3),
            },
            root=True,
        )

    def aborted(self, reason: str, at_s: float) -> None:
        """A span event `aborted` on the root (and the current phase) span."""
        attributes: dict[str, Any] = {"reason": reason, "at_s": round(at_s, 3)}
        if self._current is not None and not self._current.ended:
            self._current.span.add_event("aborted", attributes)
        self._event("aborted", attributes, root=True)

    def progress(self, status: Progress) -> None:
        """Keep the latest status for the gauges."""
        self._status = status

    def run_ended(self, results: RunResults) -> None:
        """Verdicts as events, the run's verdict as attributes; end every open span."""
        root = self.root
        if root is None or self._ended:
            return
        for j in results.expectations:
            e = j.expectation
            if (e.scope, e.text) in self._logged:
                continue
            self._event(
                "expectation_decided",
                {
                    "expectation": e.text,
                    "scope": e.scope,
                    "verdict": str(j.verdict),
                    "observed": j.observed,
                    "detail": j.detail or None,
                },
                root=True,
            )
        verdict = str(results.verdict)
        totals = results.totals
        root.set_attributes(
            {
                "nimbus.verdict": verdict,
                "nimbus.exit_code": int(results.exit_code),
                "nimbus.sent": totals.sent,
                "nimbus.succeeded": totals.succeeded,
                "nimbus.failed": totals.failed,
                "nimbus.dropped": totals.dropped,
            }
        )
        if verdict != "passed":
            root.set_status(Status(StatusCode.ERROR, results.error or verdict))
        self.end_spans()

    def end_spans(self, *, incomplete: bool = False) -> None:
        """End open phase spans and the root span (at shutdown: marked incomplete)."""
        if self._ended:
            return
        for state in self._phases.values():
            if not state.ended:
                if incomplete:
                    state.span.set_attribute("nimbus.incomplete", True)
                state.span.end()
                state.ended = True
        self._current = None
        if self.root is not None:
            if incomplete:
                self.root.set_attribute("nimbus.incomplete", True)
            self.root.end()
        self._ended = True

    # ------------------------------------------------------------------ metrics
    def _make_instruments(self) -> None:
        assert self.pipeline.meter_provider is not None
        meter = self.pipeline.meter_provider.get_meter(SCOPE_NAME, __version__)
        if self.pipeline.metric_exporter is not None:
            self._durations = DurationHistogram(_DURATION_BUCKETS_S, self._metric_attributes)
            self.pipeline.metric_exporter.durations = self._durations
        for name, key, description in (
            ("nimbus_target_rate", "target_rate", "Target arrival rate, requests per second"),
            ("nimbus_achieved_rate", "achieved_rate", "Requests sent in the last second"),
            ("nimbus_in_flight", "in_flight", "Requests in flight"),
        ):
            meter.create_observable_gauge(
                name, callbacks=[self._gauge(key)], description=description
            )
        meter.create_observable_gauge(
            "nimbus_replicas",
            callbacks=[self._observe_replicas],
            description="Replicas of the target Deployment by kind (ready, desired)",
        )
        # Always one point: the SDK skips an export with no data at all, and the duration
        # histogram rides on exports (the last one at shutdown, after the gauges went quiet).
        meter.create_observable_gauge(
            "nimbus_run_info",
            callbacks=[self._observe_run],
            description="1 while the run's telemetry lives; attributes scenario, run_id",
        )

    def _observe_run(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(1, self._metric_attributes(None))]

    def _gauge(self, key: str) -> Any:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            status = self._status
            if status is None or self._ended:
                return []
            value = getattr(status, key, None)
            if not isinstance(value, int | float):
                return []
            return [Observation(value, self._metric_attributes(status.phase))]

        return callback

    def _observe_replicas(self, _options: CallbackOptions) -> Iterable[Observation]:
        sample = self._replicas
        if sample is None or self._ended:
            return []
        attributes = self._metric_attributes(self._phase_name)
        return [
            Observation(sample.ready, {**attributes, "kind": "ready"}),
            Observation(sample.desired, {**attributes, "kind": "desired"}),
        ]

    # ------------------------------------------------------------------ logs
    def emit_log(self, level: str, event: str, fields: Mapping[str, Any]) -> None:
        """The log sink: one OTLP log record, in the current phase's (or the root's) span."""
        logger = self._otel_logger
        if logger is None:
            return
        state = self._current if self._current is not None else self._root_phase
        attributes = log_attributes(fields, _LOG_SKIP)
        attributes.setdefault("run_id", self.run_id)
        attributes.setdefault("scenario", self.scenario)
        logger.emit(
            timestamp=time.time_ns(),
            context=state.log_context if state is not None else None,
            severity_number=_SEVERITY.get(level, SeverityNumber.INFO),
            severity_text=level.upper(),
            body=event,
            attributes=attributes,
        )

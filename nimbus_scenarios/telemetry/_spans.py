"""The run's span tree: a root span, a span per phase, and the run's events as span events.

Its place: a `RunHandler` among telemetry's handlers (imported only when tracing is on). The
root span `scenario <name>` lives from `Telemetry.start` to `run_ended` (so pre-flight is inside
it); each phase that runs gets `phase <name>`, a child of the root. Stages, replica samples,
pod kills, verdicts and aborts become span events: on the current phase span or on the root,
as each event's docstring says; so do the autoscaler's decisions, the pods' changes and, at
the end, the run's scale events. Request spans (children of the phase spans) are recorded apart,
on the hot path, by `_requests`; they find their parent with `RunSpans.parent` (in a worker
process of `run --workers N`, with `_joined.JoinedSpans.parent`: both are `SpanParents`).

Each phase's span id is drawn when the run's spans are made (`PlannedIds`), before any phase
starts, so that worker processes know the spans their requests hang under (`telemetry.link`).

Spans are ended by `RunSpans.ending`, a second handler heard after the log lines, so that the
lines logged about a phase's or the run's end still carry the span they are about. Every time
comes from the run's clock (`_walltime`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from nimbus_scenarios.engine.dispatch import ExtraHeaders
from nimbus_scenarios.events import PodChange, RunHandler
from nimbus_scenarios.plan.model import PhasePlan, Plan
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.results.model import Judgement, RunResults, RunVerdict, Stage
from nimbus_scenarios.scaling import AutoscalerSample, PodRecord, ScaleEvent
from nimbus_scenarios.scaling_words import describe_event
from nimbus_scenarios.secrets import mask_url
from nimbus_scenarios.telemetry import context as run_context
from nimbus_scenarios.telemetry._walltime import WallTime

__all__ = ["ParentSpan", "PlannedIds", "RunSpans", "SpanParents"]

_INCOMPLETE: Final = "nimbus.incomplete"


class ParentSpan:
    """A span that request spans and log records hang under (a phase's, or the root), with what
    they need pre-built: its context, the unsampled `traceparent` naming it, its OTel context."""

    __slots__ = ("context", "ended", "log_context", "name", "span", "unsampled")

    def __init__(self, name: str, span: trace.Span) -> None:
        self.name = name
        self.span = span
        self.context: SpanContext = span.get_span_context()
        self.unsampled: ExtraHeaders = (
            ("traceparent", f"00-{self.context.trace_id:032x}-{self.context.span_id:016x}-00"),
        )
        self.log_context: Context = trace.set_span_in_context(span)
        self.ended = False

    @property
    def span_hex(self) -> str:
        """The span id as 16 hex digits."""
        return f"{self.context.span_id:016x}"


class SpanParents(Protocol):
    """Where request spans hang: the run's trace, and the span a request of a phase names."""

    @property
    def trace_hex(self) -> str:
        """The run's trace id as 32 hex digits."""
        ...

    def parent(self, phase: str) -> ParentSpan:
        """The span a request of `phase` hangs under."""
        ...


class PlannedIds(IdGenerator):
    """The SDK's random ids, except that a span id drawn ahead (`draw`) can be handed to the
    next span started (`use_next`): how a phase span gets the id its workers were told.

    Only the event loop's thread starts spans (request spans are not SDK spans), so the one
    pending id needs no lock.
    """

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self._next: int | None = None

    def draw(self) -> int:
        """A fresh span id, kept for a span started later."""
        return self._random.generate_span_id()

    def use_next(self, span_id: int | None) -> None:
        """The next span started gets `span_id` (None: a random one)."""
        self._next = span_id

    def generate_span_id(self) -> int:
        """The id handed by `use_next`, once; else a random one."""
        planned, self._next = self._next, None
        return planned if planned is not None else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        """A random trace id."""
        return self._random.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        """Trace ids are random (W3C's random-trace-id flag)."""
        return True


def _known(attributes: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    """The attributes that have a value (OTel drops None with a warning; we leave it out)."""
    return {key: value for key, value in attributes.items() if value is not None}


_Decision = tuple[int | None, int | None, tuple[tuple[str, bool], ...], tuple[tuple[str, str], ...]]


def _decision_of(sample: AutoscalerSample) -> _Decision:
    """What makes an autoscaler status a new decision: desired and current replicas, which
    metrics are above their targets, and the conditions' statuses (not the values alone)."""
    return (
        sample.desired,
        sample.current,
        tuple((m.name, m.above) for m in sample.metrics),
        tuple((c.type, c.status) for c in sample.conditions),
    )


def autoscaler_attributes(sample: AutoscalerSample, at_s: float) -> dict[str, AttributeValue]:
    """An `autoscaler.decision` event's attributes: `desired`, `current`, `at_s`, `metrics`
    (their names), and per metric `metric.<name>.value`, `.target`, `.target_kind`, `.above`
    (and `.active` for a KEDA trigger); `conditions` as `Type=Status (Reason)`."""
    attributes: dict[str, AttributeValue | None] = {
        "desired": sample.desired,
        "current": sample.current,
        "at_s": round(at_s, 3),
        "metrics": tuple(m.name for m in sample.metrics) or None,
        "conditions": tuple(
            f"{c.type}={c.status}" + (f" ({c.reason})" if c.reason else "")
            for c in sample.conditions
        )
        or None,
    }
    for m in sample.metrics:
        key = f"metric.{m.name}"
        attributes[f"{key}.value"] = m.current
        attributes[f"{key}.target"] = m.target
        attributes[f"{key}.target_kind"] = str(m.target_kind)
        attributes[f"{key}.above"] = m.above
        attributes[f"{key}.active"] = m.active
    return _known(attributes)


def scale_event_attributes(event: ScaleEvent, *, pods_watched: bool) -> dict[str, AttributeValue]:
    """A `scale_event` event's attributes: the rise, each step's run offset (those seen), the
    reaction, the pods' start-ups and the breakdown as a sentence (`summary`)."""
    return _known(
        {
            "from": event.from_replicas,
            "to": event.to_replicas,
            "decided_s": event.decided_s,
            "load_change": event.load_change,
            "load_change_s": event.load_change_s,
            "reaction_s": None if event.reaction_s is None else round(event.reaction_s, 3),
            "metric": event.metric,
            "metric_value": event.metric_value,
            "metric_target": event.metric_target,
            "metric_above_s": event.metric_above_s,
            "pods_created_s": event.pods_created_s,
            "ready_s": event.ready_s,
            "pod_startups_s": event.pod_startups_s or None,
            "summary": describe_event(event, pods_watched=pods_watched),
        }
    )


class RunSpans(RunHandler):
    """The root and phase spans of one traced run, and the events on them."""

    def __init__(
        self,
        tracer: Tracer,
        plan: Plan,
        *,
        url: str | None,
        run_id: str,
        wall: WallTime,
        ids: PlannedIds | None = None,
    ) -> None:
        self.tracer = tracer
        self._ids = ids
        self.planned_ids: dict[str, int] = (
            {phase.name: ids.draw() for phase in plan.phases} if ids is not None else {}
        )
        """Each phase's span id, drawn now (empty without `ids`: drawn when the span starts)."""
        self.scenario = plan.scenario
        self.run_id = run_id
        self.wall = wall
        target = mask_url(url) if url else None
        root_span = tracer.start_span(
            f"scenario {plan.scenario}",
            kind=SpanKind.INTERNAL,
            attributes=_known(
                {
                    "nimbus.scenario": plan.scenario,
                    "nimbus.run_id": run_id,
                    "nimbus.trace_sample": plan.settings.trace_sample,
                    "nimbus.planned_duration_s": plan.duration_s,
                    "nimbus.target": target,
                }
            ),
            start_time=wall.now_ns(),
        )
        self.root = ParentSpan("", root_span)
        self.trace_hex = f"{self.root.context.trace_id:032x}"
        """The run's trace id as 32 hex digits."""
        self._phases: dict[str, ParentSpan] = {}
        self._current: ParentSpan | None = None
        self._decided: set[tuple[str, str]] = set()
        self._autoscaler: _Decision | None = None
        self._ended = False
        self.ending: RunHandler = _SpanEnds(self)
        """The handler that ends spans: telemetry hears it after the log lines."""
        ctx = run_context.current()
        ctx.trace_id = self.trace_hex
        ctx.span_id = self.root.span_hex

    # ------------------------------------------------------------------ for requests and logs
    def parent(self, phase: str) -> ParentSpan:
        """The span a request of `phase` hangs under: the phase's, else the root."""
        return self._phases.get(phase) or self.root

    def current(self) -> ParentSpan:
        """The span a log record hangs under: the running phase's, else the root."""
        return self._current or self.root

    # ------------------------------------------------------------------ events
    def _event(
        self, name: str, attributes: Mapping[str, AttributeValue | None], *, root: bool = False
    ) -> None:
        if self._ended:
            return
        span = self.root.span if root else self.current().span
        span.add_event(name, _known(attributes), timestamp=self.wall.now_ns())

    def run_started(self, plan: Plan, run_id: str) -> None:
        """Adopt the runner's run id (if it differs); a span event `run_started` on the root."""
        if run_id and run_id != self.run_id:
            self.run_id = run_id
            self.root.span.set_attribute("nimbus.run_id", run_id)
        ctx = run_context.current()
        ctx.run_id = self.run_id
        ctx.scenario = self.scenario
        self._event("run_started", {"run_id": self.run_id}, root=True)

    def stage_started(self, stage: Stage) -> None:
        """A span event `stage_started` on the root span."""
        self._event("stage_started", {"stage": str(stage)}, root=True)

    def phase_started(self, phase: PhasePlan, at_s: float) -> None:
        """Start the phase's span (a child of the root); log lines now carry its id."""
        if self._ended:
            return
        if self._ids is not None:
            self._ids.use_next(self.planned_ids.get(phase.name))
        span = self.tracer.start_span(
            f"phase {phase.name}",
            context=self.root.log_context,
            kind=SpanKind.INTERNAL,
            attributes=_known(
                {
                    "nimbus.scenario": self.scenario,
                    "nimbus.run_id": self.run_id,
                    "nimbus.phase": phase.name,
                    "nimbus.phase.index": phase.index,
                    "nimbus.phase.shape": phase.shape_text,
                    "nimbus.phase.start_s": round(at_s, 3),
                    "nimbus.phase.planned_duration_s": phase.duration_s,
                    "nimbus.phase.scheduled": phase.scheduled_total,
                }
            ),
            start_time=self.wall.now_ns(),
        )
        if self._ids is not None:
            self._ids.use_next(None)  # never left for another span
        state = ParentSpan(phase.name, span)
        self._phases[phase.name] = state
        self._current = state
        ctx = run_context.current()
        ctx.phase = phase.name
        ctx.span_id = state.span_hex

    def replica_sample(self, sample: ReplicaSample, at_s: float) -> None:
        """A span event `replicas` (on the phase span, else the root)."""
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

    def autoscaler_changed(self, sample: AutoscalerSample, at_s: float) -> None:
        """A span event `autoscaler.decision` (on the phase span, else the root) when the
        decision changed: desired or current replicas, a metric crossing its target, or a
        condition's status (a new value alone is not a decision)."""
        decision = _decision_of(sample)
        if decision == self._autoscaler:
            return
        self._autoscaler = decision
        self._event("autoscaler.decision", autoscaler_attributes(sample, at_s))

    def pod_changed(self, pod: PodRecord, change: PodChange, at_s: float) -> None:
        """A span event `pod.created`, `pod.ready` (with `startup_s`), `pod.restarted` (with
        `restarts` and the last `termination` reason) or `pod.deleted`, on the phase span, else
        the root."""
        ready = change is PodChange.READY
        restarted = change is PodChange.RESTARTED
        startup = pod.startup_s if ready else None
        self._event(
            f"pod.{change}",
            {
                "pod": pod.name,
                "at_s": round(at_s, 3),
                "startup_s": None if startup is None else round(startup, 3),
                "restarts": pod.restarts if restarted else None,
                "termination": pod.terminations[-1] if restarted and pod.terminations else None,
            },
        )

    def pods_killed(self, names: Sequence[str], at_s: float) -> None:
        """A span event `pods_killed` (on the phase span, else the root)."""
        self._event("pods_killed", {"pods": tuple(names), "count": len(names), "at_s": at_s})

    def expectation_decided(self, judgement: Judgement, at_s: float | None) -> None:
        """A span event `expectation_decided` on the root span."""
        self._decision(judgement, None if at_s is None else round(at_s, 3))

    def _decision(self, judgement: Judgement, at_s: float | None) -> None:
        e = judgement.expectation
        self._decided.add((e.scope, e.text))
        self._event(
            "expectation_decided",
            {
                "expectation": e.text,
                "scope": e.scope,
                "verdict": str(judgement.verdict),
                "observed": judgement.observed,
                "detail": judgement.detail or None,
                "at_s": at_s,
            },
            root=True,
        )

    def aborted(self, reason: str, at_s: float) -> None:
        """A span event `aborted` on the root span and on the running phase's."""
        attributes: dict[str, AttributeValue] = {"reason": reason, "at_s": round(at_s, 3)}
        if self._current is not None and not self._current.ended:
            self._current.span.add_event("aborted", attributes, timestamp=self.wall.now_ns())
        self._event("aborted", attributes, root=True)

    # ------------------------------------------------------------------ endings

    def end_phase(self, phase: PhasePlan, at_s: float) -> None:
        """End the phase's span; log lines carry the root's id again."""
        state = self._phases.get(phase.name)
        if state is None or state.ended:
            return
        state.span.set_attribute("nimbus.phase.end_s", round(at_s, 3))
        state.span.end(end_time=self.wall.now_ns())
        state.ended = True
        if self._current is state:
            self._current = None
            run_context.current().span_id = self.root.span_hex

    def end_run(self, results: RunResults) -> None:
        """Verdicts not decided yet as events, the run's verdict as attributes; end every span."""
        if self._ended:
            return
        for judgement in results.expectations:
            e = judgement.expectation
            if (e.scope, e.text) not in self._decided:
                self._decision(judgement, None)  # decided at the end: no moment
        scaling = results.scaling
        if scaling is not None:
            for event in scaling.events:
                attributes = scale_event_attributes(event, pods_watched=scaling.pods_watched)
                self._event("scale_event", attributes, root=True)
        totals = results.totals
        root = self.root.span
        root.set_attributes(
            {
                "nimbus.verdict": str(results.verdict),
                "nimbus.exit_code": int(results.exit_code),
                "nimbus.sent": totals.sent,
                "nimbus.succeeded": totals.succeeded,
                "nimbus.failed": totals.failed,
                "nimbus.dropped": totals.dropped,
            }
        )
        if results.verdict is not RunVerdict.PASSED:
            root.set_status(Status(StatusCode.ERROR, results.error or str(results.verdict)))
        self.end_spans()

    def end_spans(self, *, incomplete: bool = False) -> None:
        """End open phase spans and the root span (at shutdown after a crash: marked incomplete)."""
        if self._ended:
            return
        end_ns = self.wall.now_ns()
        for state in self._phases.values():
            if not state.ended:
                if incomplete:
                    state.span.set_attribute(_INCOMPLETE, True)
                state.span.end(end_time=end_ns)
                state.ended = True
        self._current = None
        if incomplete:
            self.root.span.set_attribute(_INCOMPLETE, True)
        self.root.span.end(end_time=end_ns)
        self._ended = True


class _SpanEnds(RunHandler):
    """`RunSpans`' endings, as a handler of their own: telemetry puts it after the log lines."""

    def __init__(self, spans: RunSpans) -> None:
        self._spans = spans

    def phase_ended(self, phase: PhasePlan, at_s: float) -> None:
        """End the phase's span."""
        self._spans.end_phase(phase, at_s)

    def run_ended(self, results: RunResults) -> None:
        """End the run's spans."""
        self._spans.end_run(results)

"""Structured logs with structlog: JSON lines off a TTY, readable console lines on one.

Configure once with `configure_logging()`. Every line carries the run id, the scenario, the phase
and (while tracing is on) the run's trace id and the current phase's (or the root's) span id,
added by `add_run_context` from the process-wide `RunContext`; anything bound with
`structlog.contextvars.bind_contextvars` is merged in too. When telemetry runs, the same records
also go out as OTLP logs (`forward_to_sink` hands them to the sink telemetry registers).

Events are names, not sentences: ``log.info("phase_started", phase="warmup", target_rate=5.0)``.
`LoggingHandler` logs the run's events that way, and a `progress` line for every progress event.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from nimbus_scenarios.events import PodChange, Progress, RunHandler, WindowState
from nimbus_scenarios.results.model import RunVerdict, Stage, Verdict
from nimbus_scenarios.scaling_words import describe_event, metric_text
from nimbus_scenarios.telemetry.context import current

if TYPE_CHECKING:
    from nimbus_scenarios.plan.model import PhasePlan, Plan
    from nimbus_scenarios.replicas import ReplicaSample
    from nimbus_scenarios.results.model import Judgement, RunResults
    from nimbus_scenarios.scaling import AutoscalerSample, PodRecord, ScalingRecord

__all__ = [
    "LoggingHandler",
    "add_run_context",
    "configure_logging",
    "ensure_logging",
    "forward_to_sink",
    "get_logger",
]

LOGGER_NAME = "nimbus_scenarios"
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def add_run_context(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Add run_id, scenario, phase, trace_id and span_id where known and not given explicitly."""
    ctx = current()
    for key, value in (
        ("run_id", ctx.run_id),
        ("scenario", ctx.scenario),
        ("phase", ctx.phase),
        ("trace_id", ctx.trace_id),
        ("span_id", ctx.span_id),
    ):
        if value is not None and key not in event_dict:
            event_dict[key] = value
    return event_dict


def forward_to_sink(_logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Hand the record to the registered sink (OTLP logs); a failing sink is ignored."""
    sink = current().sink
    if sink is not None:
        level = str(event_dict.get("level", method))
        try:
            sink(level, str(event_dict.get("event", "")), event_dict)
        except Exception:  # telemetry never breaks a log line, let alone a run
            return event_dict
    return event_dict


def configure_logging(
    *,
    level: str = "info",
    stream: TextIO | None = None,
    json: bool | None = None,
) -> None:
    """Configure structlog for the process: JSON lines when `stream` is not a TTY.

    `stream` defaults to stdout (what Alloy tails into Loki); `json` forces a renderer. Lines
    below `level` (debug, info, warning, error) are dropped before any processing.
    """
    out = sys.stdout if stream is None else stream
    tty = _isatty(out)
    as_json = not tty if json is None else json
    tail: list[Processor]
    if as_json:
        tail = [
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(default=str),
        ]
    else:
        tail = [structlog.dev.ConsoleRenderer(colors=tty)]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_run_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            forward_to_sink,
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level.lower(), 20)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def get_logger() -> FilteringBoundLogger:
    """The project's structlog logger (a filtering bound logger, as `configure_logging` sets)."""
    logger: FilteringBoundLogger = structlog.get_logger(LOGGER_NAME)
    return logger


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _known(**fields: object) -> dict[str, object]:
    """The fields that have a value (a line shows what is known, not a row of None)."""
    return {key: value for key, value in fields.items() if value is not None}


def ensure_logging() -> None:
    """`configure_logging()` with its defaults unless structlog was configured already."""
    if not structlog.is_configured():
        configure_logging()


class LoggingHandler(RunHandler):
    """Logs a run's events as structured lines (and keeps the run context of every line)."""

    def __init__(self, logger: FilteringBoundLogger | None = None) -> None:
        self.log = get_logger() if logger is None else logger
        self._logged: set[tuple[str, str]] = set()

    def run_started(self, plan: Plan, run_id: str) -> None:
        """Log `run_started` and make the run id and scenario part of every line."""
        ctx = current()
        ctx.run_id = run_id
        ctx.scenario = plan.scenario
        self._logged.clear()
        self.log.info(
            "run_started",
            run_id=run_id,
            scenario=plan.scenario,
            phases=[p.name for p in plan.phases],
            planned_duration_s=_r(plan.duration_s),
            scheduled=plan.scheduled_total,
            trace_sample=plan.settings.trace_sample,
        )

    def stage_started(self, stage: Stage) -> None:
        """Log `stage_started`."""
        self.log.info("stage_started", stage=stage)

    def phase_started(self, phase: PhasePlan, at_s: float) -> None:
        """Log `phase_started` with the phase's shape and target; the phase joins every line."""
        current().phase = phase.name
        self.log.info(
            "phase_started",
            **_known(
                phase=phase.name,
                at_s=_r(at_s),
                shape=phase.shape_text,
                duration_s=_r(phase.duration_s),
                target_rate=_r(phase.rate_at(phase.start_s)) if phase.open_model else None,
                users=phase.users if not phase.open_model else None,
                scheduled=phase.scheduled_total,
            ),
        )

    def phase_ended(self, phase: PhasePlan, at_s: float) -> None:
        """Log `phase_ended`; lines after it carry no phase."""
        self.log.info("phase_ended", phase=phase.name, at_s=_r(at_s))
        ctx = current()
        if ctx.phase == phase.name:
            ctx.phase = None

    def replica_sample(self, sample: ReplicaSample, at_s: float) -> None:
        """Log `replicas_changed`."""
        self.log.info(
            "replicas_changed",
            **_known(
                ready=sample.ready,
                desired=sample.desired,
                current=sample.current,
                autoscaler=sample.autoscaler,
                at_s=_r(at_s),
            ),
        )

    def autoscaler_changed(self, sample: AutoscalerSample, at_s: float) -> None:
        """Log `autoscaler_changed`: desired and current replicas, each metric (name, target
        kind, value, target, above, and a KEDA trigger's activity) and the conditions."""
        self.log.info(
            "autoscaler_changed",
            **_known(
                desired=sample.desired,
                current=sample.current,
                metrics=[
                    _known(
                        name=m.name,
                        target_kind=str(m.target_kind),
                        value=m.current,
                        target=m.target,
                        above=m.above,
                        active=m.active,
                    )
                    for m in sample.metrics
                ]
                or None,
                conditions=[
                    _known(type=c.type, status=c.status, reason=c.reason or None)
                    for c in sample.conditions
                ]
                or None,
                at_s=_r(at_s),
            ),
        )

    def pod_changed(self, pod: PodRecord, change: PodChange, at_s: float) -> None:
        """Log `pod_created`, `pod_ready` (with `startup_s`), `pod_restarted` (a warning, with
        `restarts` and the `terminations` seen) or `pod_deleted`."""
        restarted = change is PodChange.RESTARTED
        log = self.log.warning if restarted else self.log.info
        log(
            f"pod_{change}",
            **_known(
                pod=pod.name,
                at_s=_r(at_s),
                startup_s=_r(pod.startup_s) if change is PodChange.READY else None,
                restarts=pod.restarts if restarted else None,
                terminations=list(pod.terminations) if restarted and pod.terminations else None,
            ),
        )

    def pods_killed(self, names: Sequence[str], at_s: float) -> None:
        """Log `pods_killed`."""
        self.log.warning("pods_killed", count=len(names), pods=list(names), at_s=_r(at_s))

    def expectation_decided(self, judgement: Judgement, at_s: float | None) -> None:
        """Log `expectation_decided` (before/after expectations, as they are decided)."""
        e = judgement.expectation
        self._logged.add((e.scope, e.text))
        log = self.log.warning if judgement.verdict is Verdict.FAILED else self.log.info
        log(
            "expectation_decided",
            **_known(
                expectation=e.text,
                scope=e.scope,
                verdict=str(judgement.verdict),
                observed=judgement.observed,
                detail=judgement.detail or None,
                at_s=_r(at_s),
            ),
        )

    def aborted(self, reason: str, at_s: float) -> None:
        """Log `run_aborted`."""
        self.log.warning("run_aborted", reason=reason, at_s=_r(at_s))

    def progress(self, status: Progress) -> None:
        """Log a `progress` line with the live status (window states counted, the autoscaler's
        metrics against their targets as `metrics`: `["rps per replica 7.2/5"]`)."""
        fields: dict[str, object] = {
            "stage": str(status.stage),
            "phase": status.phase,
            "elapsed_s": round(status.elapsed_s, 3),
            "remaining_s": round(status.remaining_s, 3),
            "target_rate": round(status.target_rate, 3),
            "achieved_rate": status.achieved_rate,
            "in_flight": status.in_flight,
            "p95_ms": None if status.p95_ms is None else round(status.p95_ms, 3),
            "sent": status.sent,
            "dropped": status.dropped,
            "errors_pct": round(status.errors_pct, 3),
            "ready": status.ready,
            "desired": status.desired,
            "metrics": [metric_text(m) for m in status.metrics] or None,
        }
        for state in (WindowState.PASSED, WindowState.FAILED, WindowState.OPEN):
            fields[f"expectations_{state}"] = status.count(state)
        fields["expectations_waiting"] = status.count(WindowState.WAITING)
        self.log.info("progress", **_known(**fields))

    def _scale_events(self, scaling: ScalingRecord) -> None:
        for event in scaling.events:
            self.log.info(
                "scale_event",
                **_known(
                    from_replicas=event.from_replicas,
                    to_replicas=event.to_replicas,
                    decided_s=event.decided_s,
                    load_change=event.load_change,
                    load_change_s=event.load_change_s,
                    reaction_s=_r(event.reaction_s),
                    metric=event.metric,
                    metric_value=event.metric_value,
                    metric_target=event.metric_target,
                    metric_above_s=event.metric_above_s,
                    pods_created_s=event.pods_created_s,
                    ready_s=event.ready_s,
                    pod_startups_s=list(event.pod_startups_s) or None,
                    summary=describe_event(event, pods_watched=scaling.pods_watched),
                ),
            )
        for note in scaling.notes:
            self.log.info("scaling_note", note=note)

    def run_ended(self, results: RunResults) -> None:
        """Log every verdict not logged yet, a `scale_event` line per scale event (and a
        `scaling_note` per note on what is missing), then `run_ended` with the run's
        verdict."""
        for j in results.expectations:
            e = j.expectation
            if (e.scope, e.text) in self._logged:
                continue
            log = self.log.warning if j.verdict is Verdict.FAILED else self.log.info
            log(
                "expectation_decided",
                **_known(
                    expectation=e.text,
                    scope=e.scope,
                    verdict=str(j.verdict),
                    observed=j.observed,
                    detail=j.detail or None,
                    at_s=j.met_at_s,
                ),
            )
        if results.scaling is not None:
            self._scale_events(results.scaling)
        totals = results.totals
        fields = _known(
            verdict=str(results.verdict),
            exit_code=int(results.exit_code),
            duration_s=results.duration_s,
            sent=totals.sent,
            succeeded=totals.succeeded,
            failed=totals.failed,
            dropped=totals.dropped,
        )
        if results.error:
            fields["error"] = results.error
        if results.abort is not None:
            fields["abort_reason"] = results.abort.reason
        if results.trace_id:
            fields["trace_id"] = results.trace_id
        verdict = results.verdict
        if verdict is RunVerdict.PASSED:
            self.log.info("run_ended", **fields)
        elif verdict is RunVerdict.ERROR:
            self.log.error("run_ended", **fields)
        else:  # failed or aborted
            self.log.warning("run_ended", **fields)

"""The HTML report's "Scale events" section, as data: `scale_events(record)` turns the results'
`scaling` section into rows the template lays out, every value formatted for people.

Each scale event is a row of its steps in order (the load change, the first metric above its
target, the decision, the first new pod created, ready replicas reaching the new count), each
with its run offset and how long after the step before it (the last step seen) it came; then the
new pods' start-up times, and what is missing from the breakdown and why. The section's notes
are the record's own (why part of it is missing: no permission to watch pods, no autoscaler).

Its place: beside `report.page`, which puts the section into the `Page`.
"""

from __future__ import annotations

from dataclasses import dataclass

from nimbus_scenarios.report._format import DASH, duration, offset
from nimbus_scenarios.scaling import ScaleEvent, ScalingRecord

__all__ = ["EventStep", "ScaleEventRow", "ScalingSection", "scale_events"]


@dataclass(frozen=True, slots=True)
class EventStep:
    """One step of a scale event: what happened (`what`), when (`at`, a run offset, or a dash
    when it was not seen) and how long after the step before it (`after`; empty for the
    first step seen and for a step not seen)."""

    label: str
    what: str
    at: str
    after: str
    seen: bool


@dataclass(frozen=True, slots=True)
class ScaleEventRow:
    """A scale event: the change of desired replicas, its steps, the reaction (load change to
    decision) and the whole (load change, or decision, to ready), the pods' start-ups, and what
    is missing."""

    change: str
    steps: tuple[EventStep, ...]
    reaction: str
    total: str
    startups: str
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScalingSection:
    """The section: a line saying what was recorded, the events, the notes."""

    summary: str
    events: tuple[ScaleEventRow, ...]
    notes: tuple[str, ...]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _value(value: float | None) -> str:
    return DASH if value is None else f"{value:g}"


def _steps(event: ScaleEvent) -> tuple[EventStep, ...]:
    metric = DASH
    if event.metric is not None:
        metric = f"{event.metric} {_value(event.metric_value)} > {_value(event.metric_target)}"
    moments: list[tuple[str, str, float | None]] = [
        ("load change", event.load_change or DASH, event.load_change_s),
        ("metric above target", metric, event.metric_above_s),
        ("decision", f"desired {event.from_replicas} \u2192 {event.to_replicas}", event.decided_s),
        ("pods created", "first new pod created", event.pods_created_s),
        ("ready", f"{event.to_replicas} ready", event.ready_s),
    ]
    steps = []
    previous: float | None = None
    for label, what, at in moments:
        if at is None:
            steps.append(EventStep(label, what, DASH, "", seen=False))
            continue
        after = "" if previous is None else f"{duration(at - previous)} later"
        steps.append(EventStep(label, what, offset(at), after, seen=True))
        previous = at
    return tuple(steps)


def _missing(event: ScaleEvent, record: ScalingRecord) -> tuple[str, ...]:
    missing = []
    if event.load_change_s is None:
        missing.append("no change of load came before it")
    if event.metric_above_s is None:
        missing.append(
            "no metric above its target was seen before the decision"
            if record.autoscaler
            else "the autoscaler's metrics were not recorded"
        )
    if event.pods_created_s is None:
        missing.append("no new pod was seen" if record.pods_watched else "pods were not watched")
    if event.ready_s is None:
        missing.append(f"ready replicas did not reach {event.to_replicas} during the run")
    return tuple(missing)


def _row(event: ScaleEvent, record: ScalingRecord) -> ScaleEventRow:
    change = event.to_replicas - event.from_replicas
    sign = "+" if change >= 0 else ""
    start = event.load_change_s if event.load_change_s is not None else event.decided_s
    total = DASH if event.ready_s is None else duration(event.ready_s - start)
    reaction = event.reaction_s
    return ScaleEventRow(
        change=f"{sign}{change} desired ({event.from_replicas} \u2192 {event.to_replicas})",
        steps=_steps(event),
        reaction=DASH if reaction is None else duration(reaction),
        total=total,
        startups=", ".join(duration(s) for s in event.pod_startups_s) or DASH,
        missing=_missing(event, record),
    )


def scale_events(record: ScalingRecord | None) -> ScalingSection | None:
    """The section for the results' `scaling` section (None: the document has none)."""
    if record is None:
        return None
    watched = (
        f"{_plural(len(record.pods), 'pod')} watched" if record.pods_watched else "pods not watched"
    )
    summary = (
        f"{_plural(len(record.events), 'scale event')}; "
        f"{_plural(len(record.autoscaler), 'autoscaler sample')} recorded; {watched}"
    )
    return ScalingSection(
        summary=summary,
        events=tuple(_row(e, record) for e in record.events),
        notes=record.notes,
    )

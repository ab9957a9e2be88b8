"""A `Plan` as JSON (for other tools), as a table with an ASCII rate chart (for people), and the
warnings a plan deserves (memory in flight). Reads only the plan.

Both forms are shown to people and kept in CI logs: credential values are masked (`Text.shown`),
and so is every password written in a URL (`http://user:***@host`), wherever it is (the target,
a param, a path's query, a header value, a body).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, fields

from nimbus_scenarios.language.vocabulary import MEMORY_IN_FLIGHT_CEILING_MB
from nimbus_scenarios.plan.model import ExpectationPlan, PhasePlan, Plan, Template, Text
from nimbus_scenarios.secrets import mask_urls_in_text

__all__ = [
    "MEMORY_WARN_MB",
    "memory_in_flight_mb",
    "memory_refusal",
    "plan_json",
    "plan_table",
    "plan_warnings",
    "rate_chart",
]

MEMORY_WARN_MB = 1024
"""Planned stress memory in flight above this (one consumer pod's limit) earns a warning."""


def plan_json(plan: Plan, warnings: Sequence[str] | None = None) -> dict[str, object]:
    """The plan as plain JSON data; secrets are masked. `warnings` is every warning about the
    scenario (`pipeline.Compiled.warning_texts`); without it, the plan's own."""
    data = _plan_data(plan, plan_warnings(plan) if warnings is None else list(warnings))
    masked = _mask_urls(data)
    assert isinstance(masked, dict)
    return masked


def _mask_urls(value: object) -> object:
    """JSON data with a password in any URL in any string (key or value) masked."""
    if isinstance(value, str):
        return mask_urls_in_text(value)
    if isinstance(value, dict):
        return {_mask_urls(k): _mask_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_urls(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_mask_urls(item) for item in value)
    return value


def _plan_data(plan: Plan, warnings: list[str]) -> dict[str, object]:
    return {
        "scenario": plan.scenario,
        "description": plan.description,
        "duration_s": _r(plan.duration_s),
        "phases_end_s": _r(plan.phases_end_s),
        "scheduled_total": plan.scheduled_total,
        "target": plan.target.shown() if plan.target else None,
        "watch": (
            {"deployment": plan.deployment, "namespace": plan.namespace}
            if plan.deployment
            else None
        ),
        "max_rate": plan.max_rate,
        "params": dict(plan.params),
        "settings": {
            "timeout_s": plan.settings.timeout_s,
            "max_inflight": plan.settings.max_inflight,
            "connection_max_age_s": plan.settings.connection_max_age_s,
            "trace_sample": plan.settings.trace_sample,
            "stress_path": plan.settings.stress_path,
            "headers": {k: v.shown() for k, v in plan.settings.headers},
            # Only when declared, so that plans without it print as they always did.
            **(
                {"memory_in_flight_mb": _r(plan.settings.memory_in_flight_mb)}
                if plan.settings.memory_in_flight_mb is not None
                else {}
            ),
        },
        "templates": {name: _template(t) for name, t in plan.templates.items()},
        "phases": [_phase(p) for p in plan.phases],
        "before": [_expectation(e) for e in plan.before],
        "after": [_expectation(e) for e in plan.after],
        "expectations": [_expectation(e) for e in plan.expectations],
        "guards": [asdict(g) for g in plan.guards],
        "cleanup": [asdict(c) for c in plan.cleanup],
        "peak_memory_in_flight_mb": _r(memory_in_flight_mb(plan)),
        "warnings": warnings,
    }


def _r(value: float) -> float:
    return round(value, 6)


def _shown(pairs: tuple[tuple[str, Text], ...]) -> dict[str, str]:
    return {k: v.shown() for k, v in pairs}


def _template(t: Template) -> dict[str, object]:
    return {
        "method": t.method,
        "path": t.path,
        "query": _shown(t.query),
        "headers": _shown(t.headers),
        "body": t.body.shown() if t.body else None,
        "ok_status": list(t.ok_status),
        "stress": asdict(t.stress) if t.stress else None,
    }


def _phase(p: PhasePlan) -> dict[str, object]:
    data: dict[str, object] = {
        "name": p.name,
        "start_s": _r(p.start_s),
        "end_s": _r(p.end_s),
        "shape": p.shape,
        "shape_text": p.shape_text,
        "spikes": list(p.spikes),
        "mix": dict(p.mix),
        "scheduled": dict(p.scheduled) if p.scheduled is not None else None,
        "scheduled_total": p.scheduled_total,
        "segments": [
            {
                "start_s": _r(s.start_s),
                "end_s": _r(s.end_s),
                "rate_start": _r(s.rate_start),
                "rate_end": _r(s.rate_end),
                "first": s.first,
                "count": s.count,
            }
            for s in p.segments
        ],
        "expectations": [_expectation(e) for e in p.expectations],
        "kills": [asdict(k) for k in p.kills],
    }
    if p.shape == "burst":
        data["burst"] = {"size": p.burst_size, "every_s": p.burst_every_s, "count": p.burst_count}
    if p.shape == "users":
        data["users"] = {"count": p.users, "think_s": p.think_s}
    return data


_EXPECTATION_FIELDS = tuple(f.name for f in fields(ExpectationPlan))


def _expectation(e: ExpectationPlan) -> dict[str, object]:
    # Every field is a plain value (text, enum, number), so no `asdict` deep copy is needed:
    # it made a plan of many expectations several times slower to print.
    pairs = ((name, getattr(e, name)) for name in _EXPECTATION_FIELDS)
    return {name: value for name, value in pairs if value is not None}


# ---------------------------------------------------------------- warnings


def memory_in_flight_mb(plan: Plan) -> float:
    """Peak stress memory held at once, by Little's law: rate x hold time x size, per phase."""
    peak = 0.0
    for phase in plan.phases:
        per_request = 0.0  # MB-seconds of memory hold per arrival, averaged over the mix
        total_weight = sum(w for _, w in phase.mix) or 1.0
        for name, weight in phase.mix:
            spec = plan.templates[name].stress if name in plan.templates else None
            if spec is not None:
                per_request += weight / total_weight * spec.memory_mb * spec.duration_s
        if per_request == 0.0:
            continue
        if phase.shape == "users":
            held = per_request / max((_mean_duration(plan, phase) + phase.think_s), 1e-9)
            peak = max(peak, phase.users * held)
        elif phase.shape == "burst":
            peak = max(peak, phase.burst_size * per_request / max(phase.burst_every_s, 1e-9))
            peak = max(peak, phase.burst_size * _max_memory(plan, phase))
        else:
            top = max((max(s.rate_start, s.rate_end) for s in phase.segments), default=0.0)
            peak = max(peak, top * per_request)
    return peak


def _mean_duration(plan: Plan, phase: PhasePlan) -> float:
    total = sum(w for _, w in phase.mix) or 1.0
    result = 0.0
    for name, weight in phase.mix:
        spec = plan.templates[name].stress
        result += weight / total * (2 * spec.duration_s if spec and not spec.async_mode else 0.01)
    return result


def _max_memory(plan: Plan, phase: PhasePlan) -> float:
    sizes = [plan.templates[name].stress for name, _ in phase.mix]
    return max((s.memory_mb for s in sizes if s is not None), default=0.0)


def memory_refusal(plan: Plan, *, i_know: bool = False) -> str | None:
    """Why `run` refuses this plan's stress memory in flight, if it does: above the ceiling,
    unless `--i-know` is given or the scenario declares at least as much."""
    memory = memory_in_flight_mb(plan)
    declared = plan.settings.memory_in_flight_mb
    if i_know or memory <= MEMORY_IN_FLIGHT_CEILING_MB:
        return None
    if declared is not None and memory <= declared:
        return None
    return (
        f"stress requests plan about {_size(memory)} of memory in flight at peak (rate x hold "
        f"time x size), above the {_size(MEMORY_IN_FLIGHT_CEILING_MB)} a run takes unasked; "
        "if that is what you mean, pass --i-know or declare it in the scenario with "
        f"`settings {{ memory_in_flight {_size_literal(memory)} }}`"
    )


def _size(megabytes: float) -> str:
    if megabytes >= 1024 * 1024:
        return f"{megabytes / 1024 / 1024:.1f} TiB"
    return f"{megabytes / 1024:.1f} GiB"


def _size_literal(megabytes: float) -> str:
    """A size literal at least `megabytes` large, in whole gigabytes."""
    return f"{math.ceil(megabytes / 1024)}GB"


def plan_warnings(plan: Plan, *, target_given: bool = False) -> list[str]:
    """Things about a valid plan that a user should hear before running it (`target_given`:
    the run has its target from `--url`, so a scenario without one is no news)."""
    warnings = []
    memory = memory_in_flight_mb(plan)
    declared = plan.settings.memory_in_flight_mb
    if memory > MEMORY_WARN_MB and (declared is None or memory > declared):
        warnings.append(
            f"stress requests plan about {memory / 1024:.1f} GiB of memory in flight at peak "
            f"(rate x hold time x size); a consumer pod is limited to 1 GiB, so pods may be "
            "OOM-killed rather than scaled"
        )
    if plan.target is None and not target_given:
        warnings.append("no `target`: give one in the scenario or with --url when you run it")
    return warnings


# ---------------------------------------------------------------- people


def clock_text(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _requests(p: PhasePlan) -> str:
    if p.scheduled_total is None:
        return f"closed ({p.users} users)"
    if not p.scheduled:
        return "0"
    parts = ", ".join(f"{count} {name}" for name, count in p.scheduled.items())
    return (
        f"{p.scheduled_total} ({parts})"
        if len(p.scheduled) > 1
        else f"{p.scheduled_total} {parts.split(' ', 1)[1]}"
    )


def plan_table(plan: Plan, warnings: Sequence[str] | None = None) -> str:
    """The plan for people: phases with offsets, shapes, requests and windows, totals, a chart,
    and the warnings (`warnings` as for `plan_json`)."""
    lines = [f'scenario "{plan.scenario}"' + (f": {plan.description}" if plan.description else "")]
    if plan.target:
        lines.append(f"target   {plan.target.shown()}")
    if plan.deployment:
        lines.append(
            f"watch    deployment {plan.deployment} in {plan.namespace or '(default namespace)'}"
        )
    if plan.params:
        lines.append("params   " + ", ".join(f"{k}={v}" for k, v in plan.params.items()))
    lines.append(f"rate cap {plan.max_rate:g}/s per process (--max-rate)")
    lines.append("")
    rows = [("#", "phase", "start", "end", "shape", "requests", "expectations")]
    for p in plan.phases:
        shape = p.shape_text + "".join(f"; {s}" for s in p.spikes)
        expectations = "; ".join(_window(e) for e in p.expectations) or "-"
        rows.append(
            (
                str(p.index + 1),
                p.name,
                clock_text(p.start_s),
                clock_text(p.end_s),
                shape,
                _requests(p),
                expectations,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    total = plan.scheduled_total
    scheduled = (
        f"{total:,} requests scheduled"
        if total is not None
        else (
            f"{sum(p.scheduled_total or 0 for p in plan.phases):,} requests scheduled in "
            "open-model "
            "phases, plus closed-model users"
        )
    )
    lines.append(
        f"total: {clock_text(plan.phases_end_s)} of phases"
        + (
            f", {clock_text(plan.duration_s)} with pending replica windows"
            if plan.duration_s > plan.phases_end_s
            else ""
        )
        + f"; {scheduled}"
    )
    for stage, items in (
        ("before", plan.before),
        ("after", plan.after),
        ("scenario", plan.expectations),
    ):
        for e in items:
            lines.append(f"{stage:<9}{_window(e)}")
    for g in plan.guards:
        lines.append(f"guard    {g.text}")
    for c in plan.cleanup:
        lines.append(f"cleanup  send {c.template or f'{c.method} {c.path}'}")
    lines.append("")
    lines.append(rate_chart(plan))
    for warning in plan_warnings(plan) if warnings is None else warnings:
        lines.append(f"warning: {warning}")
    return mask_urls_in_text("\n".join(lines))


def _window(e: ExpectationPlan) -> str:
    watched = e.window == "within" or e.kind in {"reaction", "pod startup"}
    if watched and e.start_s is not None and e.end_s is not None:
        return f"{e.text} [{clock_text(e.start_s)}-{clock_text(e.end_s)}]"
    return e.text


def rate_chart(plan: Plan, width: int = 64, height: int = 8) -> str:
    """Target rate over time as an ASCII chart (bursts shown at their average rate)."""
    span = plan.phases_end_s
    if span <= 0:
        return ""
    samples = []
    for column in range(width):
        lo = span * column / width
        hi = span * (column + 1) / width
        points = [plan.rate_at(lo + (hi - lo) * k / 8) for k in range(8)]
        samples.append(max(points))
    top = max(samples)
    if top <= 0:
        return "target rate: no open-model load"
    rows = []
    for level in range(height, 0, -1):
        threshold = top * (level - 0.5) / height
        label = f"{top * level / height:>7.1f}/s |" if level in {height, 1} else " " * 9 + " |"
        rows.append(label + "".join("#" if s >= threshold else " " for s in samples))
    rows.append(" " * 10 + "+" + "-" * width)
    rows.append(" " * 11 + "0" + clock_text(span).rjust(width - 1))
    return "target rate over time\n" + "\n".join(rows)

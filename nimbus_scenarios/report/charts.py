"""The timeline's charts: a `Timeline` drawn as stacked SVG charts with the kit in `report.svg`,
and the numbers the page's hover read-out needs.

Its place: `report.html` calls `draw(timeline)` and puts what it returns into the page. From the
top: a strip with the phase names and the kill and abort labels; request rate (the planned target
curve, scheduled and sent per second); latency percentiles per second; failed and dropped
requests per second; ready and desired replicas with each replica window's threshold and the
moment it held. When the document has a `scaling` section (`report.scaling_charts`), the replica
chart adds the autoscaler's desired replicas and its decisions, and under it come a chart per
autoscaler metric (value against target) and the pods (a bar each). Phase bands are shaded
across every chart, the part of a phase that did not run is hatched, and kills and the abort
are vertical lines through all of them. With `per_request`, one more chart on the same axis,
for the page's per-request section: each template's p95 per second, one line each (colour and
dash from `request_style`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup

from nimbus_scenarios.report import svg
from nimbus_scenarios.report._format import comparator_symbol, duration, offset
from nimbus_scenarios.report.frame import COLOURS, Chart, frame_chart, strip
from nimbus_scenarios.report.scaling_charts import metric_charts, pod_chart, replica_extras
from nimbus_scenarios.report.svg import LEFT, PLOT, TOP, WIDTH, TimeAxis, ValueAxis
from nimbus_scenarios.report.timeline import SecondPoint, Timeline
from nimbus_scenarios.results.codec import JsonValue
from nimbus_scenarios.results.model import Verdict

__all__ = ["COLOURS", "Chart", "Drawing", "draw", "request_style"]

_REQUEST_STYLES: Final = (
    ("#0969da", ""),
    ("#bf3989", ""),
    ("#1a7f37", ""),
    ("#bc4c00", ""),
    ("#8250df", "6 3"),
    ("#0a7ea4", "6 3"),
    ("#9a6700", "6 3"),
    ("#57606a", "6 3"),
)
_VERDICT_COLOURS: Final = {Verdict.PASSED: "#1a7f37", Verdict.FAILED: "#cf222e"}
_MUTED: Final = "#6e7781"


@dataclass(frozen=True, slots=True)
class Drawing:
    """The timeline as the page shows it: the SVGs from top to bottom, and the hover data."""

    svgs: tuple[Markup, ...]
    hover: dict[str, JsonValue]
    requests: Markup | None = None
    """The per-request latency chart (drawn only when asked for and there are templates)."""


def request_style(index: int) -> tuple[str, str]:
    """The colour and dash of the ``index``-th template's line (solid first, then dashed)."""
    return _REQUEST_STYLES[index % len(_REQUEST_STYLES)]


def _verdict_colour(verdict: Verdict) -> str:
    return _VERDICT_COLOURS.get(verdict, _MUTED)


def _rate_chart(tl: Timeline, axis: TimeAxis) -> Chart:
    rates = [max(r.rate_start, r.rate_end) for r in tl.target]
    rates += [float(max(s.sent, s.scheduled)) for s in tl.seconds]
    scale = ValueAxis(svg.y_ticks(max([*rates, 1.0]) * 1.05))
    target = svg.runs_d(
        (axis.x(r.start), scale.y(r.rate_start), axis.x(r.end), scale.y(r.rate_end))
        for r in tl.target
    )
    body = [svg.stroke(target, COLOURS["target"], width=1.4, dash="5 4", cls="series target")]
    label = "target (planned)" if tl.target_share == 1 else "target (this shard's share)"
    legend = (
        (label, COLOURS["target"], "5 4"),
        ("scheduled", COLOURS["scheduled"], ""),
        ("sent", COLOURS["sent"], ""),
    )
    if not tl.seconds:
        message = "no per-second data"
        return Chart("rate", "Request rate (req/s)", legend, scale, _plain, tuple(body), message)
    for name, width in (("scheduled", 1.6), ("sent", 2.0)):
        d = svg.path_d(
            (axis.x(s.second + 0.5), scale.y(float(getattr(s, name))))
            for s in tl.seconds
            if s.second < axis.end
        )
        body.append(svg.stroke(d, COLOURS[name], width=width, cls=f"series {name}"))
    return Chart("rate", "Request rate (req/s)", legend, scale, _plain, tuple(body))


def _plain(value: float) -> str:
    return f"{value:g}"


def _line(
    seconds: Sequence[SecondPoint], name: str, axis: TimeAxis, scale: ValueAxis
) -> list[tuple[float, float] | None]:
    """The points of one percentile (`name`) per second; a second without a record, or without
    a response, breaks the line."""
    points: list[tuple[float, float] | None] = []
    previous: int | None = None
    for s in seconds:
        value = getattr(s, name)
        if previous is not None and s.second != previous + 1:
            points.append(None)
        previous = s.second
        points.append(None if value is None else (axis.x(s.second + 0.5), scale.y(value)))
    return points


def _latency_chart(tl: Timeline, axis: TimeAxis) -> Chart:
    values = [v for s in tl.seconds for v in (s.p50, s.p95, s.p99) if v is not None]
    scale = ValueAxis(svg.y_ticks(max([*values, 1.0]) * 1.05))
    legend = tuple((name, COLOURS[name], "") for name in ("p50", "p95", "p99"))
    title = "Latency (from the scheduled time, by completion second)"
    if not values:
        return Chart("latency", title, legend, scale, _ms_tick, message="no responses")
    body = []
    for name in ("p99", "p95", "p50"):  # p95 drawn over p99: it is the one usually judged
        width = 2.0 if name == "p95" else 1.5
        points = _line(tl.seconds, name, axis, scale)
        body.append(svg.stroke(svg.path_d(points), COLOURS[name], width=width, cls="series"))
    return Chart("latency", title, legend, scale, _ms_tick, tuple(body))


def _request_chart(tl: Timeline, axis: TimeAxis) -> Chart:
    values = [s.p95 for r in tl.requests for s in r.seconds if s.p95 is not None]
    scale = ValueAxis(svg.y_ticks(max([*values, 1.0]) * 1.05))
    legend = tuple((r.name, *request_style(i)) for i, r in enumerate(tl.requests))
    title = "p95 latency per request (from the scheduled time, by completion second)"
    if not values:
        return Chart("requests", title, legend, scale, _ms_tick, message="no responses")
    body = []
    for i, request in enumerate(tl.requests):
        colour, dash = request_style(i)
        points = _line(request.seconds, "p95", axis, scale)
        label = f"{request.name}: p95 latency per second, from the scheduled time"
        body.append(
            svg.stroke(svg.path_d(points), colour, width=2.0, dash=dash, cls="series", title=label)
        )
        # A second with responses between two without is no line: a dot (a template sent
        # now and then, at a low rate, would not show at all).
        for k, point in enumerate(points):
            alone = (k == 0 or points[k - 1] is None) and (
                k + 1 == len(points) or points[k + 1] is None
            )
            if point is not None and alone:
                body.append(svg.circle(*point, 3, colour, cls="alone", title=label))
    return Chart("requests", title, legend, scale, _ms_tick, tuple(body))


def _ms_tick(value: float) -> str:
    return duration(value / 1000.0)


def _errors_chart(tl: Timeline, axis: TimeAxis) -> Chart:
    top = max([float(s.failed + s.dropped) for s in tl.seconds] + [1.0])
    scale = ValueAxis(svg.y_ticks(top * 1.05, integer=True))
    legend = (("failed", COLOURS["failed"], ""), ("dropped", COLOURS["dropped"], ""))
    title = "Failed and dropped requests (per s)"
    if not tl.seconds:
        return Chart("errors", title, legend, scale, _plain, message="no per-second data")
    inset = min(0.12, 0.5 * axis.end / PLOT)  # a hairline between neighbouring bars
    shown = [s for s in tl.seconds if s.second < axis.end]
    failed = svg.rects_d(
        (axis.x(s.second + inset), scale.y(0), axis.x(s.second + 1 - inset), scale.y(s.failed))
        for s in shown
    )
    dropped = svg.rects_d(
        (
            axis.x(s.second + inset),
            scale.y(s.failed),
            axis.x(s.second + 1 - inset),
            scale.y(s.failed + s.dropped),
        )
        for s in shown
    )
    body = (
        svg.fill(failed, COLOURS["failed"], cls="series bars failed"),
        svg.fill(dropped, COLOURS["dropped"], cls="series bars dropped"),
    )
    quiet = not any(s.failed or s.dropped for s in tl.seconds)
    message = "no failed or dropped requests" if quiet else ""
    return Chart("errors", title, legend, scale, _plain, body, message)


def _replica_chart(tl: Timeline, axis: TimeAxis) -> Chart:
    peaks = [float(max(s.ready, s.desired)) for s in tl.replicas]
    if tl.scaling is not None:
        peaks += [float(s.desired) for s in tl.scaling.desired]
    scale = ValueAxis(
        svg.y_ticks(max([*peaks, *(w.value for w in tl.windows), 1.0]) + 0.5, integer=True)
    )
    legend: tuple[tuple[str, str, str], ...] = (
        ("ready", COLOURS["ready"], ""),
        ("desired", COLOURS["desired"], "6 3"),
        ("expectation held", _verdict_colour(Verdict.PASSED), "dot"),
    )
    body: list[Markup] = []
    for w in tl.windows:
        if w.start >= axis.end:
            continue
        colour, y = _verdict_colour(w.verdict), scale.y(w.value)
        x0, x1 = axis.x(w.start), axis.x(min(w.end, axis.end))
        label = f"{comparator_symbol(w.comparator)} {w.value:g}"
        body.append(
            Markup('<g class="window">{}{}{}</g>').format(
                Markup("<title>{}</title>").format(
                    f"{w.text} (window {offset(w.start)} to {offset(w.end)})"
                ),
                svg.hline(x0, x1, y, colour, width=1.2, dash="2 3"),
                svg.text(x0, y, label, cls="wlabel", dx=3, dy=-3, colour=colour),
            )
        )
    message = ""
    if tl.replicas:
        for name, dash, width in (("desired", "6 3", 1.6), ("ready", "", 2.2)):
            d = svg.runs_d(
                (axis.x(s.start), scale.y(v), axis.x(s.end), scale.y(v))
                for s in tl.replicas
                for v in (float(getattr(s, name)),)
            )
            body.append(svg.stroke(d, COLOURS[name], width=width, dash=dash, cls=f"series {name}"))
        lost = tl.replicas_lost_at
        if lost is not None and lost < axis.end:
            body.append(
                svg.text(
                    axis.x(lost), TOP + 12, "replica source lost", cls="wlabel", dx=4, colour=_MUTED
                )
            )
    else:
        source = f" ({tl.replica_source})" if tl.replica_source else ""
        message = f"no replica data{source}"
    for w in tl.windows:
        value = w.observed if w.observed is not None else w.value
        if w.met_at is None or w.met_at > axis.end:
            continue
        title = f"{w.text}: held at {offset(w.met_at)} ({value:g} replicas)"
        body.append(
            svg.circle(
                axis.x(w.met_at),
                scale.y(value),
                5,
                _verdict_colour(w.verdict),
                cls="held",
                title=title,
            )
        )
    if tl.scaling is not None:
        more, drawn = replica_extras(tl.scaling, axis, scale)
        legend, body = (*legend, *more), [*body, *drawn]
    return Chart("replicas", "Replicas", legend, scale, _plain, tuple(body), message)


def _hover(tl: Timeline, axis: TimeAxis, per_request: bool) -> dict[str, JsonValue]:
    requests: list[JsonValue] = []
    if per_request:
        for r in tl.requests:
            p95: dict[str, JsonValue] = {str(s.second): s.p95 for s in r.seconds}
            requests.append([r.name, p95])
    return {
        "requests": requests,
        "left": LEFT,
        "plot": PLOT,
        "width": WIDTH,
        "end": axis.end,
        "seconds": {
            str(s.second): [s.scheduled, s.sent, s.failed, s.dropped, s.p50, s.p95, s.p99]
            for s in tl.seconds
        },
        "targets": [[r.start, r.end, r.rate_start, r.rate_end] for r in tl.target],
        "phases": [[p.name, p.start, p.end] for p in tl.phases],
        "replicas": [[s.start, s.end, s.ready, s.desired] for s in tl.replicas],
        **_scaling_hover(tl),
    }


def _scaling_hover(tl: Timeline) -> dict[str, JsonValue]:
    """The autoscaler's desired replicas and each metric against its target, by time."""
    if tl.scaling is None:
        return {}
    metrics: list[JsonValue] = [
        [m.name, m.unit, [[s.start, s.end, s.current, s.target] for s in m.steps]]
        for m in tl.scaling.metrics
    ]
    return {
        "autoscaler": [[s.start, s.end, s.desired] for s in tl.scaling.desired],
        "metrics": metrics,
    }


def draw(tl: Timeline, *, per_request: bool = False) -> Drawing:
    """The strip and the four charts of a timeline (then the scaling charts), the per-request
    chart when `per_request` and the timeline has template series, and the hover read-out's
    data (nothing when the timeline is empty)."""
    if tl.empty:
        return Drawing((), {})
    per_request = per_request and bool(tl.requests)
    axis = TimeAxis(tl.end)
    charts = [
        _rate_chart(tl, axis),
        _latency_chart(tl, axis),
        _errors_chart(tl, axis),
        _replica_chart(tl, axis),
    ]
    if tl.scaling is not None:
        charts += [*metric_charts(tl.scaling, axis), pod_chart(tl.scaling, axis)]
    framed = [frame_chart(c, tl, axis, last=i == len(charts) - 1) for i, c in enumerate(charts)]
    requests = frame_chart(_request_chart(tl, axis), tl, axis, last=True) if per_request else None
    return Drawing((strip(tl, axis), *framed), _hover(tl, axis, per_request), requests)

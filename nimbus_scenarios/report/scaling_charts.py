"""The scaling charts: a `ScalingTimeline` drawn on the timeline's axis, under the replica chart.

Its place: `report.charts` calls these and frames what they return (`report.frame`), so the
charts line up with rate and latency. They are:

- `metric_charts`: a chart per autoscaler metric (trigger): its value as a solid step line and
  its target as a dashed one, in the target's terms (`per replica`, `total`, `% of requests`);
- `replica_extras`: what the replica chart adds: the autoscaler's desired replicas (a dotted
  step line: its decision, which the Deployment's `desired` follows) and a triangle at each
  scale event's decision, titled with its breakdown;
- `pod_chart`: a row per pod: a solid bar from creation to Ready (amber; the whole row when the
  pod never became ready), a light green one from Ready to its deletion (a dark tick) or the
  end of the axis, ticks where it was scheduled and its containers started, and a red dot at
  its row's end when it restarted or a container terminated. Each row's title holds every
  moment; its label is the pod name's last part.
"""

from __future__ import annotations

from typing import Final

from markupsafe import Markup

from nimbus_scenarios.report import svg
from nimbus_scenarios.report.frame import Chart, truncate
from nimbus_scenarios.report.scaling_timeline import (
    MetricSeries,
    PodBar,
    ScalingTimeline,
)
from nimbus_scenarios.report.svg import LEFT, TOP, TimeAxis, ValueAxis
from nimbus_scenarios.scaling import TargetKind

__all__ = ["SCALING_COLOURS", "metric_charts", "pod_chart", "replica_extras"]

SCALING_COLOURS: Final = {
    "value": "#0969da",
    "target": "#cf222e",
    "autoscaler": "#bf3989",
    "decision": "#bf3989",
    "starting": "#bf8700",
    "running": "#1a7f37",
    "deleted": "#24292f",
    "restart": "#cf222e",
}
ROW: Final = 14.0
"""A pod row's height, in viewBox units."""
_BAR: Final = 8.0
_TITLE_CHARS: Final = 60


def _plain(value: float) -> str:
    return f"{value:g}"


def _percent(value: float) -> str:
    return f"{value:g}%"


def _metric_chart(index: int, series: MetricSeries, axis: TimeAxis) -> Chart:
    values = [s.current for s in series.steps if s.current is not None]
    targets = [s.target for s in series.steps]
    scale = ValueAxis(svg.y_ticks(max([*values, *targets, 1e-9]) * 1.1))
    name = series.name if len(series.name) <= _TITLE_CHARS else series.name[:59] + "\u2026"
    title = f"Trigger {name}: value against target ({series.unit})"
    legend = (
        ("value", SCALING_COLOURS["value"], ""),
        ("target", SCALING_COLOURS["target"], "5 4"),
    )
    ticks = _percent if series.kind is TargetKind.UTILIZATION else _plain
    key = f"metric-{index}"
    target = svg.runs_d(
        (axis.x(s.start), scale.y(s.target), axis.x(s.end), scale.y(s.target)) for s in series.steps
    )
    body = [
        svg.stroke(
            target,
            SCALING_COLOURS["target"],
            width=1.4,
            dash="5 4",
            cls="series target",
            title=f"{series.name}: target ({series.unit})",
        )
    ]
    if not values:
        return Chart(key, title, legend, scale, ticks, tuple(body), "no value yet")
    value = svg.runs_d(
        (axis.x(s.start), scale.y(s.current), axis.x(s.end), scale.y(s.current))
        for s in series.steps
        if s.current is not None
    )
    label = f"{series.name}: value ({series.unit})"
    body.append(
        svg.stroke(value, SCALING_COLOURS["value"], width=2.0, cls="series metric", title=label)
    )
    return Chart(key, title, legend, scale, ticks, tuple(body))


def metric_charts(st: ScalingTimeline, axis: TimeAxis) -> list[Chart]:
    """A chart per metric (none when the autoscaler reported none)."""
    return [_metric_chart(i, series, axis) for i, series in enumerate(st.metrics)]


def replica_extras(
    st: ScalingTimeline, axis: TimeAxis, scale: ValueAxis
) -> tuple[tuple[tuple[str, str, str], ...], tuple[Markup, ...]]:
    """The replica chart's legend items and drawing for the autoscaler's desired replicas and
    the scale events' decisions."""
    legend: list[tuple[str, str, str]] = []
    parts: list[Markup] = []
    if st.desired:
        colour = SCALING_COLOURS["autoscaler"]
        d = svg.runs_d(
            (axis.x(s.start), scale.y(s.desired), axis.x(s.end), scale.y(s.desired))
            for s in st.desired
        )
        parts.append(svg.stroke(d, colour, width=1.4, dash="1 3", cls="series autoscaler"))
        legend.append(("autoscaler desired", colour, "1 3"))
    for decision in st.decisions:
        x, y = axis.x(decision.at), scale.y(decision.to_replicas)
        up = decision.to_replicas >= decision.from_replicas
        tip = y - 9 if up else y + 9
        d = f"M{svg.num(x - 5)} {svg.num(y)}L{svg.num(x + 5)} {svg.num(y)}"
        d += f"L{svg.num(x)} {svg.num(tip)}Z"
        parts.append(
            Markup('<g class="decision"><title>{}</title>{}</g>').format(
                decision.title, svg.fill(d, SCALING_COLOURS["decision"], opacity=1)
            )
        )
    if st.decisions:
        legend.append(("decision", SCALING_COLOURS["decision"], "dot"))
    return tuple(legend), tuple(parts)


def _pod_row(bar: PodBar, row: int, axis: TimeAxis) -> Markup:
    top = TOP + 4 + row * ROW
    middle = top + _BAR / 2
    x0, x1 = axis.x(bar.start), axis.x(bar.end)
    ready = bar.ready if bar.ready is not None and bar.ready <= bar.end else None
    parts: list[Markup] = []
    if ready is None:
        # Never ready while on the axis: starting all along.
        parts.append(svg.rect(x0, top, x1 - x0, _BAR, SCALING_COLOURS["starting"], cls="starting"))
    else:
        xr = axis.x(max(ready, bar.start))
        parts.append(svg.rect(x0, top, xr - x0, _BAR, SCALING_COLOURS["starting"], cls="starting"))
        light = Markup('<g opacity="0.35">{}</g>').format(
            svg.rect(xr, top, x1 - xr, _BAR, SCALING_COLOURS["running"], cls="running")
        )
        parts.append(light)
    for moment in (bar.scheduled, bar.started):
        if moment is not None and bar.start < moment < bar.end:
            parts.append(svg.vline(axis.x(moment), top + 1.5, top + _BAR - 1.5, "#fff", width=1.2))
    if bar.deleted is not None and bar.deleted <= bar.end:
        parts.append(
            svg.vline(x1, top - 1.5, top + _BAR + 1.5, SCALING_COLOURS["deleted"], cls="deleted")
        )
    if bar.troubled:
        parts.append(svg.circle(x1, middle, 4, SCALING_COLOURS["restart"], cls="restart"))
    return Markup('<g class="pod"><title>{}</title>{}</g>').format(bar.title, svg.join(parts))


def _pod_label(bar: PodBar, row: int) -> Markup:
    """The row's label left of the plot (outside the plot's clip): the name's last part."""
    middle = TOP + 4 + row * ROW + _BAR / 2
    label = truncate(bar.name.rsplit("-", 1)[-1] or bar.name, LEFT - 10, 6.2)
    return svg.text(
        LEFT - 6, middle, label, cls="ytick pod-name", anchor="end", dy=3.5, title=bar.title
    )


def pod_chart(st: ScalingTimeline, axis: TimeAxis) -> Chart:
    """A row per pod (at least one row's height, with a message, when there is none)."""
    legend = (
        ("creation to ready", SCALING_COLOURS["starting"], ""),
        ("ready to deletion", "#a3d3b0", ""),
        ("restarted or terminated", SCALING_COLOURS["restart"], "dot"),
    )
    title = "Pods: creation to ready, ready to deletion"
    if st.pods_left_out:
        shown = len(st.pods)
        title += f" ({shown} of {shown + st.pods_left_out} pods shown)"
    scale = ValueAxis(())
    rows = max(len(st.pods), 2)
    inner = rows * ROW + 8
    if not st.pods:
        message = "no pods seen" if st.pods_watched else "pods were not watched"
        return Chart("pods", title, legend, scale, _plain, (), message, inner=inner)
    body = tuple(_pod_row(bar, i, axis) for i, bar in enumerate(st.pods))
    labels = tuple(_pod_label(bar, i) for i, bar in enumerate(st.pods))
    return Chart("pods", title, legend, scale, _plain, body, inner=inner, labels=labels)

"""How every timeline chart is framed: the `Chart` a drawing function returns, and the frame
around it (title, legend, y ticks, the phase bands, the kill and abort markers, the hover
cursor), plus the strip of phase names above the charts.

Its place: between `report.svg` (the kit) and the modules that draw charts (`report.charts`,
`report.scaling_charts`); a chart's plot is `INNER` high unless it says otherwise (the pod chart
grows with its pods), and everything in the frame follows its height.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup

from nimbus_scenarios.report import svg
from nimbus_scenarios.report._format import offset
from nimbus_scenarios.report.svg import INNER, LEFT, PLOT, TOP, WIDTH, TimeAxis, ValueAxis
from nimbus_scenarios.report.timeline import MarkerKind, Timeline

__all__ = ["COLOURS", "Chart", "frame_chart", "strip", "truncate"]

COLOURS: Final = {
    "target": "#6e7781",
    "scheduled": "#b6bfc9",
    "sent": "#0969da",
    "p50": "#0969da",
    "p95": "#bf8700",
    "p99": "#cf222e",
    "failed": "#cf222e",
    "dropped": "#fb8f44",
    "ready": "#1a7f37",
    "desired": "#8250df",
    "kill": "#bc4c00",
    "abort": "#cf222e",
}


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart before it is framed: its scale, legend, drawn series and a note when empty."""

    key: str
    title: str
    legend: tuple[tuple[str, str, str], ...]
    """(label, colour, dash); the dash `dot` draws a dot."""
    axis: ValueAxis
    tick_text: Callable[[float], str]
    body: tuple[Markup, ...] = ()
    message: str = ""
    inner: float = INNER
    """The plot's height (`INNER` but for the pod chart, a row per pod)."""
    labels: tuple[Markup, ...] = ()
    """Drawn left of the plot, outside its clip (the pod chart's row names)."""


def truncate(label: str, width: float, char: float = 7.6) -> str:
    """`label` cut (with an ellipsis) to fit `width` viewBox units of bold 11.5px text."""
    limit = int(width // char)
    if len(label) <= limit:
        return label
    return "" if limit < 3 else label[: limit - 1] + "\u2026"


def _bands(tl: Timeline, axis: TimeAxis, top: float, height: float, pattern: str) -> Markup:
    """The phase bands (alternating shades; the part planned but not run hatched)."""
    parts = []
    for i, phase in enumerate(tl.phases):
        if phase.start >= axis.end:
            continue
        x0, x1 = axis.x(phase.start), axis.x(min(phase.end, axis.end))
        shade = "#f3f5f8" if i % 2 == 0 else "#e9edf2"
        parts.append(svg.rect(x0, top, x1 - x0, height, shade, cls="band"))
        if phase.ran_end < phase.end - 1e-3 and phase.ran_end < axis.end:
            xr = axis.x(phase.ran_end)
            parts.append(svg.rect(xr, top, x1 - xr, height, f"url(#{pattern})"))
        if i > 0:
            parts.append(svg.vline(x0, top, top + height, "#d0d7de"))
    return svg.join(parts)


def _markers(tl: Timeline, axis: TimeAxis, inner: float) -> Markup:
    parts = []
    for marker in tl.markers:
        if marker.at > axis.end:
            continue
        abort = marker.kind is MarkerKind.ABORT
        parts.append(
            svg.vline(
                axis.x(marker.at),
                TOP,
                TOP + inner,
                COLOURS[marker.kind],
                width=2.0 if abort else 1.5,
                dash="" if abort else "4 3",
                cls=f"marker {marker.kind}",
                title=marker.title,
            )
        )
    return svg.join(parts)


def frame_chart(chart: Chart, tl: Timeline, axis: TimeAxis, *, last: bool) -> Markup:
    """`chart` in its frame, as one SVG; `last` puts the time labels under it."""
    height = TOP + chart.inner + (svg.AXIS_H if last else svg.GAP_H)
    pattern, clip = f"hatch-{chart.key}", f"clip-{chart.key}"
    parts = [
        Markup('<defs>{}<clipPath id="{}">{}</clipPath></defs>').format(
            svg.hatch(pattern), clip, svg.rect(LEFT, TOP - 2, PLOT, chart.inner + 4, "#fff")
        ),
        _bands(tl, axis, TOP, chart.inner, pattern),
    ]
    for tick in chart.axis.ticks:
        y = chart.axis.y(tick)
        parts.append(svg.hline(LEFT, LEFT + PLOT, y, "#8c959f" if tick == 0 else "#d8dee4"))
        parts.append(
            svg.text(LEFT - 6, y, chart.tick_text(tick), cls="ytick", anchor="end", dy=3.5)
        )
    for tick in axis.ticks():
        x = axis.x(tick)
        parts.append(svg.vline(x, TOP, TOP + chart.inner, "#d8dee4", width=0.6, dash="2 3"))
        if last:
            label = svg.time_label(tick, axis.end)
            parts.append(svg.text(x, TOP + chart.inner + 15, label, cls="xtick", anchor="middle"))
    parts.append(svg.text(LEFT, 18, chart.title, cls="ctitle"))
    parts.append(svg.legend(chart.legend))
    parts.append(Markup('<g clip-path="url(#{})">{}</g>').format(clip, svg.join(chart.body)))
    parts.append(svg.join(chart.labels))
    parts.append(_markers(tl, axis, chart.inner))
    if chart.message:
        middle = TOP + chart.inner / 2
        parts.append(
            svg.text(LEFT + PLOT / 2, middle, chart.message, cls="message", anchor="middle")
        )
    parts.append(
        Markup(
            '<line class="cursor" x1="0" y1="{}" x2="0" y2="{}" stroke="#24292f" stroke-width="1"'
            ' visibility="hidden"/>'
        ).format(svg.num(TOP), svg.num(TOP + chart.inner))
    )
    return svg.frame(svg.join(parts), height=height, label=chart.title, cls="chart", key=chart.key)


def strip(tl: Timeline, axis: TimeAxis) -> Markup:
    """The phase names above the charts, and the kill and abort markers' labels."""
    band_h = 24.0
    parts = [
        Markup("<defs>{}</defs>").format(svg.hatch("hatch-strip")),
        _bands(tl, axis, 0, band_h, "hatch-strip"),
    ]
    for phase in tl.phases:
        if phase.start >= axis.end:
            continue
        x0, x1 = axis.x(phase.start), axis.x(min(phase.end, axis.end))
        name = phase.name + ("" if phase.ran is not None else " (not run)")
        title = f"{name}: planned {offset(phase.start)} to {offset(phase.end)}"
        label = truncate(name, x1 - x0 - 6)
        parts.append(svg.text((x0 + x1) / 2, 16, label, cls="phase", anchor="middle", title=title))
    placed: list[float] = []
    for marker in sorted(tl.markers, key=lambda m: m.at):
        if marker.at > axis.end:
            continue
        x = axis.x(marker.at)
        anchor, dx = ("end", -6.0) if x > WIDTH - 80 else ("start", 6.0)
        # A label that would overlap the previous one is left out (the marker keeps its title).
        crowded = any(abs(p - x) < 44 for p in placed)
        if not crowded:
            placed.append(x)
        label = (
            Markup("")
            if crowded
            else svg.text(
                x, band_h + 13, marker.label, cls=f"mlabel {marker.kind}", anchor=anchor, dx=dx
            )
        )
        triangle = f"M{svg.num(x - 4.5)} {svg.num(band_h)}L{svg.num(x + 4.5)} {svg.num(band_h)}"
        triangle += f"L{svg.num(x)} {svg.num(band_h + 7)}Z"
        parts.append(
            Markup('<g class="marker-label {}"><title>{}</title>{}{}</g>').format(
                marker.kind,
                marker.title,
                svg.fill(triangle, COLOURS[marker.kind], opacity=1),
                label,
            )
        )
    return svg.frame(svg.join(parts), height=42.0, label="Phases and events", cls="strip")

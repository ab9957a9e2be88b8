"""The chart kit: pure functions from numbers to SVG markup, for the HTML report's charts.

Its place: `report.charts` draws the timeline with these; nothing here knows a run. Every chart
uses the same viewBox width and margins (`WIDTH`, `LEFT`, `PLOT`), so one x is the same moment
in every chart stacked on the page. Functions return `markupsafe.Markup`: the page's templates
insert it as it is, and any text that goes in (titles, labels) is escaped here by
`Markup.format`, so a caller cannot forget to.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup

__all__ = [
    "AXIS_H",
    "GAP_H",
    "INNER",
    "LEFT",
    "PLOT",
    "RIGHT",
    "TOP",
    "WIDTH",
    "TimeAxis",
    "ValueAxis",
    "circle",
    "fill",
    "frame",
    "hatch",
    "hline",
    "join",
    "legend",
    "num",
    "path_d",
    "rect",
    "rects_d",
    "runs_d",
    "stroke",
    "text",
    "time_label",
    "vline",
    "y_ticks",
]

WIDTH: Final = 1000.0
LEFT: Final = 62.0
RIGHT: Final = 14.0
PLOT: Final = WIDTH - LEFT - RIGHT
TOP: Final = 30.0
"""Room for a chart's title and legend above its plot."""
INNER: Final = 120.0
"""A plot's height."""
AXIS_H: Final = 22.0
"""The time labels under the last chart."""
GAP_H: Final = 6.0
"""The space under every other chart."""

_TIME_STEPS: Final = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200)


def num(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros (`12.5`, `3`, `0`)."""
    shown = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if shown in {"-0", ""} else shown


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0):
        if raw <= factor * power:
            return factor * power
    return 10.0 * power


def y_ticks(top: float, *, integer: bool = False) -> tuple[float, ...]:
    """Four or five round ticks from 0 to at least `top` (whole numbers with `integer`)."""
    if not top > 0 or not math.isfinite(top):
        top = 1.0
    step = _nice_step(top, 4)
    if integer:
        step = max(1.0, float(math.ceil(step)))
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(ticks[-1] + step)
    return tuple(ticks)


def time_label(t: float, end: float) -> str:
    """A time tick: seconds (`45s`) on a short axis, `m:ss` or `h:mm:ss` on a long one."""
    if end < 120:
        return f"{t:g}s"
    whole = round(t)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True, slots=True)
class TimeAxis:
    """The shared time axis: seconds from the first phase's start to x in the viewBox."""

    end: float

    def x(self, t: float) -> float:
        """Where run offset `t` is (clamped to the plot)."""
        end = max(self.end, 1.0)
        return LEFT + PLOT * min(max(t, 0.0), end) / end

    def ticks(self) -> tuple[float, ...]:
        """At most about ten round times along the axis."""
        end = max(self.end, 1.0)
        longest = _TIME_STEPS[-1]
        # Past 20 h, whole multiples of the longest step: a document claiming an offset of
        # years still gets about ten ticks, not one every two hours.
        step = next(
            (s for s in _TIME_STEPS if end / s <= 10), longest * math.ceil(end / 10 / longest)
        )
        return tuple(float(i * step) for i in range(int(end // step) + 1))


@dataclass(frozen=True, slots=True)
class ValueAxis:
    """A chart's y axis: values from 0 to its last tick onto the plot's height."""

    ticks: tuple[float, ...]

    @property
    def top(self) -> float:
        """The largest value drawn."""
        return self.ticks[-1] if self.ticks and self.ticks[-1] > 0 else 1.0

    def y(self, value: float) -> float:
        """Where `value` is (clamped to the plot)."""
        return TOP + INNER - INNER * min(max(value, 0.0), self.top) / self.top


def path_d(points: Iterable[tuple[float, float] | None]) -> str:
    """Path data through `points`; a None lifts the pen, so the line breaks there."""
    parts: list[str] = []
    pen_up = True
    for point in points:
        if point is None:
            pen_up = True
            continue
        parts.append(f"{'M' if pen_up else 'L'}{num(point[0])} {num(point[1])}")
        pen_up = False
    return "".join(parts)


def runs_d(runs: Iterable[tuple[float, float, float, float]]) -> str:
    """Path data through straight runs `(x0, y0, x1, y1)`: a run that starts where the last one
    ended joins it (a step or a bend), one that starts elsewhere starts a new line."""
    parts: list[str] = []
    last_x: float | None = None
    for x0, y0, x1, y1 in runs:
        joined = last_x is not None and abs(x0 - last_x) < 1e-6
        parts.append(f"{'L' if joined else 'M'}{num(x0)} {num(y0)}L{num(x1)} {num(y1)}")
        last_x = x1
    return "".join(parts)


def rects_d(rects: Iterable[tuple[float, float, float, float]]) -> str:
    """Path data for rectangles `(x0, y0, x1, y1)` (bars drawn as one path); empty ones are
    left out."""
    parts = []
    for x0, y0, x1, y1 in rects:
        if abs(y1 - y0) < 1e-9 or x1 <= x0:
            continue
        parts.append(f"M{num(x0)} {num(y0)}V{num(y1)}H{num(x1)}V{num(y0)}Z")
    return "".join(parts)


def stroke(
    d: str, colour: str, *, width: float = 1.6, dash: str = "", cls: str = "", title: str = ""
) -> Markup:
    """A line along path data `d` (nothing when `d` is empty)."""
    if not d:
        return Markup("")
    return Markup(
        '<path{} d="{}" fill="none" stroke="{}" stroke-width="{}" stroke-linejoin="round"'
        ' stroke-linecap="round"{}>{}</path>'
    ).format(_cls(cls), d, colour, num(width), _dash(dash), _title(title))


def fill(d: str, colour: str, *, cls: str = "", opacity: float = 0.85) -> Markup:
    """A filled shape along path data `d` (nothing when `d` is empty)."""
    if not d:
        return Markup("")
    return Markup('<path{} d="{}" fill="{}" fill-opacity="{}"/>').format(
        _cls(cls), d, colour, num(opacity)
    )


def rect(x: float, y: float, width: float, height: float, paint: str, *, cls: str = "") -> Markup:
    """A rectangle; `paint` is a colour or `url(#id)` of a pattern."""
    return Markup('<rect{} x="{}" y="{}" width="{}" height="{}" fill="{}"/>').format(
        _cls(cls), num(x), num(y), num(max(width, 0.0)), num(max(height, 0.0)), paint
    )


def vline(
    x: float,
    y0: float,
    y1: float,
    colour: str,
    *,
    width: float = 1.0,
    dash: str = "",
    cls: str = "",
    title: str = "",
) -> Markup:
    """A vertical line at `x` from `y0` to `y1`, with a hover title when given."""
    return Markup(
        '<line{} x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}"{}>'
    ).format(_cls(cls), num(x), num(y0), num(x), num(y1), colour, num(width), _dash(dash)) + Markup(
        "{}</line>"
    ).format(_title(title))


def hline(
    x0: float, x1: float, y: float, colour: str, *, width: float = 1.0, dash: str = ""
) -> Markup:
    """A horizontal line at `y` from `x0` to `x1`."""
    return Markup('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}"{}/>').format(
        num(x0), num(y), num(x1), num(y), colour, num(width), _dash(dash)
    )


def circle(
    cx: float, cy: float, r: float, colour: str, *, cls: str = "", title: str = ""
) -> Markup:
    """A dot with a white rim, with a hover title when given."""
    return Markup(
        '<circle{} cx="{}" cy="{}" r="{}" fill="{}" stroke="#fff" stroke-width="1.5">{}</circle>'
    ).format(_cls(cls), num(cx), num(cy), num(r), colour, _title(title))


def text(
    x: float,
    y: float,
    content: str,
    *,
    cls: str = "",
    anchor: str = "",
    dx: float = 0.0,
    dy: float = 0.0,
    colour: str = "",
    title: str = "",
) -> Markup:
    """A text label (escaped), with a hover title when given."""
    extra = Markup("")
    if dx:
        extra += Markup(' dx="{}"').format(num(dx))
    if dy:
        extra += Markup(' dy="{}"').format(num(dy))
    if anchor:
        extra += Markup(' text-anchor="{}"').format(anchor)
    if colour:
        extra += Markup(' fill="{}"').format(colour)
    return Markup('<text{} x="{}" y="{}"{}>{}{}</text>').format(
        _cls(cls), num(x), num(y), extra, _title(title), content
    )


def hatch(pattern_id: str) -> Markup:
    """A diagonal hatch pattern (`fill="url(#id)"`) for what was planned but did not run."""
    return Markup(
        '<pattern id="{}" width="6" height="6" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#c5ccd4"'
        ' stroke-width="2"/></pattern>'
    ).format(pattern_id)


def frame(body: Markup, *, height: float, label: str, cls: str, key: str = "") -> Markup:
    """An `<svg>` element as wide as every other chart, `height` units tall."""
    data = Markup(' data-chart="{}"').format(key) if key else Markup("")
    return Markup(
        '<svg class="{}"{} viewBox="0 0 {} {}" role="img" aria-label="{}"'
        ' xmlns="http://www.w3.org/2000/svg">{}</svg>'
    ).format(cls, data, num(WIDTH), num(height), label, body)


def legend(items: Sequence[tuple[str, str, str]]) -> Markup:
    """A chart's legend, right-aligned in the title row: (label, colour, dash) each, where the
    dash `dot` draws a dot instead of a line."""
    x = WIDTH - RIGHT
    drawn = []
    for label, colour, dash in reversed(items):
        x -= 12 + 6.2 * len(label) + 18  # swatch, a bold-ish 11.5px label, and a gap
        if dash == "dot":
            swatch = Markup('<circle cx="{}" cy="14" r="4" fill="{}"/>').format(num(x + 7), colour)
        else:
            swatch = Markup(
                '<line x1="{}" y1="14" x2="{}" y2="14" stroke="{}" stroke-width="2.4"{}/>'
            ).format(num(x), num(x + 14), colour, _dash(dash))
        drawn.append(swatch + text(x + 18, 18, label, cls="legend"))
    return join(reversed(drawn))


def join(parts: Sequence[Markup] | Iterable[Markup]) -> Markup:
    """Markup pieces as one."""
    return Markup("").join(parts)


def _cls(cls: str) -> Markup:
    return Markup(' class="{}"').format(cls) if cls else Markup("")


def _dash(dash: str) -> Markup:
    return Markup(' stroke-dasharray="{}"').format(dash) if dash else Markup("")


def _title(title: str) -> Markup:
    return Markup("<title>{}</title>").format(title) if title else Markup("")

"""The HTML report: one self-contained page per results document, readable offline.

`render_html(document)` turns a results document (see `nimbus_scenarios.results`) into a single
HTML file: inline CSS, SVG charts drawn here in Python and a few lines of inline JavaScript for
the hover read-out. The page loads nothing: no fonts, no scripts, no images from anywhere, and
a Content-Security-Policy `<meta>` forbids every fetch and lets only the page's own script and
style run (by hash), so a string that slipped through escaping still could not execute.

The charts share one time axis (seconds from the start of the first phase), stacked: request
rate (the planned target per phase, scheduled and sent per second), latency percentiles per
second, failed and dropped requests per second, and replicas (ready and desired), with the
phases as shaded bands through all of them, pod kills and the abort as vertical markers, and
the moment each replica expectation held as a dot on the replica chart. Tables below list the
expectations and the phases.

Every string taken from the document is escaped: scenario names, phase names, expectation
texts, the scenario source and error messages can hold anything.

`write_reports(document, html_path, junit_path)` renders the HTML and JUnit reports and writes
each one atomically.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from nimbus_scenarios.results import write_atomic

__all__ = ["render_html", "write_reports"]

# ------------------------------------------------------------------------------------------
# Values from the document


_DASH = "\u2013"  # an en dash: no value


def _text(value: object) -> str:
    """`value` as text with lone surrogates (possible in JSON strings) replaced."""
    text = value if isinstance(value, str) else str(value)
    return text.encode("utf-8", "replace").decode("utf-8")


def _esc(value: object) -> str:
    """`value` as escaped HTML text, safe in element content and quoted attributes."""
    return html.escape(_text(value), quote=True)


def _num(value: object) -> float | None:
    """A finite number, or None (booleans, strings and NaN are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int(value: object) -> int:
    number = _num(value)
    return int(number) if number is not None else 0


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _duration(seconds: float | None) -> str:
    """A duration for people: `3.65ms`, `191ms`, `4.61s`, `2m05s`, `1h02m`."""
    if seconds is None:
        return _DASH
    if seconds < 0:
        return "-" + _duration(-seconds)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:.3g}ms"
    if seconds < 100:
        return f"{seconds:.3g}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _ms(value: object) -> str:
    number = _num(value)
    return _DASH if number is None else _duration(number / 1000.0)


def _rate(value: object) -> str:
    number = _num(value)
    if number is None:
        return _DASH
    return f"{number:.1f}" if number < 100 else f"{number:,.0f}"


def _count(value: object) -> str:
    number = _num(value)
    return _DASH if number is None else f"{int(number):,}"


def _offset(seconds: float | None) -> str:
    """A run offset: `+12.3s`, `+2m05s`."""
    if seconds is None:
        return _DASH
    if abs(seconds) < 100:
        return f"{'+' if seconds >= 0 else '-'}{abs(seconds):.1f}s"
    return ("+" if seconds >= 0 else "-") + _duration(abs(seconds))


_COMPARATORS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=", "!=": "≠"}


def expectation_value(kind: str, value: float | None) -> str:
    """An expectation's observed or expected value in its unit (shared with the JUnit report)."""
    if value is None:
        return "nothing"
    if kind == "latency":
        return _duration(value)
    if kind in {"errors", "achieved"}:
        return f"{value:.3g}%"
    if kind == "succeeds":
        return "succeeded" if value >= 1 else "did not succeed"
    return f"{value:g}"


def split_expected(kind: str, expected: object) -> tuple[str, str]:
    """(`comparator`, value text) of the document's `expected` (`"< 1"`) in the kind's unit."""
    text = _text(expected) if expected is not None else ""
    comparator, _, raw = text.partition(" ")
    if kind == "succeeds":
        return "", "succeeds"
    try:
        return comparator, expectation_value(kind, float(raw))
    except ValueError:
        return "", text


# ------------------------------------------------------------------------------------------
# The timeline's data


@dataclass(frozen=True, slots=True)
class _Second:
    second: int
    scheduled: int
    sent: int
    dropped: int
    succeeded: int
    failed: int
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True, slots=True)
class _Phase:
    name: str
    start: float
    end: float
    target: float | None
    ran: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class _Marker:
    at: float
    kind: str  # kill | abort
    label: str
    title: str


@dataclass(frozen=True, slots=True)
class _Held:
    """A replica expectation: its window and threshold, and where it held."""

    text: str
    verdict: str
    comparator: str
    value: float | None
    window: tuple[float, float] | None
    met_at: float | None
    observed: float | None


@dataclass
class _Timeline:
    end: float
    seconds: list[_Second] = field(default_factory=list)
    phases: list[_Phase] = field(default_factory=list)
    replicas: list[tuple[float, int, int]] = field(default_factory=list)
    replicas_lost_at: float | None = None
    markers: list[_Marker] = field(default_factory=list)
    held: list[_Held] = field(default_factory=list)


def _seconds(document: Mapping[str, Any]) -> list[_Second]:
    out = []
    for index, item in enumerate(_list(document.get("seconds"))):
        if not isinstance(item, dict):
            continue
        second = _num(item.get("second"))
        latency = _dict(item.get("latency_ms"))
        out.append(
            _Second(
                second=int(second) if second is not None else index,
                scheduled=_int(item.get("scheduled")),
                sent=_int(item.get("sent")),
                dropped=_int(item.get("dropped")),
                succeeded=_int(item.get("succeeded")),
                failed=_int(item.get("failed")),
                p50=_num(latency.get("p50")),
                p95=_num(latency.get("p95")),
                p99=_num(latency.get("p99")),
            )
        )
    out.sort(key=lambda s: s.second)
    return out


def _phases(document: Mapping[str, Any]) -> list[_Phase]:
    out = []
    for item in _list(document.get("phases")):
        if not isinstance(item, dict):
            continue
        start, end = _num(item.get("start_s")), _num(item.get("end_s"))
        if start is None or end is None:
            continue
        ran_s = _list(item.get("ran_s"))
        ran = None
        if len(ran_s) == 2 and _num(ran_s[0]) is not None and _num(ran_s[1]) is not None:
            ran = (float(ran_s[0]), float(ran_s[1]))
        out.append(
            _Phase(_text(item.get("name", "?")), start, end, _num(item.get("target_rate")), ran)
        )
    return out


def _replicas(document: Mapping[str, Any]) -> list[tuple[float, int, int]]:
    out = []
    for item in _list(document.get("replicas")):
        row = _list(item)
        if len(row) >= 3 and _num(row[0]) is not None:
            out.append((float(row[0]), _int(row[1]), _int(row[2])))
    out.sort(key=lambda p: p[0])
    return out


def _markers(document: Mapping[str, Any]) -> list[_Marker]:
    out = []
    for item in _list(document.get("kills")):
        kill = _dict(item)
        at = _num(kill.get("at_s"))
        if at is None:
            continue
        pods = [_text(p) for p in _list(kill.get("pods"))]
        count = _int(kill.get("count")) or len(pods)
        what = f"kill {count} pod{'s' if count != 1 else ''} at {_offset(at)}"
        if pods:
            what += ": " + ", ".join(pods)
        elif kill.get("error"):
            what += f" (failed: {_text(kill['error'])})"
        out.append(_Marker(at, "kill", "kill", what))
    abort = _dict(document.get("abort"))
    abort_at = _num(abort.get("at_s"))
    if abort_at is not None:
        reason = _text(abort.get("reason") or "aborted")
        out.append(_Marker(abort_at, "abort", "abort", f"aborted at {_offset(abort_at)}: {reason}"))
    return out


def _held(document: Mapping[str, Any]) -> list[_Held]:
    out = []
    for item in _list(document.get("expectations")):
        e = _dict(item)
        if e.get("kind") != "replicas":
            continue
        window_s = _list(e.get("window_s"))
        window = None
        if len(window_s) == 2 and _num(window_s[0]) is not None and _num(window_s[1]) is not None:
            window = (float(window_s[0]), float(window_s[1]))
        comparator, _, raw = _text(e.get("expected") or "").partition(" ")
        try:
            value: float | None = float(raw)
        except ValueError:
            value = None
        # met_at_s is a run offset only for windowed expectations of the scenario or a phase;
        # `before`/`after` ones count from their stage's start and are not on the time axis.
        met_at = _num(e.get("met_at_s")) if window is not None else None
        if window is None and met_at is None:
            continue
        out.append(
            _Held(
                _text(e.get("text", "")),
                _text(e.get("verdict", "")),
                comparator,
                value,
                window,
                met_at,
                _num(e.get("observed")),
            )
        )
    return out


def _timeline(document: Mapping[str, Any]) -> _Timeline:
    seconds = _seconds(document)
    phases = _phases(document)
    replicas = _replicas(document)
    markers = _markers(document)
    held = _held(document)
    lost_at = _num(_dict(document.get("replica_source")).get("lost_at_s"))
    ends = [0.0]
    ends.extend(
        s.second + 1.0
        for s in seconds
        if s.scheduled or s.sent or s.dropped or s.succeeded or s.failed or s.p50 is not None
    )
    ends.extend(p.ran[1] for p in phases if p.ran is not None)
    ends.extend(p[0] for p in replicas)
    ends.extend(m.at for m in markers)
    ends.extend(h.met_at for h in held if h.met_at is not None)
    return _Timeline(
        end=max(ends),
        seconds=seconds,
        phases=phases,
        replicas=replicas,
        replicas_lost_at=lost_at,
        markers=markers,
        held=held,
    )


# ------------------------------------------------------------------------------------------
# SVG

_WIDTH = 1000.0
_LEFT = 62.0
_RIGHT = 14.0
_PLOT = _WIDTH - _LEFT - _RIGHT
_TOP = 30.0  # title and legend
_INNER = 120.0  # plot height
_AXIS = 22.0  # x tick labels under the last chart
_GAP = 6.0

_COLOURS = {
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

_TIME_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 14400)


def _f(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _y_ticks(top: float, *, integer: bool = False) -> list[float]:
    """Ticks from 0 to at least `top` (four or five of them)."""
    if top <= 0:
        top = 1.0
    step = _nice_step(top, 4)
    if integer:
        step = max(1.0, math.ceil(step))
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(ticks[-1] + step)
    return ticks


def _time_label(t: float, end: float) -> str:
    if end < 120:
        return f"{t:g}s"
    whole = round(t)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Axis:
    """The shared time axis: run offset in seconds to x in the charts' viewBox."""

    def __init__(self, end: float) -> None:
        self.end = max(end, 1.0)

    def x(self, t: float) -> float:
        return _LEFT + _PLOT * min(max(t, 0.0), self.end) / self.end

    def ticks(self) -> list[float]:
        step = next((s for s in _TIME_STEPS if self.end / s <= 10), _TIME_STEPS[-1])
        return [i * step for i in range(int(self.end // step) + 1)]


@dataclass
class _Chart:
    key: str
    title: str
    unit: str
    legend: list[tuple[str, str, str]]  # (label, colour, dash)
    ticks: list[float]
    tick_text: Callable[[float], str]
    body: list[str] = field(default_factory=list)
    message: str = ""

    def y(self, value: float) -> float:
        top = self.ticks[-1] or 1.0
        return _TOP + _INNER - _INNER * min(max(value, 0.0), top) / top


def _path(points: Iterable[tuple[float, float] | None]) -> str:
    """An SVG path through `points`; None breaks the line."""
    parts: list[str] = []
    pen_up = True
    for point in points:
        if point is None:
            pen_up = True
            continue
        parts.append(f"{'M' if pen_up else 'L'}{_f(point[0])} {_f(point[1])}")
        pen_up = False
    return "".join(parts)


def _step_path(steps: Sequence[tuple[float, float, float]], chart: _Chart, axis: _Axis) -> str:
    """A step line through (start, end, value) runs; a gap between runs breaks it."""
    parts: list[str] = []
    last_end: float | None = None
    last_y: float | None = None
    for start, end, value in steps:
        x0, x1, y = axis.x(start), axis.x(end), chart.y(value)
        if last_end is not None and abs(start - last_end) < 1e-6 and last_y is not None:
            parts.append(f"L{_f(x0)} {_f(y)}")
        else:
            parts.append(f"M{_f(x0)} {_f(y)}")
        parts.append(f"L{_f(x1)} {_f(y)}")
        last_end, last_y = end, y
    return "".join(parts)


def _line(d: str, colour: str, *, width: float = 1.6, dash: str = "", cls: str = "") -> str:
    if not d:
        return ""
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    cls_attr = f' class="{cls}"' if cls else ""
    return (
        f'<path{cls_attr} d="{d}" fill="none" stroke="{colour}" stroke-width="{width}"'
        f' stroke-linejoin="round" stroke-linecap="round"{dash_attr}/>'
    )


def _rate_chart(tl: _Timeline, axis: _Axis) -> _Chart:
    steps = [
        (max(p.start, 0.0), min(p.end, axis.end), p.target)
        for p in tl.phases
        if p.target is not None and p.start < axis.end
    ]
    top = max(
        [s[2] for s in steps]
        + [float(s.sent) for s in tl.seconds]
        + [float(s.scheduled) for s in tl.seconds]
        + [1.0]
    )
    chart = _Chart(
        "rate",
        "Request rate",
        "req/s",
        [
            ("target (phase mean)", _COLOURS["target"], "5 4"),
            ("scheduled", _COLOURS["scheduled"], ""),
            ("sent", _COLOURS["sent"], ""),
        ],
        _y_ticks(top * 1.05),
        lambda v: f"{v:g}",
    )
    chart.body.append(
        _line(
            _step_path(steps, chart, axis),
            _COLOURS["target"],
            dash="5 4",
            width=1.4,
            cls="series target",
        )
    )
    if not tl.seconds:
        chart.message = "no per-second data"
        return chart

    def series(attr: str) -> str:
        return _path(
            (axis.x(s.second + 0.5), chart.y(float(getattr(s, attr))))
            for s in tl.seconds
            if s.second < axis.end
        )

    chart.body.append(_line(series("scheduled"), _COLOURS["scheduled"], cls="series scheduled"))
    chart.body.append(_line(series("sent"), _COLOURS["sent"], width=2, cls="series sent"))
    return chart


def _latency_chart(tl: _Timeline, axis: _Axis) -> _Chart:
    values = [v for s in tl.seconds for v in (s.p50, s.p95, s.p99) if v is not None]
    chart = _Chart(
        "latency",
        "Latency (from the scheduled time, by completion second)",
        "",
        [(name, _COLOURS[name], "") for name in ("p50", "p95", "p99")],
        _y_ticks(max([*values, 1.0]) * 1.05),
        lambda v: _duration(v / 1000.0),
    )
    if not values:
        chart.message = "no completed requests"
        return chart
    for name in ("p99", "p95", "p50"):  # p95 over p99: it is the one usually judged
        points: list[tuple[float, float] | None] = []
        previous = None
        for s in tl.seconds:
            value = getattr(s, name)
            if previous is not None and s.second != previous + 1:
                points.append(None)
            previous = s.second
            points.append(
                None if value is None else (axis.x(s.second + 0.5), chart.y(float(value)))
            )
        chart.body.append(
            _line(_path(points), _COLOURS[name], width=2 if name == "p95" else 1.5, cls="series")
        )
    return chart


def _area(runs: Sequence[tuple[float, float, float, float]], chart: _Chart, axis: _Axis) -> str:
    """Bars as one path: for each (start, end, low, high) a rectangle."""
    parts = []
    for start, end, low, high in runs:
        if high <= low:
            continue
        x0, x1 = axis.x(start), axis.x(end)
        y0, y1 = chart.y(low), chart.y(high)
        parts.append(f"M{_f(x0)} {_f(y0)}V{_f(y1)}H{_f(x1)}V{_f(y0)}Z")
    return "".join(parts)


def _errors_chart(tl: _Timeline, axis: _Axis) -> _Chart:
    top = max([float(s.failed + s.dropped) for s in tl.seconds] + [1.0])
    chart = _Chart(
        "errors",
        "Failed and dropped requests",
        "per s",
        [("failed", _COLOURS["failed"], ""), ("dropped", _COLOURS["dropped"], "")],
        _y_ticks(top * 1.05, integer=True),
        lambda v: f"{v:g}",
    )
    if not tl.seconds:
        chart.message = "no per-second data"
        return chart
    inset = min(0.12, 0.5 * axis.end / _PLOT)  # a hairline between neighbouring bars
    failed = [
        (s.second + inset, s.second + 1 - inset, 0.0, float(s.failed))
        for s in tl.seconds
        if s.second < axis.end
    ]
    dropped = [
        (s.second + inset, s.second + 1 - inset, float(s.failed), float(s.failed + s.dropped))
        for s in tl.seconds
        if s.second < axis.end
    ]
    for name, runs in (("failed", failed), ("dropped", dropped)):
        d = _area(runs, chart, axis)
        if d:
            chart.body.append(
                f'<path class="series bars {name}" d="{d}" fill="{_COLOURS[name]}"'
                ' fill-opacity="0.85"/>'
            )
    if not any(s.failed or s.dropped for s in tl.seconds):
        chart.message = "no failed or dropped requests"
    return chart


def _replica_chart(tl: _Timeline, axis: _Axis, source: Mapping[str, Any] | None) -> _Chart:
    thresholds = [h.value for h in tl.held if h.value is not None]
    top = max([float(max(p[1], p[2])) for p in tl.replicas] + thresholds + [1.0])
    chart = _Chart(
        "replicas",
        "Replicas",
        "",
        [
            ("ready", _COLOURS["ready"], ""),
            ("desired", _COLOURS["desired"], "6 3"),
            ("expectation held", _verdict_colour("passed"), "dot"),
        ],
        _y_ticks(top + 0.5, integer=True),
        lambda v: f"{v:g}",
    )
    for held in tl.held:
        if held.window is None or held.value is None:
            continue
        start, end = held.window
        if start >= axis.end:
            continue
        colour = _verdict_colour(held.verdict)
        y = _f(chart.y(held.value))
        x0, x1 = _f(axis.x(start)), _f(axis.x(min(end, axis.end)))
        label = f"{_COMPARATORS.get(held.comparator, held.comparator)} {held.value:g}"
        chart.body.append(
            f'<g class="window"><title>{_esc(held.text)} (window {_offset(start)} to '
            f"{_offset(end)})</title>"
            f'<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="{colour}" stroke-width="1.2"'
            ' stroke-dasharray="2 3" stroke-opacity="0.9"/>'
            f'<text x="{x0}" dx="3" y="{y}" dy="-3" class="wlabel" fill="{colour}">'
            f"{_esc(label)}</text></g>"
        )
    if tl.replicas:
        end = axis.end if tl.replicas_lost_at is None else min(tl.replicas_lost_at, axis.end)
        for name, index, dash in (("desired", 2, "6 3"), ("ready", 1, "")):
            steps: list[tuple[float, float, float]] = []
            for i, point in enumerate(tl.replicas):
                t_next = tl.replicas[i + 1][0] if i + 1 < len(tl.replicas) else end
                start, stop = max(point[0], 0.0), min(t_next, end)
                if stop > start or (i + 1 == len(tl.replicas) and stop >= start):
                    steps.append((start, max(stop, start), float(point[index])))
            chart.body.append(
                _line(
                    _step_path(steps, chart, axis),
                    _COLOURS[name],
                    width=2.2 if name == "ready" else 1.6,
                    dash=dash,
                    cls=f"series {name}",
                )
            )
        if tl.replicas_lost_at is not None and tl.replicas_lost_at < axis.end:
            x = _f(axis.x(tl.replicas_lost_at))
            chart.body.append(
                f'<text x="{x}" dx="4" y="{_f(_TOP + 12)}" class="wlabel" fill="#6e7781">'
                "replica source lost</text>"
            )
    else:
        detail = _dict(source).get("description") if source else None
        chart.message = "no replica data" + (f" ({_text(detail)})" if detail else "")
    for held in tl.held:
        if held.met_at is None or held.met_at > axis.end:
            continue
        value = held.observed if held.observed is not None else held.value
        if value is None:
            continue
        colour = _verdict_colour(held.verdict)
        chart.body.append(
            f'<circle class="held" cx="{_f(axis.x(held.met_at))}" cy="{_f(chart.y(value))}"'
            f' r="5" fill="{colour}" stroke="#fff" stroke-width="1.5">'
            f"<title>{_esc(held.text)}: held at {_offset(held.met_at)} ({value:g} replicas)"
            "</title></circle>"
        )
    return chart


def _verdict_colour(verdict: str) -> str:
    return {"passed": "#1a7f37", "failed": "#cf222e"}.get(verdict, "#6e7781")


def _truncate(text: str, width: float, char: float = 7.6) -> str:
    """`text` cut (with an ellipsis) to fit `width` viewBox units of bold 11.5px text."""
    limit = int(width // char)
    if len(text) <= limit:
        return text
    return "" if limit < 3 else text[: limit - 1] + "…"


def _bands(tl: _Timeline, axis: _Axis, top: float, height: float, hatch: str) -> list[str]:
    """The phase bands (alternating shades; a part planned but not run is hatched)."""
    out = []
    for i, phase in enumerate(tl.phases):
        if phase.start >= axis.end:
            continue
        x0 = axis.x(phase.start)
        x1 = axis.x(min(phase.end, axis.end))
        shade = "#f3f5f8" if i % 2 == 0 else "#e9edf2"
        out.append(
            f'<rect class="band" x="{_f(x0)}" y="{_f(top)}" width="{_f(max(x1 - x0, 0))}"'
            f' height="{_f(height)}" fill="{shade}"/>'
        )
        ran_end = phase.ran[1] if phase.ran is not None else phase.start
        if ran_end < phase.end - 1e-3 and ran_end < axis.end:
            xr = axis.x(ran_end)
            out.append(
                f'<rect x="{_f(xr)}" y="{_f(top)}" width="{_f(max(x1 - xr, 0))}"'
                f' height="{_f(height)}" fill="url(#{hatch})"/>'
            )
        if i > 0:
            out.append(
                f'<line x1="{_f(x0)}" y1="{_f(top)}" x2="{_f(x0)}" y2="{_f(top + height)}"'
                ' stroke="#d0d7de" stroke-width="1"/>'
            )
    return out


def _hatch(pattern_id: str) -> str:
    return (
        f'<pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#c5ccd4"'
        ' stroke-width="2"/></pattern>'
    )


def _markers_svg(tl: _Timeline, axis: _Axis, top: float, height: float) -> list[str]:
    out = []
    for marker in tl.markers:
        if marker.at > axis.end:
            continue
        x = _f(axis.x(marker.at))
        colour = _COLOURS[marker.kind]
        dash = ' stroke-dasharray="4 3"' if marker.kind == "kill" else ""
        width = "2" if marker.kind == "abort" else "1.5"
        out.append(
            f'<line class="marker {marker.kind}" x1="{x}" y1="{_f(top)}" x2="{x}"'
            f' y2="{_f(top + height)}" stroke="{colour}" stroke-width="{width}"{dash}>'
            f"<title>{_esc(marker.title)}</title></line>"
        )
    return out


def _chart_svg(chart: _Chart, tl: _Timeline, axis: _Axis, *, last: bool) -> str:
    height = _TOP + _INNER + (_AXIS if last else _GAP)
    hatch = f"hatch-{chart.key}"
    clip = f"clip-{chart.key}"
    parts = [
        (
            f'<svg class="chart" data-chart="{chart.key}" viewBox="0 0 {_f(_WIDTH)} {_f(height)}"'
            f' role="img" aria-label="{_esc(chart.title)}" xmlns="http://www.w3.org/2000/svg">'
        ),
        (
            f'<defs>{_hatch(hatch)}<clipPath id="{clip}"><rect x="{_f(_LEFT)}" y="{_f(_TOP - 2)}"'
            f' width="{_f(_PLOT)}" height="{_f(_INNER + 4)}"/></clipPath></defs>'
        ),
        *_bands(tl, axis, _TOP, _INNER, hatch),
    ]
    # grid and y axis
    for tick in chart.ticks:
        y = _f(chart.y(tick))
        parts.append(
            f'<line x1="{_f(_LEFT)}" y1="{y}" x2="{_f(_LEFT + _PLOT)}" y2="{y}"'
            f' stroke="{"#8c959f" if tick == 0 else "#d8dee4"}" stroke-width="1"/>'
        )
        parts.append(
            f'<text class="ytick" x="{_f(_LEFT - 6)}" y="{y}" dy="3.5" text-anchor="end">'
            f"{_esc(chart.tick_text(tick))}</text>"
        )
    for tick in axis.ticks():
        tx = _f(axis.x(tick))
        parts.append(
            f'<line x1="{tx}" y1="{_f(_TOP)}" x2="{tx}" y2="{_f(_TOP + _INNER)}" stroke="#d8dee4"'
            ' stroke-width="0.6" stroke-dasharray="2 3"/>'
        )
        if last:
            parts.append(
                f'<text class="xtick" x="{tx}" y="{_f(_TOP + _INNER + 15)}" text-anchor="middle">'
                f"{_esc(_time_label(tick, axis.end))}</text>"
            )
    # title and legend
    unit = f" ({chart.unit})" if chart.unit else ""
    parts.append(f'<text class="ctitle" x="{_f(_LEFT)}" y="18">{_esc(chart.title + unit)}</text>')
    x = _WIDTH - _RIGHT
    legend = []
    for label, colour, dash in reversed(chart.legend):
        width = 12 + 6.2 * len(label) + 18
        x -= width
        if dash == "dot":
            swatch = f'<circle cx="{_f(x + 7)}" cy="14" r="4" fill="{colour}"/>'
        else:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            swatch = (
                f'<line x1="{_f(x)}" y1="14" x2="{_f(x + 14)}" y2="14" stroke="{colour}"'
                f' stroke-width="2.4"{dash_attr}/>'
            )
        legend.append(f'{swatch}<text class="legend" x="{_f(x + 18)}" y="18">{_esc(label)}</text>')
    parts.extend(reversed(legend))
    parts.append(f'<g clip-path="url(#{clip})">')
    parts.extend(b for b in chart.body if b)
    parts.append("</g>")
    parts.extend(_markers_svg(tl, axis, _TOP, _INNER))
    if chart.message:
        parts.append(
            f'<text class="message" x="{_f(_LEFT + _PLOT / 2)}" y="{_f(_TOP + _INNER / 2)}"'
            f' text-anchor="middle">{_esc(chart.message)}</text>'
        )
    parts.append(
        f'<line class="cursor" x1="0" y1="{_f(_TOP)}" x2="0" y2="{_f(_TOP + _INNER)}"'
        ' stroke="#24292f" stroke-width="1" visibility="hidden"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _strip_svg(tl: _Timeline, axis: _Axis) -> str:
    """The phase names above the charts, and the kill and abort markers' labels."""
    band_h, height = 24.0, 42.0
    parts = [
        (
            f'<svg class="strip" viewBox="0 0 {_f(_WIDTH)} {_f(height)}" role="img"'
            ' aria-label="Phases and events" xmlns="http://www.w3.org/2000/svg">'
        ),
        f"<defs>{_hatch('hatch-strip')}</defs>",
        *_bands(tl, axis, 0, band_h, "hatch-strip"),
    ]
    for phase in tl.phases:
        if phase.start >= axis.end:
            continue
        x0, x1 = axis.x(phase.start), axis.x(min(phase.end, axis.end))
        name = phase.name + ("" if phase.ran is not None else " (not run)")
        label = _truncate(name, x1 - x0 - 6)
        parts.append(
            f'<text class="phase" x="{_f((x0 + x1) / 2)}" y="16" text-anchor="middle">'
            f"<title>{_esc(name)}: planned {_offset(phase.start)} to {_offset(phase.end)}"
            f"</title>{_esc(label)}</text>"
        )
    placed: list[float] = []
    for marker in sorted(tl.markers, key=lambda m: m.at):
        if marker.at > axis.end:
            continue
        x = axis.x(marker.at)
        colour = _COLOURS[marker.kind]
        anchor, dx = ("end", -6) if x > _WIDTH - 80 else ("start", 6)
        # A label that would overlap the previous one is left out (the marker keeps its title).
        crowded = any(abs(p - x) < 44 for p in placed)
        label = (
            ""
            if crowded
            else f'<text x="{_f(x)}" dx="{dx}" y="{_f(band_h + 13)}" text-anchor="{anchor}"'
            f' class="mlabel {marker.kind}">{_esc(marker.label)}</text>'
        )
        if not crowded:
            placed.append(x)
        parts.append(
            f'<g class="marker-label {marker.kind}"><title>{_esc(marker.title)}</title>'
            f'<path d="M{_f(x - 4.5)} {_f(band_h)}L{_f(x + 4.5)} {_f(band_h)}L{_f(x)} '
            f'{_f(band_h + 7)}Z" fill="{colour}"/>{label}</g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _timeline_html(document: Mapping[str, Any], tl: _Timeline) -> tuple[str, dict[str, Any]]:
    """The stacked charts and the data the hover read-out needs."""
    if tl.end <= 0:
        return (
            '<p class="empty">No load ran, so there is nothing to chart.</p>',
            {},
        )
    axis = _Axis(tl.end)
    source = document.get("replica_source")
    charts = [
        _rate_chart(tl, axis),
        _latency_chart(tl, axis),
        _errors_chart(tl, axis),
        _replica_chart(tl, axis, source if isinstance(source, dict) else None),
    ]
    body = [_strip_svg(tl, axis)]
    body.extend(
        _chart_svg(chart, tl, axis, last=i == len(charts) - 1) for i, chart in enumerate(charts)
    )
    data = {
        "left": _LEFT,
        "plot": _PLOT,
        "width": _WIDTH,
        "end": axis.end,
        "seconds": {
            str(s.second): [s.scheduled, s.sent, s.failed, s.dropped, s.p50, s.p95, s.p99]
            for s in tl.seconds
        },
        "targets": [[p.target, p.start, p.end] for p in tl.phases],
        "phases": [[p.name, p.start, p.end] for p in tl.phases],
        "replicas": [list(p) for p in tl.replicas],
    }
    return '<div class="timeline" id="timeline">' + "".join(body) + "</div>", data


# ------------------------------------------------------------------------------------------
# Tables and the header

_VERDICT_CLASS = {
    "passed": "ok",
    "failed": "bad",
    "aborted": "warn",
    "error": "err",
    "not_judged": "muted",
}
_VERDICT_TEXT = {"not_judged": "not judged"}
_EXIT_MEANING = {
    0: "every expectation passed",
    1: "an expectation failed",
    2: "usage error or invalid scenario",
    3: "aborted",
    4: "infrastructure error or not judged",
}


def _badge(verdict: object) -> str:
    text = _text(verdict or "unknown")
    cls = _VERDICT_CLASS.get(text, "muted")
    return f'<span class="badge {cls}">{_esc(_VERDICT_TEXT.get(text, text))}</span>'


def _expectations_html(document: Mapping[str, Any]) -> str:
    items = [_dict(e) for e in _list(document.get("expectations"))]
    if not items:
        why = " (the run stopped before judging)" if document.get("error") else ""
        return f'<p class="empty">No expectations were judged{_esc(why)}.</p>'
    counts: dict[str, int] = {}
    for e in items:
        key = _text(e.get("verdict", "unknown"))
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(
        f"{n} {_VERDICT_TEXT.get(k, k)}" for k, n in sorted(counts.items(), key=lambda kv: kv[0])
    )
    rows = []
    for e in items:
        kind = _text(e.get("kind", ""))
        comparator, expected = split_expected(kind, e.get("expected"))
        observed = expectation_value(kind, _num(e.get("observed")))
        if _num(e.get("observed")) is None:
            observed = _DASH
        met = _num(e.get("met_at_s"))
        window_s = _list(e.get("window_s"))
        scope = _text(e.get("scope", ""))
        if met is None:
            held = _DASH
        elif window_s:
            held = f"at {_offset(met)}"
        else:
            held = f"after {_duration(met)}" if scope in {"before", "after"} else _offset(met)
        window = _DASH
        if len(window_s) == 2 and _num(window_s[0]) is not None and _num(window_s[1]) is not None:
            window = f"{_offset(float(window_s[0]))} → {_offset(float(window_s[1]))}"
        comparator_text = _COMPARATORS.get(comparator, comparator)
        expected_text = f"{comparator_text} {expected}".strip()
        rows.append(
            "<tr>"
            f"<td>{_badge(e.get('verdict'))}</td>"
            f'<td class="scope">{_esc(scope)}</td>'
            f'<td class="etext"><code>{_esc(e.get("text", ""))}</code></td>'
            f'<td class="num">{_esc(observed)}</td>'
            f'<td class="num">{_esc(expected_text)}</td>'
            f'<td class="num">{_esc(held)}</td>'
            f'<td class="num">{_esc(window)}</td>'
            f'<td class="detail">{_esc(e.get("detail") or "")}</td>'
            "</tr>"
        )
    return (
        f'<p class="sub">{_esc(summary)}</p>'
        '<div class="tablewrap"><table class="grid expectations"><thead><tr>'
        "<th>verdict</th><th>scope</th>"
        "<th>expectation</th><th>observed</th><th>expected</th><th>held</th><th>window</th>"
        "<th>detail</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
    )


def _phases_html(document: Mapping[str, Any]) -> str:
    items = [_dict(p) for p in _list(document.get("phases"))]
    if not items:
        return '<p class="empty">No phases.</p>'
    rows = []
    for p in items:
        latency = _dict(p.get("latency_ms"))
        start, end = _num(p.get("start_s")), _num(p.get("end_s"))
        planned = f"{_offset(start)} → {_offset(end)}" if start is not None else _DASH
        ran_s = _list(p.get("ran_s"))
        if not p.get("ran") or len(ran_s) != 2:
            ran = '<span class="badge muted">not run</span>'
        else:
            r0, r1 = _num(ran_s[0]), _num(ran_s[1])
            ran = _esc(f"{_offset(r0)} → {_offset(r1)}")
            if r1 is not None and end is not None and r1 + 1e-3 < end:
                ran += ' <span class="badge warn">cut short</span>'
        rows.append(
            "<tr>"
            f'<td class="pname">{_esc(p.get("name", "?"))}</td>'
            f'<td class="shape"><code>{_esc(p.get("shape") or "")}</code></td>'
            f'<td class="num">{_esc(planned)}</td>'
            f'<td class="num">{ran}</td>'
            f'<td class="num">{_rate(p.get("target_rate"))}</td>'
            f'<td class="num">{_rate(p.get("achieved_rate"))}</td>'
            f'<td class="num">{_count(p.get("scheduled"))}</td>'
            f'<td class="num">{_count(p.get("sent"))}</td>'
            f'<td class="num">{_count(p.get("succeeded"))}</td>'
            f'<td class="num{" hot" if _int(p.get("failed")) else ""}">'
            f"{_count(p.get('failed'))}</td>"
            f'<td class="num{" hot" if _int(p.get("dropped")) else ""}">'
            f"{_count(p.get('dropped'))}</td>"
            f'<td class="num">{_esc(_ms(latency.get("p50")))}</td>'
            f'<td class="num">{_esc(_ms(latency.get("p95")))}</td>'
            f'<td class="num">{_esc(_ms(latency.get("p99")))}</td>'
            f'<td class="num">{_esc(_ms(latency.get("max")))}</td>'
            "</tr>"
        )
    return (
        '<div class="tablewrap"><table class="grid phases"><thead><tr>'
        "<th>phase</th><th>shape</th><th>planned</th>"
        "<th>ran</th><th>target/s</th><th>achieved/s</th><th>scheduled</th><th>sent</th>"
        "<th>ok</th><th>failed</th><th>dropped</th><th>p50</th><th>p95</th><th>p99</th>"
        "<th>max</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
    )


_SAFE_URL = re.compile(r"^https?://[^\s\"'<>`]+$", re.IGNORECASE)


def _trace_link(grafana_url: str, trace_id: str) -> str:
    """Grafana Explore on the run's trace (the same link as the end-of-run summary's)."""
    try:
        from nimbus_scenarios.telemetry.links import explore_link
    except ImportError:  # a build without the telemetry stage: Grafana's front page
        return grafana_url
    return explore_link(grafana_url, trace_id)


def _grafana_link(document: Mapping[str, Any]) -> tuple[str, str] | None:
    """The `grafana` fact: a link to the trace (or to Grafana); a URL that is not http(s) is
    shown as text, never made a link."""
    grafana = document.get("grafana_url")
    if not isinstance(grafana, str) or not grafana:
        return None
    if not _SAFE_URL.match(grafana):
        return ("grafana", f"<code>{_esc(grafana)}</code>")
    trace = document.get("trace_id")
    if isinstance(trace, str) and re.fullmatch(r"[0-9a-fA-F]{16,32}", trace):
        href, text = _trace_link(grafana, trace), "open the trace in Grafana"
    else:
        href, text = grafana, "open Grafana"
    return (
        "grafana",
        f'<a href="{_esc(href)}" rel="noopener noreferrer" target="_blank">{_esc(text)}</a>',
    )


def _facts_html(document: Mapping[str, Any]) -> str:
    facts: list[tuple[str, str]] = []
    code = document.get("exit_code")
    meaning = _EXIT_MEANING.get(code) if isinstance(code, int) else None
    facts.append(("run id", f"<code>{_esc(document.get('run_id', '?'))}</code>"))
    facts.append(
        (
            "exit code",
            _esc(f"{code}" + (f" ({meaning})" if meaning else "")) if code is not None else _DASH,
        )
    )
    facts.append(("duration", _esc(_duration(_num(document.get("duration_s"))))))
    if document.get("started_at"):
        facts.append(("started", _esc(str(document["started_at"]).replace("T", " ")[:19] + " UTC")))
    facts.append(("target", f"<code>{_esc(document.get('target') or _DASH)}</code>"))
    trace = document.get("trace_id")
    facts.append(("trace id", f"<code>{_esc(trace)}</code>" if trace else _DASH))
    link = _grafana_link(document)
    if link is not None:
        facts.append(link)
    params = _dict(document.get("params"))
    if params:
        facts.append(
            (
                "params",
                " ".join(f"<code>{_esc(k)}={_esc(v)}</code>" for k, v in sorted(params.items())),
            )
        )
    if document.get("tool_version"):
        facts.append(("tool", _esc(f"nimbus-scenarios {document['tool_version']}")))
    return (
        '<dl class="facts">'
        + "".join(f"<div><dt>{_esc(k)}</dt><dd>{v}</dd></div>" for k, v in facts)
        + "</dl>"
    )


def _tiles_html(document: Mapping[str, Any]) -> str:
    totals = _dict(document.get("totals"))
    if not totals:
        return ""
    sent = _int(totals.get("sent"))
    failed = _int(totals.get("failed"))
    done = failed + _int(totals.get("succeeded"))
    latency = _dict(totals.get("latency_ms"))
    replicas = _replicas(document)
    tiles = [
        ("sent", _count(sent)),
        ("failed", f"{_count(failed)}" + (f" ({100 * failed / done:.1f}%)" if done else "")),
        ("dropped", _count(totals.get("dropped"))),
        ("p50", _ms(latency.get("p50"))),
        ("p95", _ms(latency.get("p95"))),
        ("p99", _ms(latency.get("p99"))),
    ]
    if replicas:
        tiles.append(("peak ready", str(max(p[1] for p in replicas))))
    return (
        '<div class="tiles">'
        + "".join(
            f'<div class="tile"><div class="tv">{_esc(v)}</div><div class="tk">{_esc(k)}</div>'
            "</div>"
            for k, v in tiles
        )
        + "</div>"
    )


def _alerts_html(document: Mapping[str, Any]) -> str:
    parts = []
    if document.get("error"):
        parts.append(
            '<div class="alert err"><strong>Infrastructure error.</strong> '
            f"{_esc(document['error'])}</div>"
        )
    abort = _dict(document.get("abort"))
    if abort:
        at = _num(abort.get("at_s"))
        when = f" at {_offset(at)}" if at is not None else ""
        parts.append(
            f'<div class="alert warn"><strong>Aborted{_esc(when)}.</strong> '
            f"{_esc(abort.get('reason') or '')}</div>"
        )
    source = _dict(document.get("replica_source"))
    lost = _num(source.get("lost_at_s"))
    if lost is not None:
        parts.append(
            f'<div class="alert warn"><strong>Replica source lost at {_esc(_offset(lost))}.'
            f"</strong> {_esc(source.get('description') or '')}</div>"
        )
    return "".join(parts)


def _events_html(document: Mapping[str, Any]) -> str:
    items = []
    for marker in _markers(document):
        items.append(f'<li><span class="dot {marker.kind}"></span>{_esc(marker.title)}</li>')
    for item in _list(document.get("cleanup")):
        entry = _dict(item)
        status = entry.get("status")
        result = entry.get("error") or (f"status {status}" if status is not None else "done")
        items.append(
            f'<li><span class="dot cleanup"></span>cleanup {_esc(entry.get("request", "?"))}: '
            f"{_esc(result)}</li>"
        )
    for note in _list(document.get("notes")):
        items.append(f'<li><span class="dot note"></span>{_esc(note)}</li>')
    if not items:
        return ""
    return '<section><h2>Events</h2><ul class="events">' + "".join(items) + "</ul></section>"


# ------------------------------------------------------------------------------------------
# The page

_ASSETS = "assets"


@functools.cache
def _asset(name: str) -> str:
    """A static file of the report (shipped in the package), with its final newline removed."""
    return (
        (resources.files(__package__ or "nimbus_scenarios.report") / _ASSETS / name)
        .read_text(encoding="utf-8")
        .rstrip("\n")
    )


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _json_for_script(data: Mapping[str, Any]) -> str:
    """JSON that cannot end its `<script>` element or open markup inside it."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(document: Mapping[str, Any]) -> str:
    """The self-contained HTML report of one results document."""
    scenario = _text(document.get("scenario", "?"))
    tl = _timeline(document)
    timeline, data = _timeline_html(document, tl)
    source = document.get("scenario_source")
    source_html = (
        "<section><details><summary>Scenario source</summary>"
        f'<pre class="source"><code>{_esc(source)}</code></pre></details></section>'
        if isinstance(source, str) and source
        else ""
    )
    csp = (
        "default-src 'none'; "
        f"style-src {_csp_hash(_asset('report.css'))}; "
        f"script-src {_csp_hash(_asset('report.js'))}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    title = f"{scenario} · {_text(document.get('verdict', '?'))} · nimbus-scenarios"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_esc(csp)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{_esc(title)}</title>",
        f"<style>{_asset('report.css')}</style>",
        "</head><body><main>",
        '<header class="top"><p class="kicker">nimbus-scenarios run report</p>',
        f'<div class="title"><h1>{_esc(scenario)}</h1>{_badge(document.get("verdict"))}</div>',
        _facts_html(document),
        _alerts_html(document),
        _tiles_html(document),
        "</header>",
        "<section><h2>Timeline</h2>",
        timeline,
        "</section>",
        "<section><h2>Expectations</h2>",
        _expectations_html(document),
        "</section>",
        "<section><h2>Phases</h2>",
        _phases_html(document),
        "</section>",
        _events_html(document),
        source_html,
        f"<footer>results schema {_esc(document.get('schema_version', '?'))}"
        + (
            f" · scenario sha256 <code>{_esc(str(document['scenario_hash'])[:16])}</code>"
            if document.get("scenario_hash")
            else ""
        )
        + "</footer>",
        "</main>",
        '<div id="tip" role="tooltip"></div>',
    ]
    if data:
        parts.append(
            f'<script type="application/json" id="nimbus-data">{_json_for_script(data)}</script>'
        )
        parts.append(f"<script>{_asset('report.js')}</script>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------
# Files


def write_reports(
    document: Mapping[str, Any],
    html_path: Path | None,
    junit_path: Path | None,
) -> list[Path]:
    """Render the HTML and/or JUnit report and write each atomically; the paths written.

    Both are rendered before either is written, so a rendering error writes nothing.
    """
    from nimbus_scenarios.report.junit import render_junit

    outputs: list[tuple[Path, str]] = []
    if html_path is not None:
        outputs.append((Path(html_path), render_html(document)))
    if junit_path is not None:
        outputs.append((Path(junit_path), render_junit(document)))
    return [write_atomic(path, text) for path, text in outputs]

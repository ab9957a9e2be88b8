"""The chart kit: coordinates, ticks, paths, and text escaped on the way in."""

from __future__ import annotations

import pytest
from markupsafe import Markup

from nimbus_scenarios.report import svg


def test_numbers_are_short() -> None:
    """Coordinates keep at most two decimals and drop trailing zeros and negative zero."""
    assert svg.num(12.5) == "12.5"
    assert svg.num(3.0) == "3"
    assert svg.num(1 / 3) == "0.33"
    assert svg.num(-0.001) == "0"


@pytest.mark.parametrize(
    ("top", "integer", "ticks"),
    [
        (10.0, False, (0.0, 2.5, 5.0, 7.5, 10.0)),
        (3.5, True, (0.0, 1.0, 2.0, 3.0, 4.0)),
        (0.0, False, (0.0, 0.25, 0.5, 0.75, 1.0)),
        (float("nan"), False, (0.0, 0.25, 0.5, 0.75, 1.0)),
    ],
)
def test_y_ticks(top: float, integer: bool, ticks: tuple[float, ...]) -> None:
    """Four or five round ticks reach at least the top; whole numbers when asked."""
    assert svg.y_ticks(top, integer=integer) == ticks


def test_time_axis_maps_and_clamps() -> None:
    """Run offsets map onto the plot between the margins; outside values are clamped."""
    axis = svg.TimeAxis(60.0)
    assert axis.x(0) == svg.LEFT
    assert axis.x(60) == svg.LEFT + svg.PLOT
    assert axis.x(-5) == svg.LEFT
    assert axis.x(600) == svg.LEFT + svg.PLOT
    assert axis.ticks() == (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0)
    assert len(svg.TimeAxis(7200.0).ticks()) <= 11


@pytest.mark.parametrize("end", [86_400.0, 7 * 86_400.0, 2.0**53])
def test_a_long_axis_still_has_about_ten_ticks(end: float) -> None:
    """A day, a week, or an offset of 2^53 s claimed by a hostile document: at most 11 ticks,
    whole multiples of two hours (the last used to give one tick per two hours: billions)."""
    ticks = svg.TimeAxis(end).ticks()
    assert 2 <= len(ticks) <= 11
    assert all(t % 7200 == 0 for t in ticks)


def test_time_labels_short_and_long() -> None:
    """Short axes label seconds; long ones m:ss or h:mm:ss."""
    assert svg.time_label(45, 60) == "45s"
    assert svg.time_label(125, 600) == "2:05"
    assert svg.time_label(3600, 7200) == "1:00:00"


def test_value_axis_flips_and_clamps() -> None:
    """Zero is at the plot's bottom, the top tick at its top; values beyond are clamped."""
    scale = svg.ValueAxis((0.0, 5.0, 10.0))
    assert scale.y(0) == svg.TOP + svg.INNER
    assert scale.y(10) == svg.TOP
    assert scale.y(50) == svg.TOP
    assert scale.y(-1) == svg.TOP + svg.INNER


def test_paths_break_join_and_skip() -> None:
    """None breaks a line; a run starting where the last ended joins it; empty bars vanish."""
    assert svg.path_d([(0, 0), (1, 1), None, (2, 2), (3, 3)]) == "M0 0L1 1M2 2L3 3"
    assert svg.runs_d([(0, 5, 10, 5), (10, 2, 20, 2), (30, 1, 40, 1)]) == (
        "M0 5L10 5L10 2L20 2M30 1L40 1"
    )
    assert svg.rects_d([(0, 10, 5, 4), (5, 10, 8, 10)]) == "M0 10V4H5V10Z"


def test_text_and_titles_are_escaped() -> None:
    """Text and titles that go into the markup are escaped; the result is Markup."""
    label = svg.text(1, 2, "<b>&", title="</title><script>")
    assert isinstance(label, Markup)
    assert "<b>" not in label
    assert "&lt;b&gt;&amp;" in label
    assert "&lt;/title&gt;&lt;script&gt;" in label
    dot = svg.circle(1, 2, 5, "#fff", cls="held", title='"onload="x')
    assert 'onload="x' not in dot
    framed = svg.frame(Markup("<g/>"), height=10, label='a"b', cls="chart", key="rate")
    assert 'aria-label="a&#34;b"' in framed
    assert 'data-chart="rate"' in framed


def test_empty_lines_draw_nothing() -> None:
    """A stroke or fill with no path data is no element at all."""
    assert svg.stroke("", "#000") == ""
    assert svg.fill("", "#000") == ""
    assert svg.stroke("M0 0L1 1", "#000", dash="5 4", cls="series").startswith(
        '<path class="series" d="M0 0L1 1"'
    )

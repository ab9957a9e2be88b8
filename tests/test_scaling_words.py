"""`scaling_words`: a scale event as one line (every step seen, and each one missing), an
autoscaler metric against its target, and the time and number formats they use."""

from __future__ import annotations

import dataclasses
import math

import pytest

from nimbus_scenarios.scaling import MetricStatus, ScaleEvent, ScalingRecord, TargetKind
from nimbus_scenarios.scaling_words import (
    describe_event,
    metric_text,
    number,
    run_time,
    scaling_lines,
    seconds,
)

FULL = ScaleEvent(
    from_replicas=3,
    to_replicas=5,
    decided_s=41.2,
    load_change='phase "ramp" started',
    load_change_s=22.0,
    metric="rps per replica",
    metric_value=7.2,
    metric_target=5.0,
    metric_above_s=38.0,
    pods_created_s=43.0,
    ready_s=63.4,
    pod_startups_s=(14.2, 21.6),
)


def test_every_step_seen() -> None:
    """The issue's sentence: the rise and when, after which load change, the metric against
    its target, when pods were created, when ready caught up and each pod's start-up."""
    assert describe_event(FULL) == (
        '+2 desired (3 -> 5) at 0:41, 19 s after phase "ramp" started: '
        "rps per replica 7.2 > 5 since 0:38; pods created at 0:43; "
        "ready at 1:03, pods took 14 s and 22 s"
    )


@pytest.mark.parametrize(
    ("changes", "pods_watched", "expected", "absent"),
    [
        ({"metric": None, "metric_value": None, "metric_target": None, "metric_above_s": None},
         True, "no autoscaler metric seen", "rps per replica"),
        ({"metric_value": None}, True, "rps per replica above 5 since 0:38", "7.2"),
        ({"metric_above_s": None}, True, "rps per replica 7.2 > 5; pods", "since"),
        ({"pods_created_s": None, "pod_startups_s": ()}, False, "; pods not watched; ready at 1:03",
         "took"),
        ({"pods_created_s": None, "pod_startups_s": ()}, True, "; no new pod seen; ready at 1:03",
         "took"),
        ({"ready_s": None, "pod_startups_s": ()}, True, "; not ready by the end", "ready at"),
        ({"ready_s": None, "pod_startups_s": (14.2,)}, True,
         "; not ready by the end (the pod took 14 s)", "ready at"),
        ({"load_change": None, "load_change_s": None}, True,
         "at 0:41, no load change seen before it:", "after"),
        ({"load_change_s": None}, True, 'at 0:41, after phase "ramp" started:', " s after"),
    ],
)  # fmt: skip
def test_each_missing_step_is_named(
    changes: dict[str, object], pods_watched: bool, expected: str, absent: str
) -> None:
    """A step not seen is named for what it is, and its value is not made up."""
    text = describe_event(dataclasses.replace(FULL, **changes), pods_watched=pods_watched)  # type: ignore[arg-type]
    assert expected in text
    assert absent not in text


def test_nothing_but_the_decision() -> None:
    """A rise with no other step seen still says when, and names every missing step."""
    bare = ScaleEvent(from_replicas=1, to_replicas=2, decided_s=3725.0)
    assert describe_event(bare, pods_watched=False) == (
        "+1 desired (1 -> 2) at 1:02:05, no load change seen before it: "
        "no autoscaler metric seen; pods not watched; not ready by the end"
    )


def test_many_pods_are_given_as_a_range() -> None:
    """Up to four start-ups are listed; more are given as the fastest to the slowest."""
    four = describe_event(dataclasses.replace(FULL, pod_startups_s=(3.0, 4.5, 12.0, 20.0)))
    assert four.endswith("pods took 3.0 s, 4.5 s, 12 s and 20 s")
    many = describe_event(dataclasses.replace(FULL, pod_startups_s=(9.0, 3.04, 30.0, 12.0, 150.0)))
    assert many.endswith("5 pods took 3.0 s to 2 min 30 s")
    one = describe_event(dataclasses.replace(FULL, pod_startups_s=(0.42,)))
    assert one.endswith("ready at 1:03, the pod took 0.4 s")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "0:00"),
        (41.4, "0:41"),
        (59.6, "1:00"),
        (725.0, "12:05"),
        (3725.0, "1:02:05"),
        (-3.2, "-0:03"),
        (-0.2, "0:00"),
        (None, "-"),
        (math.nan, "-"),
        (math.inf, "-"),
    ],
)
def test_run_times(value: float | None, expected: str) -> None:
    """Run offsets read as a clock; before the origin they are negative; nothing is a dash."""
    assert run_time(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "0.0 s"),
        (0.42, "0.4 s"),
        (9.9, "9.9 s"),
        (9.96, "10 s"),
        (19.4, "19 s"),
        (119.4, "119 s"),
        (125.0, "2 min 05 s"),
        (-2.5, "-2.5 s"),
        (None, "-"),
        (math.nan, "-"),
    ],
)
def test_durations(value: float | None, expected: str) -> None:
    """Durations: a decimal below 10 s, whole seconds to two minutes, minutes after."""
    assert seconds(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5.0, "5"), (7.25, "7.25"), (1 / 3, "0.333"), (12.345, "12.3"), (1234.5, "1234"),
     (-2.0, "-2"), (None, "-"), (math.inf, "-")],
)  # fmt: skip
def test_numbers(value: float | None, expected: str) -> None:
    """A metric's numbers: whole as such, else three significant digits, whole from 100."""
    assert number(value) == expected


def test_metric_against_its_target() -> None:
    """Current over target, `%` for utilisation, a dash while the autoscaler has no value."""
    rps = MetricStatus("rps per replica", TargetKind.AVERAGE_VALUE, 5.0, 7.2)
    cpu = MetricStatus("cpu", TargetKind.UTILIZATION, 80.0, 72.0)
    pending = MetricStatus("s0-prometheus", TargetKind.VALUE, 100.0)
    assert metric_text(rps) == "rps per replica 7.2/5"
    assert metric_text(cpu) == "cpu 72%/80%"
    assert metric_text(pending) == "s0-prometheus -/100"


def test_the_summary_section() -> None:
    """A line per event under `scale events:`, the notes after; none said as such."""
    record = ScalingRecord(
        pods_watched=False,
        events=(FULL, dataclasses.replace(FULL, from_replicas=5, to_replicas=6, decided_s=90.0)),
        notes=("pods were not watched: no permission to watch pods",),
    )
    lines = scaling_lines(record)
    assert lines[0] == "scale events:"
    assert lines[1].startswith("  +2 desired (3 -> 5) at 0:41")
    assert lines[2].startswith("  +1 desired (5 -> 6) at 1:30")
    assert lines[3] == "note: pods were not watched: no permission to watch pods"
    assert scaling_lines(ScalingRecord()) == ["scale events: none (desired replicas never rose)"]

"""The `scaling` section in the HTML report: its series on the timeline's axis
(`report.scaling_timeline`), its charts (`report.scaling_charts`) and the Scale events table
(`report.scale_events`)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from nimbus_scenarios.report.html import render_html
from nimbus_scenarios.report.scaling_timeline import (
    MAX_METRIC_CHARTS,
    MAX_POD_ROWS,
    DesiredStep,
    MetricStep,
    ScalingTimeline,
)
from nimbus_scenarios.report.timeline import Timeline, build_timeline
from nimbus_scenarios.scaling import AutoscalerSample, MetricStatus, PodRecord, TargetKind
from tests.support.results import (
    BLIND_NOTE,
    POD,
    POD_BEFORE,
    POD_REPLACEMENT,
    TRIGGER,
    blind_scaling,
    full_results,
    full_scaling,
    scaling_results,
)


def _chart(page: str, key: str) -> str:
    return page.split(f'data-chart="{key}"')[1].split("</svg>", maxsplit=1)[0]


def _height(page: str, key: str) -> float:
    found = re.search(rf'data-chart="{key}" viewBox="0 0 1000 ([\d.]+)"', page)
    assert found is not None
    return float(found.group(1))


def _section(page: str) -> str:
    return page.split('<section class="scaling">')[1].split("</section>", maxsplit=1)[0]


def _scaling(**changes: object) -> tuple[Timeline, ScalingTimeline]:
    timeline = build_timeline(scaling_results(scaling=full_scaling(**changes)))
    assert timeline.scaling is not None
    return timeline, timeline.scaling


def test_each_metric_is_its_value_and_target_over_time() -> None:
    """A metric holds its value until the next sample; equal neighbours are one step; before
    the autoscaler had a value, the step has none (the line breaks)."""
    timeline, scaling = _scaling()
    trigger, cpu = scaling.metrics
    assert (trigger.name, trigger.kind, trigger.unit) == (
        TRIGGER,
        TargetKind.AVERAGE_VALUE,
        "per replica",
    )
    assert cpu.unit == "% of requests"
    assert trigger.steps[:4] == (
        MetricStep(0.0, 3.0, None, 5.0),
        MetricStep(3.0, 12.0, 1.2, 5.0),
        MetricStep(12.0, 20.0, 6.1, 5.0),  # 12.0 and 14.2 read the same
        MetricStep(20.0, 30.9, 4.4, 5.0),
    )
    assert trigger.steps[-1] == MetricStep(55.4, timeline.end, 0.0, 5.0)
    assert scaling.metrics_left_out == 0


def test_desired_replicas_and_decisions_follow_the_autoscaler() -> None:
    """The autoscaler's desired replicas are steps (from the axis' start); each scale event is
    a decision at its moment, titled with its metric against the target."""
    timeline, scaling = _scaling()
    assert scaling.desired == (
        DesiredStep(0.0, 14.2, 1),
        DesiredStep(14.2, 31.5, 2),
        DesiredStep(31.5, 52.0, 3),
        DesiredStep(52.0, timeline.end, 1),
    )
    assert [(d.at, d.from_replicas, d.to_replicas) for d in scaling.decisions] == [
        (14.2, 1, 2),
        (31.5, 2, 3),
    ]
    assert scaling.decisions[0].title == "desired 1 \u2192 2 (+1) at +14.2s: s0-prometheus 6.1 > 5"


def test_a_bar_per_pod_from_creation_to_ready_to_deletion() -> None:
    """A pod running before the run starts at 0 and runs to the axis' end; a killed pod ends
    where it was deleted; a restarted one is marked; every moment is in the title."""
    timeline, scaling = _scaling()
    bars = {bar.name: bar for bar in scaling.pods}
    assert list(bars) == [POD_BEFORE, "consumer-7d9f8b6c5-d3e4f", POD, POD_REPLACEMENT]
    before = bars[POD_BEFORE]
    assert (before.start, before.end, before.ready) == (0.0, timeline.end, -294.0)
    killed = bars[POD]
    assert (killed.start, killed.ready, killed.end, killed.troubled) == (31.7, 36.9, 38.0, False)
    replacement = bars[POD_REPLACEMENT]
    assert replacement.troubled
    assert replacement.title == (
        f"pod {POD_REPLACEMENT}: created +38.1s; scheduled +38.2s; containers started +39.5s; "
        "ready +43.6s; deleted +52.3s; start-up 5.5s; 1 restart; terminated: OOMKilled"
    )
    assert scaling.pods_watched


def test_the_axis_reaches_the_last_scaling_moment() -> None:
    """A sample after the last request second and phase still lies on the axis."""
    late = AutoscalerSample(61.5, 1, 1)
    plain = build_timeline(full_results())
    timeline, _ = _scaling(autoscaler=(*full_scaling().autoscaler, late))
    assert plain.end < 61.5
    assert timeline.end == 61.5


def test_many_pods_and_metrics_are_capped() -> None:
    """At most `MAX_POD_ROWS` pods and `MAX_METRIC_CHARTS` metrics are drawn; the rest are
    counted (the pod chart's title says how many are shown)."""
    pods = tuple(
        PodRecord(f"p-{i:02d}", created=float(i % 50), ready=i % 50 + 2.0) for i in range(55)
    )
    metrics = tuple(MetricStatus(f"m{i}", TargetKind.VALUE, 10.0, float(i)) for i in range(6))
    _, scaling = _scaling(pods=pods, autoscaler=(AutoscalerSample(1.0, 2, 2, metrics),))
    assert len(scaling.pods) == MAX_POD_ROWS
    assert scaling.pods_left_out == 55 - MAX_POD_ROWS
    assert [m.name for m in scaling.metrics] == [f"m{i}" for i in range(MAX_METRIC_CHARTS)]
    assert scaling.metrics_left_out == 6 - MAX_METRIC_CHARTS
    page = render_html(scaling_results(scaling=full_scaling(pods=pods)))
    assert f"({MAX_POD_ROWS} of 55 pods shown)" in page
    assert _chart(page, "pods").count('<g class="pod">') == MAX_POD_ROWS


def test_the_charts_line_up_under_the_replica_chart() -> None:
    """A chart per metric and the pod chart come after the replica chart, framed alike; the
    replica chart adds the autoscaler's desired replicas and the decisions."""
    page = render_html(scaling_results())
    keys = re.findall(r'<svg class="chart" data-chart="([\w-]+)"', page)
    assert keys == ["rate", "latency", "errors", "replicas", "metric-0", "metric-1", "pods"]
    trigger = _chart(page, "metric-0")
    assert f"Trigger {TRIGGER}: value against target (per replica)" in trigger
    assert 'class="series target"' in trigger
    assert 'class="series metric"' in trigger
    assert ">75%</text>" in _chart(page, "metric-1")  # utilization ticks in percent
    replicas = _chart(page, "replicas")
    assert 'class="series autoscaler"' in replicas
    assert replicas.count('<g class="decision">') == 2
    pods = _chart(page, "pods")
    assert pods.count('<g class="pod">') == 4
    assert pods.count('class="restart"') == 1
    assert pods.count('class="deleted"') == 3
    assert ">g5h6i</text>" in pods  # the name's last part labels its row
    # the x axis' labels move under the pod chart, the last one
    assert 'class="xtick"' in pods
    assert 'class="xtick"' not in replicas
    assert page.count('class="marker kill"') == 7  # the kill crosses every chart


def test_the_pod_chart_grows_with_its_pods() -> None:
    """A row per pod: more pods, a taller chart (the other charts keep their height)."""
    few = render_html(scaling_results())
    pods = tuple(PodRecord(f"p-{i}", created=1.0 + i) for i in range(12))
    many = render_html(scaling_results(scaling=full_scaling(pods=pods)))
    assert _height(many, "pods") - _height(few, "pods") == pytest.approx(8 * 14.0)
    assert _height(many, "metric-0") == _height(few, "metric-0")


def test_hover_data_reads_the_autoscaler_and_the_metrics() -> None:
    """The hover read-out's data island holds the desired steps and each metric's steps."""
    page = render_html(scaling_results())
    data = page.split('id="nimbus-data">')[1].split("</script>", maxsplit=1)[0]
    assert '"autoscaler":[[0.0,14.2,1],[14.2,31.5,2]' in data
    assert f'"metrics":[["{TRIGGER}","per replica",[[0.0,3.0,null,5.0],[3.0,12.0,1.2,5.0]' in data


def test_scale_events_table_gives_each_step_and_the_gaps() -> None:
    """A row per scale event: each step's offset and how long after the step before it, the
    reaction, the time to ready and the pods' start-ups."""
    section = _section(render_html(scaling_results()))
    assert "2 scale events; 11 autoscaler samples recorded; 4 pods watched" in section
    first = section.split('<tr><th scope="row">')[1]
    assert first.startswith("+1 desired (1 \u2192 2)")
    cells = re.findall(r'<span class="num">([^<]*)</span>(?: <span class="after">([^<]*))?', first)
    assert cells == [
        ("+10.0s", ""),
        ("+12.0s", "2s later"),
        ("+14.2s", "2.2s later"),
        ("+14.4s", "200ms later"),
        ("+19.8s", "5.4s later"),
    ]
    assert "s0-prometheus 6.1 &gt; 5" in first
    assert 'phase "ramp" started'.replace('"', "&#34;") in first
    numbers = re.findall(r'<td class="num">([^<]*)</td>', first)
    assert numbers == ["4.2s", "9.8s", "5.4s"]  # reaction, to ready, start-ups


def test_missing_steps_are_named() -> None:
    """Without permission to watch pods, and with an event whose metric and readiness were
    not seen, the rows say what is missing and the note says why."""
    page = render_html(scaling_results(scaling=blind_scaling()))
    section = _section(page)
    assert "pods not watched" in section
    rows = section.split('<tr><th scope="row">')[1:]
    assert rows[0].count('class="step unseen"') == 1
    assert "pods were not watched" in rows[0]
    assert "no metric above its target was seen before the decision" in rows[1]
    assert "ready replicas did not reach 3 during the run" in rows[1]
    assert BLIND_NOTE.replace("'", "&#39;") in section
    assert "pods were not watched" in _chart(page, "pods")


def test_no_events_and_no_section() -> None:
    """A section without events says the replicas never rose; a document without a section has
    neither the table nor the scaling charts."""
    page = render_html(scaling_results(scaling=full_scaling(events=())))
    assert "Desired replicas never rose during the run." in _section(page)
    plain = render_html(full_results())
    assert "Scale events" not in plain
    assert 'data-chart="pods"' not in plain


def test_odd_values_render() -> None:
    """A metric with no value yet, a pod never ready nor created in view, and a pod deleted
    before the phases began render without an error."""
    record = full_scaling(
        autoscaler=(
            AutoscalerSample(2.0, None, None, (MetricStatus("q", TargetKind.VALUE, 3.0),)),
        ),
        pods=(PodRecord("never"), PodRecord("gone", created=-9.0, deleted=-2.0), PodRecord("x-")),
    )
    page = render_html(scaling_results(scaling=record))
    assert "no value yet" in _chart(page, "metric-0")
    assert _chart(page, "pods").count('<g class="pod">') == 2  # "gone" is not on the axis
    assert 'class="series autoscaler"' not in _chart(page, "replicas")
    results = scaling_results(scaling=dataclasses.replace(record, events=()))
    assert "Desired replicas never rose" in render_html(results)

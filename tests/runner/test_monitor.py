"""`runner.monitor` with a replica source that also records why it scaled
(`scaling.ScalingRecorder`): every autoscaler status reaches the listeners once, each pod's
creation, Ready, restart and deletion once (not those from before the run), and `Progress`
carries the latest metrics against their targets. Whole runs on a manual clock."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.events import PodChange, Progress, RunHandler
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.report.console import status_line
from nimbus_scenarios.runner import RunOptions, run_scenario
from nimbus_scenarios.runner.monitor import PodChanges
from nimbus_scenarios.scaling import (
    AutoscalerSample,
    Condition,
    MetricStatus,
    PodRecord,
    ScalingRecorder,
    TargetKind,
)
from tests.support.fakes import ScriptedReplicaSource, ScriptedTransport
from tests.support.play import URL

SCENARIO = """
scenario "s" {
  watch deployment "consumer"
  request work = GET "/work"
  phase "ramp" 30s { rate 1/s
    send work }
}
"""


def _rps(value: float) -> tuple[MetricStatus, ...]:
    return (MetricStatus("rps per replica", TargetKind.AVERAGE_VALUE, 5.0, value),)


ABLE = (Condition("AbleToScale", "True", "ReadyForNewScale"),)

AUTOSCALER = (
    AutoscalerSample(0.0, 1, 1, _rps(2.0), ABLE),
    AutoscalerSample(12.0, 1, 1, _rps(7.2), ABLE),
    AutoscalerSample(15.0, 3, 1, _rps(7.5), ABLE),
    AutoscalerSample(16.0, 3, 1, _rps(7.6), ABLE),
)

# (offset when the source saw it, the pod's record then): c-0 was there before the run.
PODS = (
    (0.0, PodRecord("c-0", created=-100.0, scheduled=-99.0, started=-95.0, ready=-90.0)),
    (16.0, PodRecord("c-1", created=15.5, scheduled=15.6)),
    (28.0, PodRecord("c-1", created=15.5, scheduled=15.6, started=20.0, ready=27.0)),
    (
        29.0,
        PodRecord("c-0", created=-100.0, ready=-90.0, restarts=1, terminations=("OOMKilled",)),
    ),
)


def _shift(pod: PodRecord, by: float) -> PodRecord:
    return dataclasses.replace(
        pod,
        **{
            name: getattr(pod, name) + by
            for name in ("created", "scheduled", "started", "ready", "deleted")
            if getattr(pod, name) is not None
        },
    )


@dataclass
class ScriptedRecorder(ScriptedReplicaSource):
    """A scripted replica source that also records the autoscaler's statuses and the pods,
    each appearing when its offset (from the source's start) has come."""

    autoscaler_script: Sequence[AutoscalerSample] = ()
    pod_script: Sequence[tuple[float, PodRecord]] = ()
    pods_watched: bool = True

    def _due(self, offset: float) -> bool:
        return self.started_at is not None and self.started_at + offset <= self.clock.now()

    @property
    def autoscaler_samples(self) -> list[AutoscalerSample]:
        """The script's statuses whose time has come, on the clock."""
        base = self.started_at or 0.0
        return [
            dataclasses.replace(s, at=base + s.at)
            for s in self.autoscaler_script
            if self._due(s.at)
        ]

    @property
    def pods(self) -> list[PodRecord]:
        """Each pod's latest record whose time has come, in the order first seen."""
        base = self.started_at or 0.0
        latest: dict[str, PodRecord] = {}
        for seen, pod in self.pod_script:
            if self._due(seen):
                latest[pod.name] = _shift(pod, base)
        return list(latest.values())


class Heard(RunHandler):
    """What the listeners were told about the autoscaler and the pods, and the progress."""

    def __init__(self) -> None:
        self.autoscaler: list[tuple[AutoscalerSample, float]] = []
        self.pods: list[tuple[str, PodChange, float]] = []
        self.progress_events: list[Progress] = []

    def autoscaler_changed(self, sample: AutoscalerSample, at_s: float) -> None:
        self.autoscaler.append((sample, at_s))

    def pod_changed(self, pod: PodRecord, change: PodChange, at_s: float) -> None:
        self.pods.append((pod.name, change, at_s))

    def progress(self, status: Progress) -> None:
        self.progress_events.append(status)


def _play(source: ScriptedReplicaSource, heard: Heard, clock: ManualClock) -> None:
    plan = compile_source(Source("t.scn", SCENARIO), watch_given=True)
    options = RunOptions(url=URL, progress_interval_s=10.0, install_signal_handlers=False)

    async def main() -> None:
        await clock.run(
            run_scenario(
                plan,
                options,
                source=source,
                transport=ScriptedTransport(clock),
                clock=clock,
                handlers=[heard],
                scenario_text=SCENARIO,
            )
        )

    asyncio.run(main())


def test_every_autoscaler_status_and_pod_change_is_heard_once() -> None:
    """Each recorded status once, at its run offset; the new pod's creation and Ready at theirs,
    the old pod's restart when seen; nothing for what the old pod did before the run."""
    clock = ManualClock()
    source = ScriptedRecorder(clock, [(0.0, 1, 1)], autoscaler_script=AUTOSCALER, pod_script=PODS)
    assert isinstance(source, ScalingRecorder)
    heard = Heard()
    _play(source, heard, clock)
    assert source.started_at == 0.0  # so offsets from the source's start are run offsets
    assert [(s.desired, s.metrics, at) for s, at in heard.autoscaler] == [
        (s.desired, s.metrics, s.at) for s in AUTOSCALER
    ]
    assert heard.pods[:2] == [("c-1", PodChange.CREATED, 15.5), ("c-1", PodChange.READY, 27.0)]
    name, change, at = heard.pods[2]
    assert (name, change) == ("c-0", PodChange.RESTARTED)
    assert 29.0 <= at < 29.25  # seen at the first poll after it was recorded
    assert len(heard.pods) == 3


def test_progress_carries_the_latest_metrics() -> None:
    """`Progress.metrics` is the latest status's metrics, and the status line shows them."""
    clock = ManualClock()
    source = ScriptedRecorder(clock, [(0.0, 1, 1)], autoscaler_script=AUTOSCALER, pod_script=PODS)
    heard = Heard()
    _play(source, heard, clock)
    by_second = {round(p.elapsed_s): p for p in heard.progress_events}
    assert by_second[10].metrics == _rps(2.0)
    assert by_second[20].metrics == _rps(7.6)
    assert "rps per replica 7.6/5" in status_line(by_second[20])


def test_a_source_without_scaling_records_tells_nothing_of_it() -> None:
    """A plain replica source: no autoscaler or pod events, and no metrics in progress."""
    clock = ManualClock()
    source = ScriptedReplicaSource(clock, [(0.0, 1, 1)])
    assert not isinstance(source, ScalingRecorder)
    heard = Heard()
    _play(source, heard, clock)
    assert heard.autoscaler == []
    assert heard.pods == []
    assert heard.progress_events
    assert all(p.metrics == () for p in heard.progress_events)


@pytest.mark.parametrize("since", [0.0, 50.0])
def test_pod_changes_are_news_once_and_only_from_since(since: float) -> None:
    """Creation, Ready and deletion are news once each, and only from `since` on; a restart is
    news when the count grows (counted from first sight for a pod from before `since`)."""
    changes = PodChanges(since=since)
    old = PodRecord("old", created=-10.0, ready=-5.0, restarts=2)
    new = PodRecord("new", created=60.0)
    assert changes.news([old, new], now=61.0) == [(new, PodChange.CREATED, 60.0)]
    assert changes.news([old, new], now=62.0) == []
    ready = dataclasses.replace(new, ready=70.0)
    restarted = dataclasses.replace(old, restarts=3, deleted=75.0)
    assert changes.news([restarted, ready], now=76.0) == [
        (ready, PodChange.READY, 70.0),
        (restarted, PodChange.DELETED, 75.0),
        (restarted, PodChange.RESTARTED, 76.0),
    ]
    assert changes.news([restarted, ready], now=77.0) == []
    crashed = PodRecord("crashed", created=80.0, restarts=1)
    assert changes.news([crashed], now=81.0) == [
        (crashed, PodChange.CREATED, 80.0),
        (crashed, PodChange.RESTARTED, 81.0),
    ]

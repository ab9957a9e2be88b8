"""The timeline model: where the axis ends, the planned target curve, replicas, markers, windows."""

from __future__ import annotations

import dataclasses

import pytest

from nimbus_scenarios.report.timeline import MarkerKind, TargetRun, build_timeline, target_runs
from nimbus_scenarios.results.model import KillResult, ShardInfo, Verdict
from tests.support.results import (
    aborted_results,
    full_results,
    infra_results,
    make_results,
    replica_source,
)

SHAPES = """\
scenario "shapes" {
  target "http://127.0.0.1:8000"
  request r = GET "/"
  phase "ramp" 10s {
    ramp 2/s -> 20/s
    send r
  }
  phase "steps" 8s {
    steps 2/s -> 8/s in 4
    send r
  }
  phase "users" 5s {
    users 3
    send r
  }
  phase "burst" 10s {
    burst 5 every 2s
    send r
  }
  phase "spike" 10s {
    rate 4/s
    spike 10/s for 2s at 4s
    send r
  }
}
"""


def _runs(timeline_runs: tuple[TargetRun, ...], start: float, end: float) -> list[TargetRun]:
    return [r for r in timeline_runs if start <= r.start and r.end <= end]


def test_ramp_target_rises_along_the_plan() -> None:
    """A ramp phase's target is one straight run from its start rate to its end rate."""
    (ramp,) = _runs(build_timeline(make_results(SHAPES)).target, 0, 10)
    assert (ramp.start, ramp.end, ramp.rate_start, ramp.rate_end) == (0, 10, 2, 20)
    assert ramp.rate_at(5) == pytest.approx(11)


def test_steps_spikes_bursts_and_closed_model() -> None:
    """Steps are stairs, a spike is a raised run, a burst its mean rate, `users` a gap."""
    target = build_timeline(make_results(SHAPES)).target
    assert [(r.start, r.rate_start) for r in _runs(target, 10, 18)] == [
        (10, 2),
        (12, 4),
        (14, 6),
        (16, 8),
    ]
    assert _runs(target, 18, 23) == []  # users: the rate follows the service
    assert _runs(target, 23, 33) == [TargetRun(23, 33, 2.5, 2.5)]  # 5 every 2 s
    assert [(r.start, r.end, r.rate_start) for r in _runs(target, 33, 43)] == [
        (33, 37, 4),
        (37, 39, 10),
        (39, 43, 4),
    ]


def test_target_matches_the_plans_rate() -> None:
    """Everywhere on the axis the target line equals `Plan.rate_at` (open-model phases)."""
    results = make_results(SHAPES)
    target = build_timeline(results).target
    for tenth in range(430):
        t = tenth / 10
        run = next((r for r in target if r.start <= t < r.end), None)
        expected = results.plan.rate_at(t)
        assert (run.rate_at(t) if run else 0.0) == pytest.approx(expected), t


def test_a_shard_draws_its_share_and_a_merged_document_the_whole_plan() -> None:
    """Shard 1 of 4 draws a quarter of the planned rate; a merged document (no shard) all of it."""
    shard = make_results(SHAPES, shard=ShardInfo(1, 4))
    timeline = build_timeline(shard)
    assert timeline.target_share == 0.25
    assert timeline.target[0].rate_end == pytest.approx(5.0)
    merged = dataclasses.replace(shard, shard=None)
    assert build_timeline(merged).target[0].rate_end == pytest.approx(20.0)
    assert build_timeline(merged).target_share == 1.0


def test_aborted_axis_ends_at_the_abort_and_cuts_the_target() -> None:
    """An aborted run's axis ends where things stopped (its last completion), not at the plan's
    end; so does its target line."""
    results = aborted_results()
    assert results.plan.phases_end_s == 11.0
    timeline = build_timeline(results)
    assert timeline.end == 4.0
    assert max(r.end for r in timeline.target) == 4.0
    assert [m.kind for m in timeline.markers] == [MarkerKind.ABORT]
    assert timeline.phases[1].ran == (2.001, 3.005)
    assert timeline.phases[2].ran is None
    assert timeline.replicas == ()


def test_run_stopped_at_preflight_is_empty() -> None:
    """Nothing ran: the timeline is empty (a note instead of charts)."""
    timeline = build_timeline(infra_results())
    assert timeline.empty
    assert timeline.seconds == ()


def test_full_run_series_markers_and_windows() -> None:
    """The full run: 60 s axis, a kill naming its pod, three replica windows on the axis."""
    timeline = build_timeline(full_results())
    assert timeline.end == 60.0
    (kill,) = timeline.markers
    assert (kill.at, kill.kind) == (38.0, MarkerKind.KILL)
    assert kill.title == "kill 1 pod at +38.0s: consumer-7d9f8b6c5-x2k4q"
    # the `before` replica check counts from its stage: not on the axis
    assert [(w.start, w.end, w.met_at) for w in timeline.windows] == [
        (10.0, 35.0, 19.8),
        (30.0, 45.0, 30.0),
        (45.0, 65.0, 55.4),
    ]
    assert all(w.verdict is Verdict.PASSED for w in timeline.windows)
    assert timeline.replicas[0].start == 0.0  # the sample before the first phase starts at 0
    assert timeline.replicas[-1].end == 60.0
    assert [s.second for s in timeline.seconds] == sorted(s.second for s in timeline.seconds)


def test_replica_steps_stop_where_the_source_was_lost() -> None:
    """After the replica source is lost, no step is drawn."""
    results = full_results(replica_source=replica_source(lost_at_s=41.5))
    timeline = build_timeline(results)
    assert timeline.replicas_lost_at == 41.5
    assert max(s.end for s in timeline.replicas) == 41.5


def test_kill_without_pods_says_why() -> None:
    """A kill that deleted nothing carries its error in the marker's description."""
    results = full_results(kills=(KillResult("hold", 38.0, 2, error="forbidden"),))
    (kill,) = build_timeline(results).markers
    assert kill.title == "kill 2 pods at +38.0s (failed: forbidden)"


def test_target_runs_without_a_cut() -> None:
    """Uncut, the target covers every open-model phase of the plan."""
    runs = target_runs(make_results(SHAPES))
    assert runs[0].start == 0
    assert runs[-1].end == 43

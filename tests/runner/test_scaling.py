"""Why it scaled, in whole runs on a manual clock: `reaction` and `pod startup` judged from a
scripted source that also records the autoscaler and the pods (exit 0 or 1 at the right
values, the run waiting for their windows past the last phase), `abort when pod restarts`
stopping the run (exit 3), and the scale events of the run's own records."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.judge.scaling import scaling_record
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.results.model import Judgement, Verdict
from nimbus_scenarios.runner import RunOutcome
from nimbus_scenarios.scaling import AutoscalerSample, MetricStatus, PodRecord, TargetKind
from tests.support.fakes import ScriptedScalingSource
from tests.support.play import play

REACTION = """
scenario "react" {
  watch deployment "consumer"
  request work = GET "/work"
  phase "warm" 20s { rate 1/s
    send work }
  phase "ramp" 10s { rate 2/s
    send work
    expect reaction < 15s }
  expect reaction <= 20s
}
"""


def run(
    text: str,
    script: Sequence[tuple[float, int, int]],
    *,
    pods: Sequence[PodRecord] = (),
    autoscaler: Sequence[AutoscalerSample] = (),
    restarts: Sequence[tuple[float, str, int]] = (),
    watched: bool = True,
) -> tuple[RunOutcome, ScriptedScalingSource, float]:
    """Play `text` with a scripted scaling source; the outcome, the source and the end."""
    made: list[ScriptedScalingSource] = []

    def source(clock: object, replicas: Sequence[tuple[float, int, int]]) -> ScriptedScalingSource:
        made.append(
            ScriptedScalingSource(
                clock,  # type: ignore[arg-type]
                replicas,
                autoscaler_script=autoscaler,
                pod_script=pods,
                restarts=restarts,
                watched=watched,
            )
        )
        return made[0]

    outcome, _, _, end = play(text, script=script, scaling=source)
    return outcome, made[0], end


def verdicts(outcome: RunOutcome) -> dict[str, Judgement]:
    return {j.expectation.text: j for j in outcome.results.expectations}


def test_a_reaction_after_the_phase_end_passes_and_the_run_waits_for_it() -> None:
    """Desired rose at +34, 14 s after the 10 s ramp began (4 s after it ended): the phase's
    `< 15s` passes; the scenario's `<= 20s` is decided when its wait ends (+50)."""
    outcome, _, end = run(REACTION, [(0.0, 1, 1), (34.0, 1, 3), (40.0, 3, 3)])
    found = verdicts(outcome)
    phase = found["expect reaction < 15s"]
    assert (phase.verdict, phase.observed, phase.met_at_s) == (Verdict.PASSED, 14.0, 34.0)
    whole = found["expect reaction <= 20s"]
    assert (whole.verdict, whole.observed) == (Verdict.PASSED, 14.0)
    assert outcome.exit_code is ExitCode.OK
    assert 50.0 <= end <= 51.0


def test_a_slow_reaction_fails_the_run_naming_it() -> None:
    outcome, _, _ = run(REACTION, [(0.0, 1, 1), (36.0, 1, 3)])
    found = verdicts(outcome)
    phase = found["expect reaction < 15s"]
    assert (phase.verdict, phase.observed) == (Verdict.FAILED, 16.0)
    assert phase.detail == "desired replicas rose to 3 16.0s after ramp started"
    assert found["expect reaction <= 20s"].verdict is Verdict.PASSED
    assert outcome.exit_code is ExitCode.FAILED


def test_no_rise_at_all_fails() -> None:
    outcome, _, _ = run(REACTION, [(0.0, 2, 2)])
    found = verdicts(outcome)
    assert found["expect reaction < 15s"].verdict is Verdict.FAILED
    whole = found["expect reaction <= 20s"]
    assert (whole.verdict, whole.detail) == (
        Verdict.FAILED,
        "no rise of desired replicas in any phase",
    )
    assert outcome.exit_code is ExitCode.FAILED


STARTUP = """
scenario "startup" {
  watch deployment "consumer"
  request work = GET "/work"
  phase "ramp" 30s { rate 1/s
    send work
    expect pod startup max < 40s
    expect pod startup p50 < 10s }
}
"""


@pytest.mark.parametrize(
    ("b_ready", "verdict", "observed", "code", "end"),
    [
        (44.0, Verdict.PASSED, 38.0, ExitCode.OK, 44.0),
        (46.5, Verdict.FAILED, 40.0, ExitCode.FAILED, 46.0),
    ],
)
def test_pod_startup_at_its_threshold_waiting_past_the_phase(
    b_ready: float, verdict: Verdict, observed: float, code: ExitCode, end: float
) -> None:
    """Pod a took 9.5 s; pod b, created at +6, is ready at +44 (38 s: passes `max < 40s`) or
    at +46.5 (fails it: at +46, still starting after 40 s, it can no longer pass, and the
    run stops waiting). The run waits past the 30 s phase for b; p50 (a's 9.5 s) passes."""
    pods = [
        PodRecord("a", created=5.5, ready=15.0),
        PodRecord("b", created=6.0, ready=b_ready),
    ]
    outcome, _, stopped = run(STARTUP, [(0.0, 1, 1), (5.0, 1, 3), (b_ready, 3, 3)], pods=pods)
    found = verdicts(outcome)
    worst = found["expect pod startup max < 40s"]
    assert (worst.verdict, worst.observed) == (verdict, pytest.approx(observed))
    if verdict is Verdict.FAILED:
        assert worst.detail == "max at least 40.0s over 2 pods (1 still starting)"
    assert found["expect pod startup p50 < 10s"].observed == 9.5
    assert outcome.exit_code is code
    assert end <= stopped <= end + 1.0


def test_pod_startup_without_pods_watched_is_not_judged() -> None:
    pods = [PodRecord("a", created=5.5, ready=15.0)]
    outcome, _, _ = run(STARTUP, [(0.0, 1, 1), (5.0, 1, 2)], pods=pods, watched=False)
    found = verdicts(outcome)
    assert found["expect pod startup max < 40s"].verdict is Verdict.NOT_JUDGED
    assert found["expect pod startup max < 40s"].detail == "the replica source records no pods"
    assert outcome.exit_code is ExitCode.INFRASTRUCTURE


RESTARTS = """
scenario "restarts" {
  watch deployment "consumer"
  request work = GET "/work"
  phase "p" 60s { rate 1/s
    send work }
  abort when pod restarts > 2
}
"""


def test_pod_restarts_since_the_start_abort_the_run() -> None:
    """Pod `old` had 5 restarts before the run (not counted); at +12 it has 8: 3 since the run
    started, over the guard's 2, so the run stops at the next check (exit 3)."""
    pods = [PodRecord("old", restarts=5), PodRecord("new", created=3.0, ready=9.0)]
    restarts = [(4.0, "new", 1), (7.0, "old", 6), (12.0, "old", 7)]
    outcome, _, end = run(RESTARTS, [(0.0, 2, 2)], pods=pods, restarts=restarts)
    abort = outcome.results.abort
    assert outcome.exit_code is ExitCode.ABORTED
    assert abort is not None
    assert abort.reason == (
        "guard `abort when pod restarts > 2` fired: 3 pod restarts since the run started"
    )
    assert abort.at_s == 12.0
    assert end < 20.0


def test_restarts_within_the_guard_let_the_run_finish() -> None:
    pods = [PodRecord("old", restarts=5)]
    outcome, _, _ = run(RESTARTS, [(0.0, 2, 2)], pods=pods, restarts=[(30.0, "old", 7)])
    assert outcome.results.abort is None
    assert outcome.exit_code is ExitCode.OK


def rps(value: float) -> tuple[MetricStatus, ...]:
    return (MetricStatus("rps per replica", TargetKind.AVERAGE_VALUE, 5.0, value),)


def test_the_runs_records_give_its_scale_event() -> None:
    """The source's records, in run offsets, break the ramp's rise down: the ramp began at +20,
    rps per replica was above 5 from +26, desired rose at +32 (the HPA decided at +31.5), the
    pods were created at +32.5 and +33 and took 12.5 s and 17 s, and all 3 were ready at +50."""
    autoscaler = [
        AutoscalerSample(0.0, 1, 1, rps(2.0)),
        AutoscalerSample(26.0, 1, 1, rps(7.2)),
        AutoscalerSample(31.5, 3, 1, rps(7.2)),
    ]
    pods = [
        PodRecord("a", created=32.5, ready=45.0),
        PodRecord("b", created=33.0, ready=50.0),
    ]
    script = [(0.0, 1, 1), (32.0, 1, 3), (45.0, 2, 3), (50.0, 3, 3)]
    outcome, source, _ = run(REACTION, script, pods=pods, autoscaler=autoscaler)
    assert outcome.exit_code is ExitCode.OK
    plan = compile_source(Source("t.scn", REACTION), watch_given=True)
    assert source.started_at is not None
    record = scaling_record(source, source.started_at, plan, source.samples)
    (event,) = record.events
    assert (event.from_replicas, event.to_replicas) == (1, 3)
    assert (event.load_change, event.load_change_s) == ('phase "ramp" started', 20.0)
    assert (event.metric, event.metric_value, event.metric_above_s) == (
        "rps per replica",
        7.2,
        26.0,
    )
    assert (event.decided_s, event.reaction_s) == (31.5, 11.5)
    assert (event.pods_created_s, event.pod_startups_s) == (32.5, (12.5, 17.0))
    assert event.ready_s == 50.0
    assert record.pods_watched
    assert record.notes == ()
    # The run's own origin is the source's start here (pre-flight takes no clock time).
    source_result = outcome.results.replica_source
    assert source_result is not None
    assert [s.t_s for s in source_result.samples] == [0.0, 32.0, 45.0, 50.0]

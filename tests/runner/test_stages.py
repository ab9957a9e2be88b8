"""The stage driver on a manual clock: whole runs against a scripted target and a scripted
replica source, played and judged in milliseconds, with times and counts asserted exactly;
stops too (a guard, `--max-duration`, SIGTERM in each stage and a second signal, delivered to
this process through the run's own handlers), the grace given to requests in flight, and
replica data that goes stale or is proven fresh only now and then."""

from __future__ import annotations

import signal
import time

import pytest

from nimbus_scenarios.engine.request import ErrorKind, Outcome, PreparedRequest
from nimbus_scenarios.events import Progress, RunHandler, WindowState
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.results.model import RunVerdict, ShardInfo, Stage, Verdict
from tests.support.fakes import answer_by_path
from tests.support.play import URL, play

RAMP = """
scenario "ramp" {
  request work = GET "/work"
  request health = GET "/health"
  phase "warm" 1m { rate 2/s
    send work }
  phase "ramp" 5m { ramp 2/s -> 20/s
    send 90% work, 10% health
    expect p95 < 500ms }
  phase "cool" 4m { idle }
  expect errors < 1%
  expect achieved >= 99%
}
"""


def test_ten_minutes_of_load_are_played_in_no_time() -> None:
    """A 10-minute scenario sends exactly its plan, judged, in well under a second."""
    started = time.monotonic()
    outcome, transport, _, end = play(RAMP, answer=answer_by_path({"work": (0.2, 200)}))
    elapsed = time.monotonic() - started
    results = outcome.results
    assert outcome.exit_code is ExitCode.OK
    assert [p.load.sent for p in results.phases] == [120, 3300, 0]
    assert [r.name for r in results.phases[1].load.requests] == ["work", "health"]
    assert [r.sent for r in results.phases[1].load.requests] == [2970, 330]
    assert len(transport.paths("/work")) + len(transport.paths("/health")) == 3420
    assert 600.0 <= end < 632.0
    assert elapsed < 5.0


def test_latency_is_measured_from_the_schedule_on_the_run_clock() -> None:
    """A target answering in exactly 300 ms gives p95 of 300 ms (to histogram precision)."""
    outcome, _, _, _ = play(
        RAMP.replace("< 500ms", "< 250ms"), answer=answer_by_path({}, (0.3, 200))
    )
    ramp = outcome.results.phases[1]
    assert ramp.load.latency_ms is not None
    assert 299.0 <= ramp.load.latency_ms.p95 <= 301.0
    failed = [j for j in outcome.results.expectations if j.verdict is Verdict.FAILED]
    assert [j.expectation.text for j in failed] == ["expect p95 < 250ms"]
    assert outcome.exit_code is ExitCode.FAILED


WINDOWS = """
scenario "scale" {
  watch deployment "consumer"
  request work = GET "/work"
  phase "ramp" 60s { rate 1/s
    send work
    expect replicas >= 3 within 40s
    expect desired replicas <= 5 throughout }
  phase "cool" 30s { idle
    expect replicas <= 1 within 90s }
}
"""


def test_replica_windows_are_judged_at_the_scripted_moments() -> None:
    """3 ready at +25 s passes `within 40s` at +25 s; back to 1 at +130 s passes the cooldown
    window, and the run waits past the last phase just until then."""
    script = [(0.0, 1, 1), (10.0, 1, 3), (25.0, 3, 3), (130.0, 1, 1)]
    outcome, _, _, end = play(WINDOWS, script=script)
    results = outcome.results
    verdicts = {j.expectation.text: j for j in results.expectations}
    within = verdicts["expect replicas >= 3 within 40s"]
    assert (within.verdict, within.met_at_s, within.observed) == (Verdict.PASSED, 25.0, 3.0)
    cool = verdicts["expect replicas <= 1 within 90s"]
    assert (cool.verdict, cool.met_at_s) == (Verdict.PASSED, 130.0)
    assert outcome.exit_code is ExitCode.OK
    assert results.stage_reached is Stage.PENDING
    assert 130.0 <= end <= 131.0


def test_a_broken_throughout_fails_the_run() -> None:
    """Desired replicas reaching 6 at +40 s breaks `<= 5 throughout`: exit 1."""
    script = [(0.0, 1, 1), (20.0, 3, 3), (40.0, 3, 6), (100.0, 1, 1)]
    outcome, _, _, _ = play(WINDOWS, script=script)
    broken = [j for j in outcome.results.expectations if j.verdict is Verdict.FAILED]
    assert [j.expectation.text for j in broken] == ["expect desired replicas <= 5 throughout"]
    assert broken[0].observed == 6
    assert outcome.exit_code is ExitCode.FAILED
    assert outcome.results.verdict is RunVerdict.FAILED


def test_a_source_lost_mid_window_is_not_judged_never_passed() -> None:
    """Lost at +20 s before 3 were ready: the windows it could not see are not judged (4)."""
    outcome, _, _, _ = play(WINDOWS, script=[(0.0, 1, 1)], lost_after=20.0)
    verdicts = {j.expectation.text: j.verdict for j in outcome.results.expectations}
    assert verdicts["expect replicas >= 3 within 40s"] is Verdict.NOT_JUDGED
    assert verdicts["expect desired replicas <= 5 throughout"] is Verdict.NOT_JUDGED
    assert outcome.exit_code is ExitCode.INFRASTRUCTURE
    assert outcome.results.lost_at_s == 20.0


FRESHNESS = """
scenario "fresh" {
  watch deployment "consumer"
  request h = GET "/h"
  phase "load" 8s { rate 10/s
    send h
    EXPECTATION }
}
"""


def fresh(expectation: str) -> str:
    """An 8 s phase at 10/s holding one replica expectation."""
    return FRESHNESS.replace("EXPECTATION", expectation)


def test_throughout_on_data_stale_from_two_seconds_is_not_judged() -> None:
    """The source proves nothing after +2 s (the API refusing connections): `== 1 throughout`
    is not judged, naming the staleness, never passed: exit 4, and the run does not wait."""
    outcome, _, _, end = play(
        fresh("expect replicas == 1 throughout"), script=[(0.0, 1, 1)], stale_after=2.0
    )
    results = outcome.results
    (window,) = results.expectations
    assert window.verdict is Verdict.NOT_JUDGED
    assert window.detail == (
        "replica data stale from +2s (the source's last update), before the window closed at +8s"
    )
    assert (outcome.exit_code, results.verdict) == (ExitCode.INFRASTRUCTURE, RunVerdict.ERROR)
    assert results.lost_at_s is None  # stale, not lost
    assert results.phases[0].load.sent == 80
    assert end == pytest.approx(8.0)


def test_within_not_met_on_stale_data_is_not_judged_not_failed() -> None:
    """`>= 2 within 8s` never met while the data was fresh (to +2 s): exit 4, not 1."""
    outcome, _, _, _ = play(
        fresh("expect replicas >= 2 within 8s"), script=[(0.0, 1, 1)], stale_after=2.0
    )
    (window,) = outcome.results.expectations
    assert window.verdict is Verdict.NOT_JUDGED
    assert window.detail.startswith("replica data stale from +2s")
    assert outcome.exit_code is ExitCode.INFRASTRUCTURE


def test_within_met_before_the_data_went_stale_passes_the_run() -> None:
    """2 ready at +1.5 s, stale from +2 s: `>= 2 within 8s` had passed: exit 0."""
    outcome, _, _, _ = play(
        fresh("expect replicas >= 2 within 8s"), script=[(0.0, 1, 1), (1.5, 2, 2)], stale_after=2.0
    )
    (window,) = outcome.results.expectations
    assert (window.verdict, window.met_at_s) == (Verdict.PASSED, 1.5)
    assert outcome.exit_code is ExitCode.OK


def test_a_change_recorded_after_the_data_went_stale_fails_nothing() -> None:
    """3 ready recorded at +5 s, after the data went stale at +2 s: it may have happened at any
    moment of the gap, so `== 1 throughout` is not judged (exit 4), not failed."""
    outcome, _, _, _ = play(
        fresh("expect replicas == 1 throughout"), script=[(0.0, 1, 1), (5.0, 3, 3)], stale_after=2.0
    )
    (window,) = outcome.results.expectations
    assert window.verdict is Verdict.NOT_JUDGED
    assert outcome.exit_code is ExitCode.INFRASTRUCTURE


def test_the_run_waits_for_a_proof_past_the_window_end() -> None:
    """A source proving its data every 3 s has proven it only to +6 s when the 8 s phase ends:
    the run waits for the proof at +9 s, then judges `== 1 throughout` passed."""
    recorder = Recorder()
    outcome, _, _, end = play(
        fresh("expect replicas == 1 throughout"),
        script=[(0.0, 1, 1)],
        proof_every=3.0,
        handlers=[recorder],
    )
    (window,) = outcome.results.expectations
    assert window.verdict is Verdict.PASSED
    assert outcome.exit_code is ExitCode.OK
    assert outcome.results.stage_reached is Stage.PENDING
    assert recorder.stages[:2] == [Stage.PHASES, Stage.PENDING]
    assert end == pytest.approx(9.0)


def test_the_pending_stage_stops_waiting_when_the_data_goes_stale() -> None:
    """A 60 s window past a 2 s phase, data stale from +10 s: the run stops waiting once the
    source is overdue (its 5 s bound), not at +60 s; the window is not judged."""
    outcome, _, _, end = play(PENDING, script=[(0.0, 1, 1)], stale_after=10.0)
    (window,) = outcome.results.expectations
    assert window.verdict is Verdict.NOT_JUDGED
    assert window.detail.startswith("replica data stale from +10s")
    assert outcome.results.stage_reached is Stage.PENDING
    assert outcome.exit_code is ExitCode.INFRASTRUCTURE
    assert 15.0 < end <= 16.0


STALE_HYPOTHESIS = """
scenario "h" {
  watch deployment "consumer"
  request health = GET "/health"
  before { expect replicas == 1 within 10s }
  phase "p" 10s { rate 1/s
    send health }
  after { expect replicas == 1 within 10s }
}
"""


def test_replica_probes_on_stale_data_are_not_judged() -> None:
    """2 ready when the data goes stale at +1 s: the `before` probe is not judged once the source
    is overdue (not failed, so the phases run); the `after` probe, on data stale since, is not
    judged at once: exit 4."""
    outcome, _, _, _ = play(STALE_HYPOTHESIS, script=[(0.0, 2, 2)], stale_after=1.0)
    before, after = outcome.results.expectations
    assert before.verdict is Verdict.NOT_JUDGED
    assert before.detail == "replica data stale: nothing from the source for 5s; last: 2 replicas"
    assert after.verdict is Verdict.NOT_JUDGED
    assert outcome.results.phases[0].load.sent == 10
    assert outcome.exit_code is ExitCode.INFRASTRUCTURE


HYPOTHESIS = """
scenario "h" {
  watch deployment "consumer"
  request health = GET "/health"
  before {
    expect health succeeds within 5s
    expect replicas == 1 within 10s
  }
  phase "p" 10s { rate 1/s
    send health }
  after { expect replicas == 1 within 3s }
}
"""


def test_before_retries_every_second_and_failing_skips_the_phases() -> None:
    """A health check failing throughout a 5 s window is tried at 0,1,2,3,4,5 s; the phases
    never run and the run fails (exit 1)."""
    outcome, transport, _, _ = play(
        HYPOTHESIS, answer=answer_by_path({"health": (0.0, 503)}), script=[(0.0, 1, 1)]
    )
    results = outcome.results
    probes = [s.at for s in transport.paths("/health")]
    assert probes == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    first = results.expectations[0]
    assert (first.verdict, first.detail) == (Verdict.FAILED, "6 attempts, last: 503")
    assert results.phases[0].ran is False
    assert outcome.exit_code is ExitCode.FAILED


def test_before_that_holds_lets_the_run_go_on_and_after_is_checked() -> None:
    """Health answering from +2 s passes after 3 attempts; after holds at once."""
    calls = 0
    ok = answer_by_path({})
    unavailable = answer_by_path({"health": (0.0, 503)})

    def wrapped(request: PreparedRequest) -> tuple[float, Outcome]:
        nonlocal calls
        if request.url.endswith("/health") and calls < 2:
            calls += 1
            return unavailable(request)
        return ok(request)

    outcome, _, _, _ = play(HYPOTHESIS, answer=wrapped, script=[(0.0, 1, 1)])
    first = outcome.results.expectations[0]
    assert (first.verdict, first.met_at_s, first.detail) == (
        Verdict.PASSED,
        2.0,
        "succeeded after 3 attempts",
    )
    assert outcome.results.phases[0].load.sent == 10
    assert outcome.results.expectations[-1].verdict is Verdict.PASSED
    assert outcome.exit_code is ExitCode.OK


GUARDED = """
scenario "g" {
  request work = GET "/work"
  phase "p" 5m { rate 10/s
    send work }
  abort when errors > 50% over 10s
  cleanup { send DELETE "/process/cleanup" }
}
"""


def test_a_guard_stops_the_run_keeps_its_results_and_cleans_up() -> None:
    """Every request reset from the start: the errors guard fires at its first check (+1 s,
    on the first whole second), the run stops (exit 3), what was sent is kept, and cleanup
    still runs."""
    answer = answer_by_path({"work": (0.0, ErrorKind.reset)})
    outcome, transport, _, end = play(GUARDED, answer=answer)
    results = outcome.results
    assert outcome.exit_code is ExitCode.ABORTED
    assert results.abort is not None
    assert results.abort.reason.startswith("guard `abort when errors > 50% over 10s` fired")
    assert results.abort.reason.endswith("fired: 10/10 failed over 10s")
    assert results.abort.at_s == 1.0
    assert results.abort.stage is Stage.PHASES
    assert results.phases[0].load.failed == results.phases[0].load.sent == 10
    assert [c.request for c in results.cleanup] == ["DELETE /process/cleanup"]
    assert transport.paths("/process/cleanup")
    assert end == 1.0


def test_max_duration_stops_the_run_at_its_moment() -> None:
    """`--max-duration 90s` stops a 5-minute phase at exactly +90 s."""
    outcome, _, _, _ = play(
        GUARDED.replace("abort when errors > 50% over 10s", ""), max_duration_s=90.0
    )
    results = outcome.results
    assert outcome.exit_code is ExitCode.ABORTED
    assert results.abort is not None
    assert results.abort.reason == "--max-duration of 90s reached"
    assert results.abort.at_s == 90.0
    assert results.phases[0].load.sent == 900


BEFORE = """
scenario "b" {
  request probe = GET "/probe"
  request work = GET "/work"
  before { expect probe succeeds within 10s }
  phase "load" 2s { rate 10/s
    send work }
  cleanup { send DELETE "/process/cleanup" }
}
"""


def test_sigterm_during_before_leaves_the_hypothesis_not_judged() -> None:
    """SIGTERM at +1.7 s, while the second probe (sent at +1.5 s, a 503 after 0.5 s) is in
    flight: the probe is abandoned, the hypothesis is not judged, no phase runs and, with no
    load sent, no cleanup either: exit 3 at once, not after the 10 s window."""
    answer = answer_by_path({"probe": (0.5, 503)})
    outcome, transport, _, end = play(BEFORE, answer=answer, signals_at=[(1.7, signal.SIGTERM)])
    results = outcome.results
    assert outcome.exit_code is ExitCode.ABORTED
    assert results.abort is not None
    assert (results.abort.reason, results.abort.stage) == ("SIGTERM received", Stage.BEFORE)
    assert results.abort.at_s == pytest.approx(1.7)
    (hypothesis,) = results.expectations
    assert hypothesis.verdict is Verdict.NOT_JUDGED
    assert hypothesis.detail == "the run was stopped after 1 attempt; last: 503"
    assert [s.at for s in transport.paths("/probe")] == [0.0, 1.5]
    assert transport.paths("/work") == []
    assert results.phases[0].ran is False
    assert results.totals.scheduled == 0
    assert results.cleanup == ()
    assert transport.paths("/process/cleanup") == []
    assert end == pytest.approx(1.7)


PENDING = """
scenario "p" {
  watch deployment "consumer"
  request h = GET "/h"
  phase "load" 2s { rate 10/s
    send h
    expect replicas >= 3 within 60s }
}
"""


def test_sigterm_while_a_window_is_pending_leaves_it_not_judged() -> None:
    """SIGTERM at +3.5 s, while the run waits past its 2 s phase for a 60 s replica window:
    the wait ends at once and the window is not judged: exit 3."""
    outcome, _, _, end = play(PENDING, script=[(0.0, 1, 1)], signals_at=[(3.5, signal.SIGTERM)])
    results = outcome.results
    assert outcome.exit_code is ExitCode.ABORTED
    assert results.abort is not None
    assert results.abort.stage is Stage.PENDING
    assert results.abort.at_s == pytest.approx(3.5)
    assert results.stage_reached is Stage.PENDING  # no cleanup steps
    (window,) = results.expectations
    assert window.verdict is Verdict.NOT_JUDGED
    assert "stopped" in window.detail
    assert results.phases[0].load.sent == 20
    assert results.lost_at_s is None
    assert end == pytest.approx(3.5)


def test_a_target_down_at_pre_flight_sends_no_load() -> None:
    """The pre-flight answer is a refused connection: exit 4 with the reason, nothing sent."""
    outcome, transport, _, _ = play(RAMP, answer=answer_by_path({}, (0.0, ErrorKind.connect)))
    assert outcome.exit_code is ExitCode.INFRASTRUCTURE
    assert outcome.results.error == f"target {URL} does not answer (connect error)"
    assert outcome.results.expectations == ()
    assert len(transport.sent) == 1


def test_a_shard_other_than_zero_judges_only_its_own_load() -> None:
    """Shard 1 of 2 sends every other arrival and leaves windows and hypotheses to shard 0."""
    outcome, _transport, _, _ = play(WINDOWS, script=[(0.0, 3, 3)], shard=ShardInfo(1, 2))
    assert outcome.results.phases[0].load.sent == 30
    assert outcome.results.phases[0].planned == 30
    assert outcome.results.expectations == ()


class Recorder(RunHandler):
    """Keeps every progress event and the stages entered."""

    def __init__(self) -> None:
        self.progress_events: list[Progress] = []
        self.stages: list[Stage] = []

    def progress(self, status: Progress) -> None:
        self.progress_events.append(status)

    def stage_started(self, stage: Stage) -> None:
        self.stages.append(stage)


def test_progress_is_typed_and_tracks_the_windows() -> None:
    """Every 10 s a Progress says the stage, the phase, the rate and each window's state."""
    recorder = Recorder()
    script = [(0.0, 1, 1), (25.0, 3, 3), (100.0, 1, 1)]
    play(WINDOWS, script=script, handlers=[recorder], progress_interval_s=10.0)
    first = recorder.progress_events[0]
    assert (first.stage, first.phase, first.elapsed_s) == (Stage.PHASES, "ramp", 10.0)
    assert first.target_rate == 1.0
    assert first.ready == 1
    states = {w.text: w.state for w in first.windows}
    assert states["expect replicas >= 3 within 40s"] is WindowState.OPEN
    assert states["expect replicas <= 1 within 90s"] is WindowState.WAITING
    later = recorder.progress_events[2]
    assert {w.text: w.state for w in later.windows}["expect replicas >= 3 within 40s"] is (
        WindowState.PASSED
    )
    assert recorder.stages[:2] == [Stage.PHASES, Stage.PENDING]


KILLS = """
scenario "k" {
  watch deployment "consumer"
  request work = GET "/work"
  phase "p" 30s { rate 1/s
    send work
    at 10s kill 2 pods }
}
"""


def test_pods_are_killed_at_their_offset() -> None:
    """`at 10s kill 2 pods` deletes two pods at exactly +10 s."""
    outcome, _, source, _ = play(KILLS, script=[(0.0, 3, 3)])
    assert source is not None
    assert [(k.at_s, k.count, k.pods) for k in outcome.results.kills] == [
        (10.0, 2, ("consumer-0", "consumer-1"))
    ]
    assert source.stopped


@pytest.mark.parametrize("shape", ["users 3 think 1s", "burst 5 every 10s"])
def test_closed_and_burst_shapes_run_on_the_clock(shape: str) -> None:
    """Users and bursts also run on the manual clock."""
    text = f'scenario "s" {{\n request h = GET "/h"\n phase "p" 30s {{ {shape}\n send h }}\n}}\n'
    outcome, _, _, end = play(text, answer=answer_by_path({}, (0.5, 200)))
    sent = outcome.results.phases[0].load.sent
    # users: 3 x 20 cycles of 0.5 s answer + 1 s think; bursts: 3 x 5.
    assert sent == (60 if shape.startswith("users") else 15)
    assert end < 40.0

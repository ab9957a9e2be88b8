"""The end of a run on a manual clock: requests in flight and cleanup share one shutdown
budget from the stop (`--grace`), the results are handed over before cleanup, a stop before or
during pre-flight ends the run at once, and cleanup runs only after load was sent."""

from __future__ import annotations

import signal

import pytest

from nimbus_scenarios import stops
from nimbus_scenarios.engine.request import ErrorKind, Outcome, PreparedRequest
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.results.model import CleanupResult, RunResults, Stage
from tests.support.checks import assert_run_reconciles
from tests.support.fakes import Answer, answer_by_path
from tests.support.play import play, raise_signals

TIMEOUT_5S = """
scenario "t" {
  settings { timeout 5s }
  request work = GET "/work"
  phase "p" 2s { rate 10/s
    send work }
  cleanup { send DELETE "/process/cleanup" }
}
"""


def test_cleanup_that_hangs_is_bounded_by_the_timeout() -> None:
    """A cleanup request never answered ends after the timeout plus a second."""
    text = TIMEOUT_5S
    outcome, _, _, end = play(text, answer=answer_by_path({"cleanup": (1000.0, 200)}))
    assert [(c.request, c.error) for c in outcome.results.cleanup] == [
        ("DELETE /process/cleanup", "timeout")
    ]
    assert 8.0 <= end <= 9.0


def test_requests_in_flight_when_the_grace_runs_out_are_cancelled() -> None:
    """Stopped at +1 s with 3 s answers in flight and a 0.3 s grace: the 20 requests sent are
    failed as `cancelled` at +1.3 s, and every count still reconciles."""
    text = """
scenario "grace" {
  request slow = GET "/slow"
  phase "p" 3s { rate 20/s
    send slow }
}
"""
    answer = answer_by_path({"slow": (3.0, 200)})
    outcome, _, _, end = play(text, answer=answer, max_duration_s=1.0, grace_s=0.3)
    results = outcome.results
    load = results.phases[0].load
    assert outcome.exit_code is ExitCode.ABORTED
    assert (load.sent, load.succeeded, load.failed) == (20, 0, 20)
    assert load.errors_by_kind == {"cancelled": 20}
    assert_run_reconciles(results)
    assert end == pytest.approx(1.3)


CLEANUP = """
scenario "c" {
  request h = GET "/h"
  phase "load" 1s { rate 10/s
    send h }
  cleanup { send DELETE "/slow-cleanup" }
}
"""


def signalling(answer: Answer, *signals: signal.Signals) -> Answer:
    """`answer`, after delivering `signals` as the cleanup (the only DELETE) goes out."""

    def answer_and_signal(request: PreparedRequest) -> tuple[float, Outcome]:
        if request.method == "DELETE":
            raise_signals(*signals)
        return answer(request)

    return answer_and_signal


def test_sigterm_during_cleanup_lets_the_request_finish() -> None:
    """SIGTERM as a 2 s cleanup request goes out: it completes and is recorded: exit 3."""
    answer = signalling(answer_by_path({"slow-cleanup": (2.0, 200)}), signal.SIGTERM)
    outcome, _, _, end = play(CLEANUP, answer=answer, install_signal_handlers=True)
    results = outcome.results
    assert outcome.exit_code is ExitCode.ABORTED
    assert results.abort is not None
    assert results.abort.stage is Stage.CLEANUP
    assert results.cleanup == (CleanupResult("DELETE /slow-cleanup", status=200, error=None),)
    load = results.phases[0].load
    assert load.sent == load.succeeded == 10
    assert end == pytest.approx(3.0)


def test_a_second_signal_abandons_a_hanging_cleanup() -> None:
    """Two SIGTERMs as a never-answered cleanup request goes out: it is abandoned at once
    (not after its 31 s bound) and the results are kept: exit 3."""
    answer = signalling(
        answer_by_path({"slow-cleanup": (1000.0, 200)}), signal.SIGTERM, signal.SIGTERM
    )
    outcome, _, _, end = play(CLEANUP, answer=answer, install_signal_handlers=True)
    results = outcome.results
    assert outcome.exit_code is ExitCode.ABORTED
    assert results.abort is not None
    assert results.abort.stage is Stage.CLEANUP
    assert results.cleanup == (
        CleanupResult("DELETE /slow-cleanup", error="abandoned (forced exit)"),
    )
    assert end == pytest.approx(1.0)


def test_a_stop_cuts_a_long_cleanup_request_at_the_shutdown_deadline() -> None:
    """SIGTERM as a 20 s cleanup request goes out, with `--grace 3`: the request is given up
    3 s after the signal, not after its own 31 s bound."""
    answer = signalling(answer_by_path({"slow-cleanup": (20.0, 200)}), signal.SIGTERM)
    outcome, _, _, end = play(CLEANUP, answer=answer, install_signal_handlers=True, grace_s=3.0)
    assert outcome.exit_code is ExitCode.ABORTED
    assert outcome.results.cleanup == (
        CleanupResult("DELETE /slow-cleanup", error="shutdown deadline"),
    )
    assert end == pytest.approx(4.0)


def test_requests_in_flight_and_cleanup_share_one_budget() -> None:
    """Stopped at +1 s with 10 s answers in flight and `--grace 4`: the drain uses the whole
    budget, so cleanup is skipped and the run ends 4 s after the stop."""
    text = TIMEOUT_5S.replace("timeout 5s", "timeout 30s")
    answer = answer_by_path({"work": (10.0, 200)})
    outcome, transport, _, end = play(text, answer=answer, max_duration_s=1.0, grace_s=4.0)
    results = outcome.results
    assert outcome.exit_code is ExitCode.ABORTED
    assert results.phases[0].load.errors_by_kind == {"cancelled": 10}
    assert results.cleanup == (
        CleanupResult("DELETE /process/cleanup", error="skipped (shutdown deadline)"),
    )
    assert transport.paths("/process/cleanup") == []
    assert end == pytest.approx(5.0)


def test_results_are_handed_over_before_cleanup() -> None:
    """The checkpoint gets the judged results before cleanup starts; the final ones add it."""
    seen: list[RunResults] = []
    outcome, _, _, _ = play(
        TIMEOUT_5S, answer=answer_by_path({"cleanup": (3.0, 200)}), checkpoint=seen.append
    )
    (early,) = seen
    assert early.cleanup == ()
    assert early.stage_reached is Stage.PHASES
    assert early.phases[0].load.sent == 20
    assert outcome.results.cleanup == (CleanupResult("DELETE /process/cleanup", status=200),)
    assert outcome.results.stage_reached is Stage.CLEANUP


def test_a_stop_during_pre_flight_ends_the_run_at_once() -> None:
    """SIGTERM at +1 s while the target's first answer takes 10 s: exit 3 at +1 s, nothing
    judged, nothing cleaned up."""
    answer = answer_by_path({"": (10.0, 200)})
    outcome, transport, _, end = play(TIMEOUT_5S, answer=answer, signals_at=[(1.0, signal.SIGTERM)])
    results = outcome.results
    assert outcome.exit_code is ExitCode.ABORTED
    assert results.abort is not None
    assert (results.abort.stage, results.abort.at_s) == (Stage.PREFLIGHT, 1.0)
    assert results.expectations == ()
    assert results.cleanup == ()
    assert len(transport.sent) == 1
    assert end == pytest.approx(1.0)


def test_a_failed_pre_flight_sends_no_cleanup() -> None:
    """A refused pre-flight: exit 4, and no cleanup request (there was no load to undo)."""
    answer = answer_by_path({"": (0.0, ErrorKind.connect)})
    outcome, transport, _, _ = play(TIMEOUT_5S, answer=answer)
    assert outcome.exit_code is ExitCode.INFRASTRUCTURE
    assert outcome.results.cleanup == ()
    assert [s.method for s in transport.sent] == ["GET"]


def test_a_signal_before_the_run_stops_it_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A SIGTERM the command recorded while it prepared the run stops the run as it starts:
    exit 3 with results, and not even the pre-flight request is sent."""
    monkeypatch.setattr(stops, "received", lambda: (signal.SIGTERM,))
    outcome, transport, _, end = play(TIMEOUT_5S, install_signal_handlers=True)
    assert outcome.exit_code is ExitCode.ABORTED
    assert outcome.results.abort is not None
    assert outcome.results.abort.reason == "SIGTERM received"
    assert transport.sent == []
    assert end == 0.0

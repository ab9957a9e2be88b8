"""The engine when the service is slow, against a loopback server: the in-flight cap drops
arrivals, timeouts fail requests, and users' requests still in flight when the last phase ends
are waited for. (Requests abandoned when a stopped run's grace runs out are counted as
`cancelled`: tests/runner/test_stages.py.)"""

from __future__ import annotations

from collections.abc import Callable

from nimbus_scenarios.results.model import RunVerdict, Verdict
from nimbus_scenarios.runner import RunOutcome
from tests.support.checks import assert_reconciles, judgement
from tests.support.http import HttpServer

Run = Callable[..., RunOutcome]


def test_stalled_server_drops_over_max_inflight(http_server: HttpServer, run: Run) -> None:
    """Arrivals over `max_inflight` are dropped, not errors, and lower `achieved`."""
    outcome = run(
        """
scenario "stall" {
  settings {
    max_inflight 5
    timeout 2s
  }
  request slow = GET "/delay/1000"
  phase "stall" 3s {
    rate 50/s
    send slow
  }
  expect errors == 0%
  expect achieved < 50%
}
""",
        http_server.url,
    )
    results = outcome.results
    phase = results.phases[0].load
    assert phase.scheduled == 150
    assert phase.dropped > 100
    # five at a time, each held for one second: about 5/s get through
    assert 10 <= phase.sent <= 25, phase
    assert_reconciles(phase)
    assert_reconciles(results.totals)
    assert phase.failed == 0
    assert phase.errors_by_kind == {}
    assert len(http_server.paths("/delay")) == phase.sent
    errors = judgement(results, "expect errors == 0%")
    assert errors.verdict is Verdict.PASSED
    assert errors.observed == 0.0
    achieved = judgement(results, "expect achieved < 50%")
    assert achieved.verdict is Verdict.PASSED
    assert achieved.observed == 100.0 * phase.sent / 150
    assert outcome.exit_code == 0


def test_slow_responses_time_out_and_fail_the_errors_expectation(
    http_server: HttpServer, run: Run
) -> None:
    """A server slower than `timeout` gives failed requests of kind timeout and exit 1."""
    outcome = run(
        """
scenario "timeouts" {
  settings {
    timeout 1s
  }
  request slow = GET "/delay/3000"
  phase "slow" 1s {
    rate 10/s
    send slow
  }
  expect errors < 10%
}
""",
        http_server.url,
    )
    results = outcome.results
    phase = results.phases[0].load
    assert phase.sent == 10
    assert phase.failed == 10
    assert phase.timed_out == 10
    assert phase.errors_by_kind == {"timeout": 10}
    assert_reconciles(phase)
    # a timed-out request got no response: counted failed, never timed
    assert phase.latency_ms is None
    assert phase.service_ms is None
    assert not any(second.latency_ms for second in results.seconds)
    errors = judgement(results, "expect errors < 10%")
    assert errors.verdict is Verdict.FAILED
    assert errors.observed == 100.0
    assert outcome.exit_code == 1
    assert results.verdict is RunVerdict.FAILED


def test_closed_model_requests_in_flight_at_the_end_are_waited_for(
    http_server: HttpServer, run: Run
) -> None:
    """Users' last requests, in flight when the last phase ends, complete and are counted."""
    outcome = run(
        """
scenario "users" {
  request slow = GET "/delay/300"
  phase "users" 1s {
    users 5
    send slow
  }
}
""",
        http_server.url,
    )
    phase = outcome.results.phases[0].load
    assert 15 <= phase.sent <= 25, phase
    assert phase.scheduled == phase.sent
    assert phase.succeeded == phase.sent, phase
    assert phase.failed == 0
    assert len(http_server.paths("/delay")) == phase.sent
    assert outcome.exit_code == 0

"""Stopping a real run from outside: SIGTERM mid-phase, SIGINT twice, and the `--max-duration`
deadline (also while 10,000 users start), each through `python -m nimbus_scenarios run` in a
child process. A stop exits 3
with the results written and reconciled; the first signal lets requests in flight finish, a
second one abandons them. How each stage winds down (a stop in `before`, in a pending replica
window, in `cleanup`, a second signal there, the grace running out) is played on a manual clock
in tests/runner/test_stages.py."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.support.checks import expectation
from tests.support.cli import Child, assert_outcome, run_cli, write_scenario
from tests.support.http import HttpServer


def run_args(scenario: Path, server: HttpServer, results: Path, *extra: str) -> list[str]:
    """`run SCENARIO --url SERVER --results RESULTS EXTRA...`."""
    return ["run", str(scenario), "--url", server.url, "--results", str(results), *extra]


def test_sigterm_during_phase(server: HttpServer, tmp_path: Path) -> None:
    """SIGTERM mid-phase: scheduling stops, in-flight requests finish, cleanup runs, exit 3."""
    scenario = write_scenario(
        tmp_path,
        """
scenario "stopped-phase" {
  request work = GET "/delay/300"
  phase "load" 5s {
    rate 20/s
    send work
  }
  expect achieved > 95%
  cleanup {
    send DELETE "/process/cleanup"
  }
}
""",
    )
    results = tmp_path / "results.json"
    with Child(*run_args(scenario, server, results)) as child:
        child.wait_for("30 requests", lambda: len(server.paths("/delay")) >= 30)
        signalled = time.monotonic()
        child.signal(signal.SIGTERM)
        finished = child.finish()
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    assert "SIGTERM" in finished.stderr
    assert "SIGTERM" in document["abort"]["reason"]
    assert document["abort"]["stage"] == "phases"
    assert 1.0 <= document["abort"]["at_s"] <= 4.0
    phase = document["phases"][0]
    assert 30 <= phase["sent"] < 100, phase
    assert phase["failed"] == 0  # the in-flight requests were waited for
    assert len(server.paths("/delay")) == phase["sent"]
    cleanup = server.paths("/process/cleanup")
    assert [h.method for h in cleanup] == ["DELETE"]
    assert cleanup[0].at > signalled
    assert document["cleanup"] == [
        {"request": "DELETE /process/cleanup", "status": 200, "error": None}
    ]
    # judged against what was due before the stop, not the whole phase
    assert expectation(document, "expect achieved > 95%")["verdict"] == "passed"


def test_sigint_twice_forces_exit(server: HttpServer, tmp_path: Path) -> None:
    """A second SIGINT stops waiting for slow requests: exit 3 at once, results still written."""
    scenario = write_scenario(
        tmp_path,
        """
scenario "interrupted" {
  request slow = GET "/delay/5000"
  phase "load" 5s {
    rate 20/s
    send slow
  }
  cleanup {
    send DELETE "/process/cleanup"
  }
}
""",
    )
    results = tmp_path / "results.json"
    with Child(*run_args(scenario, server, results)) as child:
        child.wait_for("20 requests", lambda: len(server.paths("/delay")) >= 20)
        child.signal(signal.SIGINT)
        # Two signals sent back to back may reach the child as one: wait for the first to land.
        child.wait_for("the stop to be logged", lambda: "run_aborted" in child.stdout)
        child.signal(signal.SIGINT)
        signalled = time.monotonic()
        finished = child.finish()
    stopped_after = time.monotonic() - signalled
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    assert "SIGINT" in document["abort"]["reason"]
    assert document["abort"]["stage"] == "phases"
    phase = document["phases"][0]
    assert phase["sent"] >= 20
    assert phase["errors_by_kind"] == {"cancelled": phase["failed"]}
    assert phase["failed"] > 0  # abandoned in flight, counted
    assert document["cleanup"] == [
        {"request": "DELETE /process/cleanup", "error": "skipped (forced exit)"}
    ]
    assert stopped_after < 4  # neither the 5 s answers nor the 10 s grace


def test_max_duration_deadline(server: HttpServer, tmp_path: Path) -> None:
    """`--max-duration 1s` on a 4 s phase: stopped at the deadline, exit 3, results kept."""
    scenario = write_scenario(
        tmp_path,
        """
scenario "deadline" {
  request h = GET "/h"
  phase "load" 4s {
    rate 20/s
    send h
  }
  expect achieved > 95%
}
""",
    )
    results = tmp_path / "results.json"
    finished = run_cli(*run_args(scenario, server, results, "--max-duration", "1s"))
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    assert "--max-duration" in document["abort"]["reason"]
    assert document["abort"]["stage"] == "phases"
    assert "--max-duration" in finished.stderr
    phase = document["phases"][0]
    assert 10 <= phase["sent"] <= 30, phase
    assert phase["ran_s"][1] < 2.5
    assert expectation(document, "expect achieved > 95%")["verdict"] == "passed"


def test_max_duration_acts_on_time_while_ten_thousand_users_start(
    server: HttpServer, tmp_path: Path
) -> None:
    """10,000 users (the most one process may run) start at +2.9 s against a target that
    hangs; `--max-duration 3s` lands while they start and stops the run within a second of
    +3 s: users start in batches that give the loop its turns, and no batch starts after the
    stop."""
    scenario = write_scenario(
        tmp_path,
        """
scenario "crowd" {
  settings {
    max_inflight 200
  }
  request stuck = GET "/delay/30000"
  phase "quiet" 2900ms {
    idle
  }
  phase "crowd" 30s {
    users 10000
    send stuck
  }
}
""",
    )
    results = tmp_path / "results.json"
    args = run_args(scenario, server, results, "--max-duration", "3s", "--grace", "1")
    finished = run_cli(*args)
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    assert "--max-duration" in document["abort"]["reason"]
    assert document["abort"]["stage"] == "phases"
    assert 2.9 <= document["abort"]["at_s"] < 4.0, document["abort"]
    crowd = document["phases"][1]
    assert crowd["ran_s"][1] < 4.0, crowd["ran_s"]
    # Started all at once (before the batches), all 10,000 sent, and the stop came 0.8 s late.
    assert 0 < crowd["sent"] < 10_000, crowd
    assert crowd["failed"] == crowd["errors_by_kind"]["cancelled"]  # abandoned at the grace
    assert finished.elapsed_s < 30  # not the 30 s phase, nor the hanging answers

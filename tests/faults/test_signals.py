"""Stopping a run: SIGTERM in each stage (`before`, a phase, a pending replica window,
`cleanup`), SIGINT twice, and the `--max-duration` deadline. A stop always exits 3 with the
results written and reconciled; the first signal lets requests in flight finish, a second one
abandons them."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.faults.conftest import KubeApi
from tests.support.checks import expectation
from tests.support.cli import Child, assert_outcome, run_cli, write_scenario
from tests.support.http import HttpServer


def run_args(scenario: Path, server: HttpServer, results: Path, *extra: str) -> list[str]:
    """`run SCENARIO --url SERVER --results RESULTS EXTRA...`."""
    return ["run", str(scenario), "--url", server.url, "--results", str(results), *extra]


def test_sigterm_during_before(server: HttpServer, tmp_path: Path) -> None:
    """SIGTERM while `before` retries: the hypothesis is not judged, no load, cleanup runs."""
    scenario = write_scenario(
        tmp_path,
        """
scenario "stopped-before" {
  request slow = GET "/flaky/60000"
  request work = GET "/work"
  before {
    expect slow succeeds within 10s
  }
  phase "load" 2s {
    rate 10/s
    send work
  }
  cleanup {
    send DELETE "/process/cleanup"
  }
}
""",
    )
    results = tmp_path / "results.json"
    with Child(*run_args(scenario, server, results)) as child:
        child.wait_for("two `before` attempts", lambda: len(server.paths("/flaky")) >= 2)
        signalled = time.monotonic()
        child.signal(signal.SIGTERM)
        finished = child.finish()
    stopped_after = time.monotonic() - signalled
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    assert "SIGTERM" in document["abort"]["reason"]
    assert document["abort"]["stage"] == "before"
    entry = expectation(document, "expect slow succeeds within 10s")
    assert entry["verdict"] == "not_judged", entry
    assert "stopped" in entry["detail"]
    assert document["phases"][0]["ran"] is False
    assert document["totals"]["scheduled"] == 0
    assert server.paths("/work") == []
    assert [h.method for h in server.paths("/process/cleanup")] == ["DELETE"]
    assert stopped_after < 8  # not the rest of the 10 s window


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
        child.wait_for("load", lambda: bool(server.paths("/delay")))
        time.sleep(1.5)
        signalled = time.monotonic()
        child.signal(signal.SIGTERM)
        finished = child.finish()
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    assert "SIGTERM" in document["abort"]["reason"]
    assert document["abort"]["stage"] == "phases"
    assert 1.0 <= document["abort"]["at_s"] <= 4.0
    phase = document["phases"][0]
    assert 20 <= phase["sent"] < 100, phase
    assert phase["failed"] == 0  # the in-flight requests were waited for
    assert len(server.paths("/delay")) == phase["sent"]
    cleanup = server.paths("/process/cleanup")
    assert len(cleanup) == 1
    assert cleanup[0].at > signalled
    # judged against what was due before the stop, not the whole phase
    assert expectation(document, "expect achieved > 95%")["verdict"] == "passed"


def test_sigterm_during_pending_window(server: HttpServer, kube: KubeApi, tmp_path: Path) -> None:
    """SIGTERM while waiting for a replica window past the last phase: not judged, exit 3."""
    scenario = write_scenario(
        tmp_path,
        """
scenario "stopped-pending" {
  watch deployment "consumer" namespace "default"
  request h = GET "/h"
  phase "load" 2s {
    rate 10/s
    send h
    expect replicas >= 3 within 60s
  }
}
""",
    )
    results = tmp_path / "results.json"
    args = run_args(scenario, server, results, "--kubeconfig", str(kube.kubeconfig(tmp_path)))
    with Child(*args) as child:
        child.wait_for("load", lambda: bool(server.paths("/h")))
        time.sleep(3.5)  # the phase (2 s) is over: the run waits for the window
        signalled = time.monotonic()
        child.signal(signal.SIGTERM)
        finished = child.finish()
    stopped_after = time.monotonic() - signalled
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    assert document["abort"]["stage"] == "pending"
    assert document["stage_reached"] == "pending"  # no cleanup steps
    assert document["abort"]["at_s"] > 2.0
    entry = expectation(document, "expect replicas >= 3 within 60s")
    assert entry["verdict"] == "not_judged", entry
    assert "stopped" in entry["detail"]
    assert document["phases"][0]["sent"] == 20
    assert document["replica_source"]["lost_at_s"] is None
    assert stopped_after < 8


CLEANUP = """
scenario "stopped-cleanup" {
  request h = GET "/h"
  phase "load" 1s {
    rate 10/s
    send h
  }
  cleanup {
    send DELETE "/delay/DELAY"
  }
}
"""


def test_sigterm_during_cleanup(server: HttpServer, tmp_path: Path) -> None:
    """SIGTERM while a slow cleanup request is in flight: cleanup completes, results, exit 3."""
    scenario = write_scenario(tmp_path, CLEANUP.replace("DELAY", "2000"))
    results = tmp_path / "results.json"
    with Child(*run_args(scenario, server, results)) as child:
        child.wait_for("the cleanup request", lambda: bool(server.paths("/delay")))
        time.sleep(0.3)
        child.signal(signal.SIGTERM)
        finished = child.finish()
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    assert document["abort"]["stage"] == "cleanup"
    assert document["cleanup"] == [{"request": "DELETE /delay/2000", "status": 200, "error": None}]
    assert document["phases"][0]["sent"] == document["phases"][0]["succeeded"] == 10


def test_second_sigterm_during_cleanup_abandons_it(server: HttpServer, tmp_path: Path) -> None:
    """A second SIGTERM abandons a hanging cleanup request: exit 3 at once, results written."""
    scenario = write_scenario(tmp_path, CLEANUP.replace("DELAY", "20000"))
    results = tmp_path / "results.json"
    with Child(*run_args(scenario, server, results)) as child:
        child.wait_for("the cleanup request", lambda: bool(server.paths("/delay")))
        child.signal(signal.SIGTERM)
        time.sleep(0.3)
        child.signal(signal.SIGTERM)
        signalled = time.monotonic()
        finished = child.finish()
    stopped_after = time.monotonic() - signalled
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    assert document["abort"]["stage"] == "cleanup"
    assert document["cleanup"] == [
        {"request": "DELETE /delay/20000", "error": "abandoned (forced exit)"}
    ]
    assert stopped_after < 5  # not the 20 s answer nor the 31 s cleanup timeout


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
        child.wait_for("load", lambda: bool(server.paths("/delay")))
        time.sleep(1.0)
        child.signal(signal.SIGINT)
        time.sleep(0.2)
        child.signal(signal.SIGINT)
        signalled = time.monotonic()
        finished = child.finish()
    stopped_after = time.monotonic() - signalled
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    assert "SIGINT" in document["abort"]["reason"]
    assert document["abort"]["stage"] == "phases"
    phase = document["phases"][0]
    assert phase["sent"] >= 10
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

"""The target misbehaving mid-run: it stops listening, hangs, answers 500, resets connections or
answers so slowly that `max_inflight` is reached. Each case is a whole `run` in a child process;
every failure is counted, nothing crashes, the results reconcile."""

from __future__ import annotations

from pathlib import Path

from tests.support.checks import expectation
from tests.support.cli import Child, assert_outcome, run_cli, write_scenario
from tests.support.http import HttpServer, ResetServer


def test_target_stops_listening_mid_run(tmp_path: Path) -> None:
    """The target stops listening halfway: later requests fail as `connect`, exit 1, no crash."""
    target = HttpServer().start()
    scenario = write_scenario(
        tmp_path,
        """
scenario "refused" {
  request h = GET "/h"
  phase "load" 3s {
    rate 20/s
    send h
  }
  expect errors < 5%
}
""",
    )
    results = tmp_path / "results.json"
    try:
        with Child("run", str(scenario), "--url", target.url, "--results", str(results)) as child:
            child.wait_for("1.2 s of load", lambda: len(target.paths("/h")) >= 24)
            target.stop()
            finished = child.finish()
    finally:
        target.stop()
    document = assert_outcome(finished, results, code=1, verdict="failed")
    phase = document["phases"][0]
    assert phase["scheduled"] == 60
    assert phase["sent"] == 60
    assert 10 <= phase["succeeded"] <= 45, phase
    assert phase["errors_by_kind"].get("connect", 0) >= 10, phase
    assert phase["succeeded"] <= len(target.paths("/h"))
    assert expectation(document, "expect errors < 5%")["verdict"] == "failed"


def test_target_hangs_requests_time_out(server: HttpServer, tmp_path: Path) -> None:
    """Answers that never come end at the `timeout` setting as failed `timeout`s: exit 1."""
    scenario = write_scenario(
        tmp_path,
        """
scenario "hang" {
  settings {
    timeout 1s
  }
  request stuck = GET "/delay/30000"
  phase "load" 2s {
    rate 10/s
    send stuck
  }
  expect errors < 50%
}
""",
    )
    results = tmp_path / "results.json"
    finished = run_cli("run", str(scenario), "--url", server.url, "--results", str(results))
    document = assert_outcome(finished, results, code=1, verdict="failed")
    phase = document["phases"][0]
    assert phase["sent"] == phase["failed"] == 20, phase
    assert phase["errors_by_kind"] == {"timeout": 20}
    assert phase["timed_out"] == 20
    assert finished.elapsed_s < 25  # bounded by the timeout, not by the 30 s hang


def test_target_answers_500(server: HttpServer, tmp_path: Path) -> None:
    """Every answer a 500: all counted failed with their status, exit 1."""
    scenario = write_scenario(
        tmp_path,
        """
scenario "five-hundreds" {
  request bad = GET "/status/500"
  phase "load" 1s {
    rate 20/s
    send bad
  }
  expect errors < 1%
}
""",
    )
    results = tmp_path / "results.json"
    finished = run_cli("run", str(scenario), "--url", server.url, "--results", str(results))
    document = assert_outcome(finished, results, code=1, verdict="failed")
    phase = document["phases"][0]
    assert phase["sent"] == phase["failed"] == 20
    assert phase["status_counts"] == {"500": 20}
    assert phase["errors_by_kind"] == {}
    entry = expectation(document, "expect errors < 1%")
    assert entry["verdict"] == "failed"
    assert entry["observed"] == 100.0


def test_target_resets_connections(tmp_path: Path) -> None:
    """A raw TCP server that resets every load connection unanswered: failed `reset`s, exit 1."""
    target = ResetServer().start()
    scenario = write_scenario(
        tmp_path,
        """
scenario "resets" {
  request h = GET "/h"
  phase "load" 1s {
    rate 20/s
    send h
  }
  expect errors < 5%
}
""",
    )
    results = tmp_path / "results.json"
    try:
        finished = run_cli("run", str(scenario), "--url", target.url, "--results", str(results))
    finally:
        target.stop()
    document = assert_outcome(finished, results, code=1, verdict="failed")
    phase = document["phases"][0]
    assert phase["sent"] == phase["failed"] == 20
    assert set(phase["errors_by_kind"]) == {"reset"}, phase["errors_by_kind"]
    assert target.paths[0] == "/"  # the pre-flight got its answer
    assert target.paths.count("/h") >= 20  # (aiohttp may retry an idempotent request once)


def test_resets_only_leave_a_latency_expectation_not_judged(tmp_path: Path) -> None:
    """Every load connection reset, only `expect p95 < 100ms`: not judged, exit 4, never 0."""
    target = ResetServer().start()
    scenario = write_scenario(
        tmp_path,
        """
scenario "resets-latency" {
  request h = GET "/h"
  phase "load" 1s {
    rate 30/s
    send h
  }
  expect p95 < 100ms
}
""",
    )
    results = tmp_path / "results.json"
    try:
        finished = run_cli("run", str(scenario), "--url", target.url, "--results", str(results))
    finally:
        target.stop()
    document = assert_outcome(finished, results, code=4, verdict="error")
    phase = document["phases"][0]
    assert phase["sent"] == phase["failed"] == 30, phase
    assert set(phase["errors_by_kind"]) == {"reset"}, phase["errors_by_kind"]
    assert phase["status_counts"] == {}
    assert phase["latency_ms"] is None
    assert phase["service_ms"] is None
    assert document["totals"]["latency_ms"] is None
    assert all(second["latency_ms"] is None for second in document["seconds"])
    entry = expectation(document, "expect p95 < 100ms")
    assert (entry["verdict"], entry["detail"]) == ("not_judged", "no response in scope")
    assert entry["observed"] is None


def test_slow_target_reaches_max_inflight_and_drops(server: HttpServer, tmp_path: Path) -> None:
    """1 s answers at 40/s with `max_inflight 5`: arrivals over the cap are dropped, not errors."""
    scenario = write_scenario(
        tmp_path,
        """
scenario "drops" {
  settings {
    max_inflight 5
  }
  request slow = GET "/delay/1000"
  phase "load" 2s {
    rate 40/s
    send slow
  }
  expect achieved > 90%
}
""",
    )
    results = tmp_path / "results.json"
    finished = run_cli("run", str(scenario), "--url", server.url, "--results", str(results))
    document = assert_outcome(finished, results, code=1, verdict="failed")
    phase = document["phases"][0]
    assert phase["scheduled"] == 80
    assert 5 <= phase["sent"] <= 20, phase
    assert phase["dropped"] == 80 - phase["sent"]
    assert phase["failed"] == 0  # drops are not errors
    assert len(server.paths("/delay")) == phase["sent"]
    entry = expectation(document, "expect achieved > 90%")
    assert entry["verdict"] == "failed"
    assert entry["observed"] < 30

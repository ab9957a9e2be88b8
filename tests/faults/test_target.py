"""The target misbehaving mid-run: it stops listening, hangs, answers 500, resets connections,
streams a body that never ends or answers so slowly that `max_inflight` is reached. Each case is
a whole `run` in a child process; every failure is counted, nothing crashes, the results
reconcile."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nimbus_scenarios.engine.factory import TRANSPORT_KINDS
from tests.support.checks import expectation
from tests.support.cli import Child, Finished, assert_outcome, run_cli, write_scenario
from tests.support.http import EndlessBodyServer, HttpServer, ResetServer
from tests.support.wait import wait_until

PEAK_RSS_LIMIT_MB = 300
"""A generous bound on a run's peak memory: the endless-body run peaks at about 50 MB with
every client loaded; reading the bodies whole took 8.5 GB in 20 s."""


def finish_with_peak_rss(child: Child, timeout_s: float = 60.0) -> tuple[Finished, float]:
    """Reap the child with `os.wait4`, which gives its own resource usage (not the largest of
    every child this process has had); its outcome and peak RSS in MB. Killed after
    `timeout_s`, failing the test."""
    reaped: list[tuple[int, os.struct_rusage]] = []

    def exited() -> bool:
        pid, status, usage = os.wait4(child.process.pid, os.WNOHANG)
        if pid:
            reaped.append((status, usage))
        return bool(reaped)

    if not wait_until(exited, timeout_s, interval_s=0.05):
        child.process.kill()
        pytest.fail(f"the run did not end within {timeout_s:g}s; stderr:\n{child.stderr}")
    status, usage = reaped[0]
    child.process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return child.finish(), usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


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


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
def test_endless_bodies_are_cut_and_memory_stays_bounded(kind: str, tmp_path: Path) -> None:
    """Endless 200 bodies (chunked, or with no length) through each transport kind: every one
    cut at the cap and counted as truncated, a success by its status; peak RSS bounded."""
    target = EndlessBodyServer(limit_s=30.0).start()
    scenario = write_scenario(
        tmp_path,
        """
scenario "endless" {
  settings {
    timeout 20s
  }
  request chunked = GET "/chunked"
  request unsized = GET "/unsized"
  phase "load" 1s {
    rate 4/s
    send 50% chunked, 50% unsized
  }
  expect errors < 1%
}
""",
    )
    results = tmp_path / "results.json"
    args = ("run", str(scenario), "--url", target.url, "--results", str(results))
    try:
        with Child(*args, "--transport", kind) as child:
            finished, peak_mb = finish_with_peak_rss(child)
        assert wait_until(lambda: len(target.bodies) == 4, 10), target.bodies  # all closed
    finally:
        target.stop()
    document = assert_outcome(finished, results, code=0, verdict="passed")
    phase = document["phases"][0]
    assert phase["sent"] == phase["succeeded"] == phase["truncated"] == 4, phase
    assert phase["status_counts"] == {"200": 4}
    assert phase["latency_ms"] is not None  # a cut body is still a response, and timed
    assert {r["name"]: r["truncated"] for r in phase["requests"]} == {"chunked": 2, "unsized": 2}
    assert document["totals"]["truncated"] == 4
    assert peak_mb < PEAK_RSS_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"
    # The client stopped reading at the cap, long before the server's 30 s of streaming.
    assert max(target.bodies) < 256 << 20, target.bodies
    assert finished.elapsed_s < 20  # not the 20 s timeout: each body ends at the cap


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

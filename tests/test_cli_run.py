"""`nimbus-scenarios run` end to end: signals in a subprocess, exit codes and the summary on
stderr, results that cannot be written, and the seed generator's `--test` form."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nimbus_scenarios.catalog import builtin_names
from nimbus_scenarios.cli import build_parser, main, seed_form
from tests.support.checks import read_results
from tests.support.http import HttpServer

REPO = Path(__file__).resolve().parents[1]

SIGNALLED = """
scenario "signalled" {
  request work = GET "/delay/DELAY"
  phase "load" 5s {
    rate 40/s
    send work
  }
  cleanup {
    send DELETE "/process/cleanup"
  }
}
"""


def start_run(scenario: Path, url: str, results: Path) -> subprocess.Popen[str]:
    """`python -m nimbus_scenarios run SCENARIO --url URL --results RESULTS` as a child."""
    command = [sys.executable, "-m", "nimbus_scenarios", "run", str(scenario), "--url", url]
    return subprocess.Popen(
        [*command, "--results", str(results)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_load(server: HttpServer, process: subprocess.Popen[str], prefix: str) -> None:
    """Wait (at most 20 s) until the server has seen a request of the run's load."""
    deadline = time.monotonic() + 20
    while not server.paths(prefix):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run sent no load within 20 s"
        time.sleep(0.02)


def assert_reconciles(item: dict[str, Any]) -> None:
    assert item["scheduled"] == item["sent"] + item["dropped"], item
    assert item["sent"] == item["succeeded"] + item["failed"], item


def test_sigterm_mid_phase_exits_3_with_complete_results(
    http_server: HttpServer, tmp_path: Path
) -> None:
    """SIGTERM 1.5 s into a 5 s phase: exit 3, results aborted and reconciled, cleanup sent."""
    scenario = tmp_path / "signalled.scn"
    scenario.write_text(SIGNALLED.replace("DELAY", "300"), encoding="utf-8")
    results = tmp_path / "results.json"
    process = start_run(scenario, http_server.url, results)
    try:
        wait_for_load(http_server, process, "/delay")
        time.sleep(1.5)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 3, stderr
    assert "Traceback" not in stderr
    assert "SIGTERM" in stderr
    document = read_results(results)
    assert document["verdict"] == "aborted"
    assert document["exit_code"] == 3
    assert "SIGTERM" in document["abort"]["reason"]
    assert 1.0 <= document["abort"]["at_s"] <= 3.0
    phase = document["phases"][0]
    assert 40 <= phase["sent"] <= 120, phase
    assert_reconciles(phase)
    assert_reconciles(document["totals"])
    assert phase["failed"] == 0  # in-flight requests were waited for, not cut off
    assert len(http_server.paths("/delay")) == phase["sent"]
    cleanup = [h for h in http_server.hits if h.path == "/process/cleanup"]
    assert [h.method for h in cleanup] == ["DELETE"]
    assert cleanup[0].at > signalled
    assert document["cleanup"] == [
        {"request": "DELETE /process/cleanup", "status": 200, "error": None}
    ]


def test_two_quick_sigints_still_exit_3_with_results(
    http_server: HttpServer, tmp_path: Path
) -> None:
    """A second SIGINT stops waiting for slow requests: exit 3 at once, results still written."""
    scenario = tmp_path / "signalled.scn"
    scenario.write_text(SIGNALLED.replace("DELAY", "5000"), encoding="utf-8")
    results = tmp_path / "results.json"
    process = start_run(scenario, http_server.url, results)
    try:
        wait_for_load(http_server, process, "/delay")
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        _, stderr = process.communicate(timeout=30)
        stopped_after = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 3, stderr
    assert "Traceback" not in stderr
    assert stopped_after < 4.0  # neither the 5 s responses nor the 10 s grace were awaited
    document = read_results(results)
    assert document["verdict"] == "aborted"
    assert "SIGINT" in document["abort"]["reason"]
    phase = document["phases"][0]
    assert phase["sent"] > 0
    assert_reconciles(phase)
    assert phase["errors_by_kind"] == {"cancelled": phase["failed"]}
    assert document["cleanup"] == [
        {"request": "DELETE /process/cleanup", "error": "skipped (forced exit)"}
    ]


def test_failing_latency_expectation_is_named_in_the_summary(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`expect p95 < 50ms` against a 200 ms server: exit 1, FAIL and its text on stderr."""
    scenario = tmp_path / "latency.scn"
    scenario.write_text(
        """
scenario "latency" {
  request slow = GET "/delay/200"
  phase "p" 1s {
    rate 20/s
    send slow
  }
  expect p95 < 50ms
}
""",
        encoding="utf-8",
    )
    results = tmp_path / "latency.json"
    code = main(["run", str(scenario), "--url", http_server.url, "--results", str(results)])
    stderr = capsys.readouterr().err
    assert code == 1
    assert "verdict FAILED (exit 1)" in stderr
    assert any("FAIL" in line and "expect p95 < 50ms" in line for line in stderr.splitlines())
    assert f"results: {results}" in stderr
    document = read_results(results)
    entry = next(e for e in document["expectations"] if e["text"] == "expect p95 < 50ms")
    assert entry["verdict"] == "failed"
    assert entry["observed"] >= 0.2


def test_target_down_exits_4_naming_the_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listening at --url: exit 4, the URL and the error on stderr and in the results."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    scenario = tmp_path / "down.scn"
    scenario.write_text(
        'scenario "down" {\n  request h = GET "/h"\n  phase "p" 2s {\n    rate 10/s\n'
        "    send h\n  }\n}\n",
        encoding="utf-8",
    )
    results = tmp_path / "down.json"
    code = main(["run", str(scenario), "--url", url, "--results", str(results)])
    stderr = capsys.readouterr().err
    assert code == 4
    error_lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert url in error_lines[0]
    assert "connect" in error_lines[0]
    document = read_results(results)
    assert document["error"] is not None
    assert url in document["error"]
    assert document["totals"]["sent"] == 0


def test_max_duration_option_aborts(
    http_server: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--max-duration 1s` on a 4 s phase exits 3 and says why."""
    scenario = tmp_path / "long.scn"
    scenario.write_text(
        'scenario "long" {\n  request h = GET "/h"\n  phase "p" 4s {\n    rate 20/s\n'
        "    send h\n  }\n}\n",
        encoding="utf-8",
    )
    results = tmp_path / "long.json"
    started = time.monotonic()
    command = ["run", str(scenario), "--url", http_server.url, "--results", str(results)]
    code = main([*command, "--max-duration", "1s"])
    assert time.monotonic() - started < 3.5
    stderr = capsys.readouterr().err
    assert code == 3
    assert "--max-duration" in stderr
    assert read_results(results)["verdict"] == "aborted"


def test_seed_form_becomes_a_run_command() -> None:
    """`--url=U --test=light --monitor --cleanup` parses as `run light --url=U ...`."""
    argv = seed_form(["--url=http://127.0.0.1:8000", "--test=light", "--monitor", "--cleanup"])
    assert argv == ["run", "light", "--url=http://127.0.0.1:8000", "--monitor", "--cleanup"]
    args = build_parser().parse_args(argv)
    assert args.command == "run"
    assert args.scenario == "light"
    assert args.url == "http://127.0.0.1:8000"
    assert args.monitor is True
    assert args.cleanup is True
    spaced = seed_form(["--test", "heavy", "--url", "http://127.0.0.1:8000"])
    assert spaced == ["run", "heavy", "--url", "http://127.0.0.1:8000"]
    assert seed_form(["run", "light"]) == ["run", "light"]


def test_unknown_seed_test_exits_2_listing_the_built_ins(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--test=nope` is a usage error (exit 2) that lists every built-in scenario."""
    with pytest.raises(SystemExit) as raised:
        main(["--url=http://127.0.0.1:8000", "--test=nope"])
    assert raised.value.code == 2
    stderr = capsys.readouterr().err
    assert "'nope'" in stderr
    names = builtin_names()
    assert "light" in names
    for name in names:
        assert name in stderr

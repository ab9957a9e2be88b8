"""The process around a run: its exit code never depends on where its output goes, a stop
signal at any moment ends it with exit 3 and one line, a crash exits 4 (never 1) with one line
and a log, and a stopped run's shutdown fits in `--grace` with its results written first."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import (
    REPO,
    Child,
    assert_no_traceback,
    assert_outcome,
    child_env,
    cli,
    run_cli_without_stdout,
)
from tests.support.cli import write_scenario as scenario_file
from tests.support.http import HttpServer, ResetServer, SilentServer
from tests.support.wait import wait_until

FAILING = """
scenario "failing" {
  request work = GET "/work"
  phase "load" 1s {
    rate 30/s
    send work
  }
  expect errors < 1%
}
"""


@pytest.fixture
def reset_server() -> Iterator[ResetServer]:
    """A target that answers the pre-flight and resets every other connection."""
    target = ResetServer().start()
    yield target
    target.stop()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    """A target that answers only `GET /` and leaves every other request hanging."""
    target = SilentServer(frozenset({"/"})).start()
    yield target
    target.stop()


@pytest.fixture
def mute() -> Iterator[SilentServer]:
    """A target that answers nothing: even the pre-flight hangs."""
    target = SilentServer().start()
    yield target
    target.stop()


def test_a_closed_stderr_pipe_does_not_change_the_exit_code(
    reset_server: ResetServer, tmp_path: Path
) -> None:
    """`run ... 2>&1 | head -1` against a target that resets every request: the reader goes
    after one line, the run still fails (exit 1) and still writes its results."""
    scenario = scenario_file(tmp_path, FAILING)
    results = tmp_path / "results.json"
    process = subprocess.Popen(
        cli("run", str(scenario), "--url", reset_server.url, "--results", str(results)),
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    process.stdout.close()  # what `head -1` does once it has its line
    code = process.wait(60)
    assert first
    assert code == 1
    document = json.loads(results.read_text(encoding="utf-8"))
    assert (document["verdict"], document["exit_code"]) == ("failed", 1)
    assert document["totals"]["failed"] == document["totals"]["sent"] == 30


def test_a_run_with_stdout_closed_still_runs_and_judges(
    reset_server: ResetServer, tmp_path: Path
) -> None:
    """`run ... >&-`: the logs have nowhere to go, yet the run happens, fails as it should
    (exit 1), writes its results and prints its summary on stderr without a traceback."""
    scenario = scenario_file(tmp_path, FAILING)
    results = tmp_path / "results.json"
    process = run_cli_without_stdout(
        "run", str(scenario), "--url", reset_server.url, "--results", str(results)
    )
    assert process.code == 1, process.stderr
    assert_no_traceback(process.stderr)
    assert "verdict FAILED (exit 1)" in process.stderr
    assert json.loads(results.read_text(encoding="utf-8"))["verdict"] == "failed"


def catches(pid: int, sig: signal.Signals) -> bool:
    """Whether process `pid` has a handler installed for `sig` (from /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return False
    found = re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.MULTILINE)
    return found is not None and bool(int(found.group(1), 16) >> (sig - 1) & 1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_command_starts_ends_it_with_exit_3(
    sig: signal.Signals, server: HttpServer, tmp_path: Path
) -> None:
    """A signal as soon as the process handles it (while it still imports what a run needs):
    exit 3 with one line, no traceback, and nothing sent."""
    scenario = scenario_file(tmp_path, FAILING)
    with Child("run", str(scenario), "--url", server.url) as child:
        pid = child.process.pid
        # Python catches SIGINT from its first instruction; SIGTERM is caught once the command's
        # own handlers are in place (both at once), so that is what the test waits for.
        assert wait_until(lambda: catches(pid, signal.SIGTERM) or not child.running(), 10)
        child.signal(sig)
        finished = child.finish(30)
    assert finished.code == 3, finished.stderr
    assert_no_traceback(finished.stderr)
    assert sig.name in finished.stderr
    assert server.paths("/work") == []


def test_sigterm_during_pre_flight_exits_3_at_once_without_cleanup(
    mute: SilentServer, tmp_path: Path
) -> None:
    """SIGTERM while the pre-flight request waits for an answer that never comes: exit 3 at
    once (not after the 5 s pre-flight), results kept, and no cleanup request sent."""
    scenario = scenario_file(
        tmp_path, FAILING.replace("expect errors < 1%", 'cleanup { send DELETE "/cleanup" }')
    )
    results = tmp_path / "results.json"
    with Child("run", str(scenario), "--url", mute.url, "--results", str(results)) as child:
        child.wait_for("the pre-flight request", lambda: mute.paths("GET") == ["/"])
        signalled = time.monotonic()
        child.signal(signal.SIGTERM)
        finished = child.finish(30)
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    assert time.monotonic() - signalled < 3.0
    assert document["abort"]["stage"] == "preflight"
    assert document["cleanup"] == []
    assert mute.paths("DELETE") == []


def test_a_failed_pre_flight_sends_no_cleanup(mute: SilentServer, tmp_path: Path) -> None:
    """A target that never answers the pre-flight: exit 4 after the 5 s pre-flight, and the
    consumer's `DELETE /process/cleanup` (`--cleanup`) is not sent: there was no load."""
    scenario = scenario_file(tmp_path, FAILING)
    results = tmp_path / "results.json"
    with Child(
        "run", str(scenario), "--url", mute.url, "--results", str(results), "--cleanup"
    ) as child:
        finished = child.finish(30)
    document = assert_outcome(finished, results, code=4, verdict="error")
    assert "does not answer" in document["error"]
    assert mute.paths("DELETE") == []


HANGING_CLEANUP = """
scenario "hanging-cleanup" {
  request work = GET "/work"
  phase "load" 30s {
    rate 5/s
    send work
  }
  cleanup {
    send DELETE "/cleanup"
  }
}
"""


def test_a_stopped_run_ends_within_its_grace_with_results_written_first(
    silent: SilentServer, tmp_path: Path
) -> None:
    """SIGTERM while every request hangs and so does cleanup, with `--grace 3`: the requests
    in flight and the cleanup together take the 3 s, so the process exits within about 3 s of
    the signal (well inside a pod's 60 s grace), with exit 3 and its results."""
    scenario = scenario_file(tmp_path, HANGING_CLEANUP)
    results = tmp_path / "results.json"
    args = ["run", str(scenario), "--url", silent.url, "--results", str(results), "--grace", "3"]
    with Child(*args) as child:
        child.wait_for("load", lambda: len(silent.paths("GET")) >= 5)
        signalled = time.monotonic()
        child.signal(signal.SIGTERM)
        finished = child.finish(30)
    took = time.monotonic() - signalled
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    assert took < 3.0 + 2.0, took
    phase = document["phases"][0]
    assert phase["errors_by_kind"] == {"cancelled": phase["sent"]}
    assert document["cleanup"] == [
        {"request": "DELETE /cleanup", "error": "skipped (shutdown deadline)"}
    ]


def test_a_crash_exits_4_with_one_line_and_a_log(tmp_path: Path) -> None:
    """An unexpected exception inside a command: one line naming it and a log file holding
    the traceback, and exit 4, never 1 (which means an expectation failed)."""
    code = (
        "import sys\n"
        "import nimbus_scenarios.cli as cli\n"
        "from nimbus_scenarios.entry import entry\n"
        "def boom(args):\n"
        "    raise RuntimeError('kaboom')\n"
        "cli._dispatch = boom\n"
        "sys.exit(entry())\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", code, "list"],
        cwd=REPO,
        env=child_env({"TMPDIR": str(tmp_path)}),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert process.returncode == 4
    assert_no_traceback(process.stderr)
    (line,) = process.stderr.splitlines()
    assert line.startswith("nimbus-scenarios list: internal error: RuntimeError: kaboom")
    log = Path(line.rsplit(" ", 1)[1])
    assert log.parent == tmp_path
    assert "RuntimeError: kaboom" in log.read_text(encoding="utf-8")
    assert "in boom" in log.read_text(encoding="utf-8")

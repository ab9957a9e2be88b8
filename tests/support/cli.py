"""The command line as a child process: `python -m nimbus_scenarios ARGS` from the repository
root, in an environment without the developer's OTLP or cluster settings.

`run_cli` runs a command to its end; `Child` is a command still running, for tests that act on
it meanwhile: wait for a condition (`wait_for`, failing as soon as the child has ended), read
what it has printed so far (`stdout`, `stderr`), signal it, and `finish`. A child that outlives
its test is killed. `assert_outcome` makes the checks every end-to-end run makes: the exit code,
no traceback on either stream, and a results file that loads strictly, says the same exit code
and verdict, and reconciles.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from nimbus_scenarios.results.io import load_results
from tests.support.checks import assert_run_reconciles
from tests.support.wait import wait_until

__all__ = [
    "REPO",
    "Child",
    "Finished",
    "assert_no_traceback",
    "assert_outcome",
    "child_env",
    "cli",
    "run_cli",
    "write_scenario",
]

REPO = Path(__file__).resolve().parents[2]
"""The repository root: the children's working directory."""

TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True, slots=True)
class Finished:
    """A finished CLI process: exit code, output and how long it ran."""

    code: int
    stdout: str
    stderr: str
    elapsed_s: float


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without OTLP or cluster settings, unbuffered, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k not in {"KUBERNETES_SERVICE_HOST", "KUBECONFIG"}
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def cli(*args: str, python_options: Sequence[str] = ()) -> list[str]:
    """The command line of `python [PYTHON_OPTIONS] -m nimbus_scenarios ARGS`."""
    return [sys.executable, *python_options, "-m", "nimbus_scenarios", *args]


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 90.0,
    python_options: Sequence[str] = (),
) -> Finished:
    """Run the CLI to its end (killed after `timeout_s`, failing the test); what it did."""
    with Child(*args, env=env, python_options=python_options) as child:
        return child.finish(timeout_s)


def run_cli_without_stdout(*args: str, timeout_s: float = 60.0) -> Finished:
    """Run the CLI with its stdout closed (`>&-`): file descriptor 1 is not open at all."""
    started = time.monotonic()
    process = subprocess.run(
        cli(*args),
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout_s,
        preexec_fn=lambda: os.close(1),
        check=False,
    )
    return Finished(process.returncode, "", process.stderr, time.monotonic() - started)


def _collect(stream: IO[str], into: list[str]) -> None:
    """Read `stream` line by line into `into` until its end, then close it."""
    with stream:
        into.extend(iter(stream.readline, ""))  # appends each line as it is read


class Child:
    """The CLI running as a child process; use it as a context manager."""

    def __init__(
        self, *args: str, env: Mapping[str, str] | None = None, python_options: Sequence[str] = ()
    ) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            cli(*args, python_options=python_options),
            cwd=REPO,
            env=child_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._out: list[str] = []
        self._err: list[str] = []
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        # Pipes are drained as the child writes, so it never blocks on a full pipe and the test
        # can wait for a line it printed.
        self._readers = [
            threading.Thread(target=_collect, args=(stream, into), daemon=True)
            for stream, into in ((self.process.stdout, self._out), (self.process.stderr, self._err))
        ]
        for reader in self._readers:
            reader.start()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running():
            self.process.kill()  # only this child, by its own handle
        self._reap()

    def _reap(self) -> None:
        self.process.wait()
        for reader in self._readers:
            reader.join(10)

    @property
    def stdout(self) -> str:
        """What the child has written to stdout so far."""
        return "".join(list(self._out))

    @property
    def stderr(self) -> str:
        """What the child has written to stderr so far."""
        return "".join(list(self._err))

    def running(self) -> bool:
        """Whether the child has not exited yet."""
        return self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` to the child (only if it still runs)."""
        if self.running():
            self.process.send_signal(sig)

    def finish(self, timeout_s: float = 90.0) -> Finished:
        """Wait for the exit; after `timeout_s`, kill the child and fail the test."""
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self._reap()
            pytest.fail(f"the run did not end within {timeout_s:g}s; stderr:\n{self.stderr}")
        elapsed = time.monotonic() - self.started
        self._reap()
        return Finished(self.process.returncode, self.stdout, self.stderr, elapsed)

    def wait_for(self, what: str, condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
        """Wait until `condition` holds; fail the test as soon as the child has ended without
        it, or after `timeout_s`."""
        if wait_until(lambda: condition() or not self.running(), timeout_s) and condition():
            return
        if not self.running():
            self._reap()
            pytest.fail(f"the run ended before {what}:\n{self.stderr}")
        pytest.fail(f"no {what} within {timeout_s:g}s")


def assert_no_traceback(text: str) -> None:
    """No Python traceback (nor an unhandled-exception report) in a process's output."""
    assert TRACEBACK not in text, text
    assert "Task exception was never retrieved" not in text, text
    assert "Exception ignored in" not in text, text


def assert_outcome(finished: Finished, results: Path, *, code: int, verdict: str) -> dict[str, Any]:
    """The checks every end-to-end run makes; returns the results document as JSON data."""
    assert finished.code == code, finished.stderr
    assert_no_traceback(finished.stderr)
    assert_no_traceback(finished.stdout)
    assert results.is_file(), finished.stderr
    assert_run_reconciles(load_results(results))  # loads strictly, as this version's document
    document: dict[str, Any] = json.loads(results.read_text(encoding="utf-8"))
    assert document["exit_code"] == code
    assert document["verdict"] == verdict, document.get("error") or document.get("abort")
    return document


def write_scenario(directory: Path, text: str, name: str = "case.scn") -> Path:
    """`text` as a scenario file in `directory`."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path

"""Inputs built to exhaust memory or time: a million phases, 1,001 phases, 30,000 stairs, a
rate of 10^12/s, 100,000 users in one process, 1000 h, a 10 MB `--set` value, braces nested
60,000 deep, a cap switched off with `--max-rate nan` or lifted out of reach with
`--max-rate 1e308`. Each is refused quickly (exit 2) with a message naming the limit, before
anything is sent, and without a traceback."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nimbus_scenarios.cli import main
from nimbus_scenarios.language.params import MAX_OVERRIDE_CHARS
from nimbus_scenarios.language.syntax import MAX_FILE_BYTES
from nimbus_scenarios.language.vocabulary import (
    MAX_PHASES,
    MAX_RATE_CEILING,
    MAX_USERS_PER_PROCESS,
)
from tests.support.cli import assert_no_traceback, run_cli, write_scenario
from tests.support.http import free_port

Refused = Callable[..., str]
# Nothing listens here: an input that slipped through would fail at pre-flight (exit 4), not 2.
URL = f"http://127.0.0.1:{free_port()}"
COMMANDS = ("validate", "plan", "run")


def phases(count: int, *, compact: bool = False) -> str:
    """A scenario with `count` idle phases (one line each when `compact`)."""
    body = (
        [f'  phase "p{i}" 1s {{ idle }}' for i in range(count)]
        if compact
        else [f'  phase "p{i}" 1s {{\n    idle\n  }}' for i in range(count)]
    )
    return "\n".join(['scenario "many" {', *body, "}"]) + "\n"


def one_phase(shape: str, duration: str = "10s", extra: str = "") -> str:
    """A scenario with one phase of `shape` sending GET /h."""
    return (
        f'scenario "hostile" {{\n{extra}  request h = GET "/h"\n'
        f'  phase "p" {duration} {{\n    {shape}\n    send h\n  }}\n}}\n'
    )


@pytest.fixture
def refused(capsys: pytest.CaptureFixture[str]) -> Refused:
    """`refused(command, *args, limit_s=2)`: runs the CLI in this process, asserts exit 2 within
    `limit_s` and no traceback, and returns stderr."""

    def check(command: str, *args: str, limit_s: float = 2.0) -> str:
        extra = ("--url", URL, "--results", "/dev/null") if command == "run" else ()
        started = time.perf_counter()
        code = main([command, *args, *extra])
        elapsed = time.perf_counter() - started
        out, err = capsys.readouterr()
        assert code == 2, err
        assert elapsed < limit_s, f"{command} took {elapsed:.2f}s"
        assert_no_traceback(out + err)
        return err

    return check


def test_a_million_phases_exceed_the_file_limit(refused: Refused, tmp_path: Path) -> None:
    """A million phases (about 30 MB, generated in memory) are refused by size, unread."""
    text = phases(1_000_000, compact=True)
    assert len(text) > 20 * 1024 * 1024
    path = write_scenario(tmp_path, text)
    for command in COMMANDS:
        err = refused(command, str(path))
        assert "scenario files are limited to 128 KB" in err
    finished = run_cli("validate", str(path))  # the same through a fresh interpreter
    assert finished.code == 2
    assert "limited to 128 KB" in finished.stderr
    assert finished.elapsed_s < 5


def test_one_phase_past_the_limit_is_refused(refused: Refused, tmp_path: Path) -> None:
    """1,001 phases well under the size limit: the phase limit, named with the line of the one
    too many, counted before the parser runs."""
    text = phases(MAX_PHASES + 1)
    assert len(text.encode()) < MAX_FILE_BYTES
    path = write_scenario(tmp_path, text)
    for command in COMMANDS:
        err = refused(command, str(path))
        assert "the scenario has 1,001 phases; the limit is 1,000" in err
        assert f"{path}:{3 * MAX_PHASES + 2}:3:" in err
    at_limit = write_scenario(tmp_path, phases(MAX_PHASES), "limit.scn")
    started = time.perf_counter()
    assert main(["validate", str(at_limit)]) == 0  # exactly the limit is fine
    assert time.perf_counter() - started < 5


def test_stairs_beyond_the_scenario_limit_are_refused(refused: Refused, tmp_path: Path) -> None:
    """Three phases of `steps ... in 10000` (30,000 stairs; minutes to compile at scale)."""
    body = "\n".join(
        f'  phase "p{i}" 1m {{\n    steps 1/s -> 2/s in 10000\n    send h\n  }}' for i in range(3)
    )
    text = f'scenario "stairs" {{\n  request h = GET "/h"\n{body}\n}}\n'
    path = write_scenario(tmp_path, text)
    for command in COMMANDS:
        err = refused(command, str(path))
        assert "stairs in all here; the limit is 20,000" in err


@pytest.mark.parametrize("command", COMMANDS)
def test_a_rate_of_a_trillion_per_second_is_refused(
    refused: Refused, tmp_path: Path, command: str
) -> None:
    """`rate 1000000000000/s`, in the file or by `--set`: over the 20,000/s per-process cap."""
    path = write_scenario(tmp_path, one_phase("rate 1000000000000/s"))
    assert "is above the limit of 20000/s per process" in refused(command, str(path))
    param = write_scenario(tmp_path, one_phase("rate $r", extra="  param r = 1/s\n"), "p.scn")
    err = refused(command, str(param), "--set", "r=1000000000000/s")
    assert "is above the limit of 20000/s per process" in err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-5"])
def test_max_rate_cannot_switch_the_cap_off(refused: Refused, tmp_path: Path, value: str) -> None:
    """`--max-rate nan|inf|0|-5` is a usage error, never a cap that lets 10^12/s through."""
    path = write_scenario(tmp_path, one_phase("rate 1000000000000/s"))
    for command in COMMANDS:
        assert "must be above zero and finite" in refused(command, str(path), f"--max-rate={value}")


@pytest.mark.parametrize("value", ["1e308", "1000001"])
def test_max_rate_has_a_ceiling(refused: Refused, tmp_path: Path, value: str) -> None:
    """`--max-rate 1e308` (anything over 1,000,000/s) is a usage error naming the ceiling."""
    path = write_scenario(tmp_path, one_phase("rate 1/s"))
    for command in COMMANDS:
        err = refused(command, str(path), f"--max-rate={value}")
        assert f"is above the ceiling of {MAX_RATE_CEILING:,} requests/s per process" in err
    assert main(["validate", str(path), f"--max-rate={MAX_RATE_CEILING}"]) == 0


@pytest.mark.parametrize("command", COMMANDS)
def test_a_hundred_thousand_users_are_refused(
    refused: Refused, tmp_path: Path, command: str
) -> None:
    """`users 100000`, in the file or by `--set`: over the 10,000 users per process limit, and
    the message says how many shards would run them."""
    limit = f"is above the limit of {MAX_USERS_PER_PROCESS:,} users per process"
    path = write_scenario(tmp_path, one_phase("users 100000"))
    err = refused(command, str(path))
    assert f"`users 100000` {limit}; shard the run: `run --shards 10`" in err
    param = write_scenario(tmp_path, one_phase("users $n", extra="  param n = 1\n"), "p.scn")
    assert limit in refused(command, str(param), "--set", "n=100000")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_thousand_hours_are_refused(refused: Refused, tmp_path: Path, command: str) -> None:
    """A 1000 h phase, in the file or by `--set`: over the one-week limit."""
    path = write_scenario(tmp_path, one_phase("rate 1/s", duration="1000h"))
    assert "is longer than the limit of 168h" in refused(command, str(path))
    param = write_scenario(tmp_path, one_phase("rate 1/s", "$d", "  param d = 1s\n"), "p.scn")
    assert "is longer than the limit of 168h" in refused(command, str(param), "--set", "d=1000h")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_ten_megabyte_set_value_is_refused_at_once(
    refused: Refused, tmp_path: Path, command: str
) -> None:
    """A 10 MB `--set` value (standing in for 1 GB) is refused by length in well under 1 s."""
    path = write_scenario(tmp_path, one_phase("rate 1/s", extra='  param v = "x"\n'))
    value = "v=" + "x" * 10_000_000
    err = refused(command, str(path), "--set", value, limit_s=1.0)
    assert f"values are limited to {MAX_OVERRIDE_CHARS:,}" in err
    assert len(err) < 2000  # the value is not echoed back


@pytest.mark.parametrize("command", COMMANDS)
def test_braces_nested_as_deep_as_the_file_limit_allows(
    refused: Refused, tmp_path: Path, command: str
) -> None:
    """`{` x 60,000 (closed or not; 120 KB) is a syntax error at the first stray brace, no
    recursion; `settings {` opened until the file is full is an error too."""
    depth = 60_000
    closed = write_scenario(tmp_path, 'scenario "x" {\n' + "{" * depth + "}" * depth + "\n}\n")
    err = refused(command, str(closed))
    assert f"{closed}:2:1: error: unexpected `{{`" in err
    assert len(err) < 2000  # the 100,000-character line is shown cut short
    bare = write_scenario(tmp_path, "{" * depth, "bare.scn")
    assert "unexpected `{`" in refused(command, str(bare))
    opened = MAX_FILE_BYTES // len("  settings {\n") - 2
    unclosed = write_scenario(tmp_path, 'scenario "x" {\n' + "  settings {\n" * opened, "open.scn")
    assert unclosed.stat().st_size <= MAX_FILE_BYTES
    assert "error:" in refused(command, str(unclosed))

"""The event loop a run uses: uvloop when it can be imported, asyncio's otherwise or when
`NIMBUS_EVENT_LOOP=asyncio` asks for it, and a usage error for a choice that cannot be met."""

from __future__ import annotations

import asyncio
import sys

import pytest

from nimbus_scenarios.engine.loop import (
    EVENT_LOOP_ENV,
    LoopChoice,
    loop_choice,
    loop_factory,
    loop_name,
    run_on_loop,
)
from nimbus_scenarios.errors import UsageError
from nimbus_scenarios.exit_codes import ExitCode

uvloop = pytest.importorskip("uvloop")


async def running_loop_name() -> str:
    """The name of the loop this coroutine runs on."""
    return loop_name(asyncio.get_running_loop())


def without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `import uvloop` fail, as where it is not installed."""
    monkeypatch.setitem(sys.modules, "uvloop", None)


@pytest.mark.parametrize(
    ("value", "choice"),
    [
        (None, LoopChoice.AUTO),
        ("", LoopChoice.AUTO),
        ("auto", LoopChoice.AUTO),
        ("asyncio", LoopChoice.ASYNCIO),
        (" UVLoop ", LoopChoice.UVLOOP),
    ],
)
def test_the_choice_is_read_from_the_environment(value: str | None, choice: LoopChoice) -> None:
    """Unset or empty means auto; the names are read without case or surrounding spaces."""
    environ = {} if value is None else {EVENT_LOOP_ENV: value}
    assert loop_choice(environ) is choice


def test_an_unknown_choice_is_a_usage_error() -> None:
    """A value that names no loop is refused with the choices, exit 2."""
    with pytest.raises(UsageError, match="NIMBUS_EVENT_LOOP='tokio': expected one of auto, ") as e:
        loop_choice({EVENT_LOOP_ENV: "tokio"})
    assert e.value.exit_code == ExitCode.USAGE


def test_auto_runs_on_uvloop_where_it_is_installed() -> None:
    """With uvloop importable, auto runs the work on a uvloop loop and says so."""
    result, name = run_on_loop(running_loop_name(), LoopChoice.AUTO)
    assert (result, name) == ("uvloop", "uvloop")


def test_asyncio_is_the_escape_hatch() -> None:
    """`asyncio` runs on asyncio's own loop even where uvloop is installed."""
    result, name = run_on_loop(running_loop_name(), LoopChoice.ASYNCIO)
    assert (result, name) == ("asyncio", "asyncio")


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where uvloop cannot be imported, auto runs on asyncio's loop."""
    without_uvloop(monkeypatch)
    result, name = run_on_loop(running_loop_name(), LoopChoice.AUTO)
    assert (result, name) == ("asyncio", "asyncio")


def test_uvloop_asked_for_but_missing_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking for uvloop by name where it cannot be imported is refused, not ignored."""
    without_uvloop(monkeypatch)
    with pytest.raises(UsageError, match="uvloop cannot be imported here"):
        loop_factory(LoopChoice.UVLOOP)


def test_the_default_choice_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_on_loop without a choice reads NIMBUS_EVENT_LOOP."""
    monkeypatch.setenv(EVENT_LOOP_ENV, "asyncio")
    assert run_on_loop(running_loop_name()) == ("asyncio", "asyncio")
    monkeypatch.setenv(EVENT_LOOP_ENV, "uvloop")
    assert run_on_loop(running_loop_name()) == ("uvloop", "uvloop")

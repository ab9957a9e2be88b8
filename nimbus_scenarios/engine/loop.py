"""Which event loop a run's process uses: uvloop where it is installed, else asyncio's own.

The one place that creates the event loop for a run (`run_on_loop`), so the command line and any
worker process it starts run the engine on the same loop. uvloop is a default dependency on
Linux; `NIMBUS_EVENT_LOOP` (`auto`, `asyncio` or `uvloop`) overrides the choice: `asyncio` is
the escape hatch when uvloop misbehaves, `uvloop` refuses to run without it. `auto` falls back
to asyncio's loop, silently, when uvloop cannot be imported (another platform, a trimmed
install).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Mapping
from enum import StrEnum
from typing import Any, TypeVar

from nimbus_scenarios.errors import UsageError

__all__ = [
    "EVENT_LOOP_ENV",
    "LoopChoice",
    "loop_choice",
    "loop_factory",
    "loop_name",
    "run_on_loop",
]

_T = TypeVar("_T")

EVENT_LOOP_ENV = "NIMBUS_EVENT_LOOP"
"""The environment variable that picks the event loop (`LoopChoice`)."""


class LoopChoice(StrEnum):
    """The event loop asked for: `auto` is uvloop when importable, else asyncio."""

    AUTO = "auto"
    ASYNCIO = "asyncio"
    UVLOOP = "uvloop"


def loop_choice(environ: Mapping[str, str] | None = None) -> LoopChoice:
    """The choice in `NIMBUS_EVENT_LOOP` (unset or empty: `auto`); UsageError for anything else."""
    env = os.environ if environ is None else environ
    text = env.get(EVENT_LOOP_ENV, "").strip().lower()
    if not text:
        return LoopChoice.AUTO
    try:
        return LoopChoice(text)
    except ValueError:
        choices = ", ".join(choice.value for choice in LoopChoice)
        raise UsageError(
            f"{EVENT_LOOP_ENV}={env[EVENT_LOOP_ENV]!r}: expected one of {choices}"
        ) from None


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor, or None when uvloop cannot be imported."""
    try:
        import uvloop  # optional: absent off Linux or in a trimmed install
    except ImportError:
        return None
    new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return new_loop


def loop_factory(choice: LoopChoice) -> tuple[Callable[[], asyncio.AbstractEventLoop], str]:
    """The constructor of the loop `choice` asks for, and that loop's name (`uvloop`,
    `asyncio`). UsageError when uvloop is asked for by name and cannot be imported."""
    if choice is not LoopChoice.ASYNCIO:
        factory = _uvloop_factory()
        if factory is not None:
            return factory, LoopChoice.UVLOOP.value
        if choice is LoopChoice.UVLOOP:
            raise UsageError(
                f"{EVENT_LOOP_ENV}=uvloop, but uvloop cannot be imported here; install it "
                f"(pip install uvloop) or set {EVENT_LOOP_ENV}=asyncio"
            )
    return asyncio.new_event_loop, LoopChoice.ASYNCIO.value


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """`uvloop` or `asyncio`: which implementation `loop` is (for the results and the console)."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run_on_loop(work: Coroutine[Any, Any, _T], choice: LoopChoice | None = None) -> tuple[_T, str]:
    """Run `work` to its end on a new loop of `choice` (default: from the environment), as
    `asyncio.run` does; return its result and the loop's name."""
    factory, name = loop_factory(loop_choice() if choice is None else choice)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(work), name

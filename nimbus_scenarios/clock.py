"""The clock seam: every wait of a run goes through a `Clock`, so tests can hold time.

`LoopClock` is real time: the event loop's monotonic clock at full resolution and the wall clock.
`ManualClock` is time as data: `now()` moves only when the clock is advanced, and `run()` drives
a coroutine to its end, jumping to the next deadline whenever every task is waiting on the clock.
A ten-minute scenario is then played and judged in milliseconds.

`wait_for_event` and `within` are the two races the runner needs (an event against a deadline,
work against a deadline), written once over the protocol.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import math
import time
from collections.abc import Awaitable, Coroutine
from typing import Any, Protocol, TypeVar

__all__ = ["Clock", "LoopClock", "ManualClock", "parse_wall_time", "wait_for_event", "within"]

_T = TypeVar("_T")


def parse_wall_time(text: str) -> float:
    """A wall-clock moment as Unix seconds, from Unix seconds (`1767225600.5`) or an ISO 8601
    time (with a zone, or UTC); ValueError for anything else, NaN and infinities included."""
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(f"expected Unix seconds or an ISO 8601 time, got {text!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.timestamp()
    if not math.isfinite(seconds):
        raise ValueError(f"expected Unix seconds or an ISO 8601 time, got {text!r}")
    return seconds


class Clock(Protocol):
    """Monotonic time, the wall clock, and sleeping until a moment."""

    def now(self) -> float:
        """Seconds on a monotonic clock (the event loop's for `LoopClock`)."""
        ...

    def wall(self) -> float:
        """The wall-clock time now, as Unix seconds."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return at `deadline` (on `now()`'s clock); always lets other tasks run once."""
        ...


class LoopClock:
    """Real time: the running event loop's clock."""

    __slots__ = ("_loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    def _running(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def now(self) -> float:
        """`time.monotonic()`: the clock of asyncio's and uvloop's loops, at full resolution.

        asyncio's `loop.time()` is `time.monotonic()`; uvloop's is the same CLOCK_MONOTONIC cut
        to whole milliseconds, too coarse for send lateness and latencies under a millisecond.
        """
        return time.monotonic()

    def wall(self) -> float:
        """`time.time()`."""
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        """`asyncio.sleep` for what is left (zero when the deadline has passed).

        On uvloop what is left is rounded up to whole milliseconds, at least one: its timers
        count milliseconds and `call_later` rounds to the nearest one, so a wait of under half
        a millisecond would return at once, early, and a caller waiting for its deadline (the
        pacer) would spin until the millisecond turns.
        """
        left = deadline - time.monotonic()
        if left > 0 and type(self._running()).__module__.startswith("uvloop"):
            left = max(math.ceil(left * 1000.0 - 1e-6), 1) / 1000.0
        await asyncio.sleep(max(left, 0.0))


_SETTLE_PASSES = 10_000
_SETTLE_PASSES_BLIND = 200


class ManualClock:
    """Time that moves only when told: `advance`, or `run` with automatic jumps.

    `wall()` is `wall_start + now()`. A sleeper whose deadline has come is woken in deadline
    order, each at its own moment, so a task sees the time it asked for.
    """

    def __init__(self, start: float = 0.0, *, wall_start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._wall_start = wall_start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        """The clock's time."""
        return self._now

    def wall(self) -> float:
        """Unix time: `wall_start` plus `now()`."""
        return self._wall_start + self._now

    async def sleep_until(self, deadline: float) -> None:
        """Wait until the clock reaches `deadline`."""
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._order), future))
        await future

    @property
    def next_deadline(self) -> float | None:
        """The earliest moment a task waits for, if any waits."""
        self._forget_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    def _forget_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    async def advance_to(self, moment: float) -> None:
        """Move time to `moment`, waking every sleeper due on the way, in order."""
        while True:
            await _settle()
            self._forget_cancelled()
            if not self._sleepers or self._sleepers[0][0] > moment:
                break
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            future.set_result(None)
        self._now = max(self._now, moment)
        await _settle()

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`."""
        await self.advance_to(self._now + seconds)

    async def run(self, work: Coroutine[Any, Any, _T], *, limit_s: float = 86_400.0) -> _T:
        """Run `work` to its end, jumping to the next deadline whenever all tasks wait.

        Raises RuntimeError if `work` waits on something that is not the clock (nothing left
        to wake it), or if it is still running `limit_s` after the start.
        """
        task = asyncio.ensure_future(work)
        give_up = self._now + limit_s
        try:
            while not task.done():
                await _settle()
                if task.done():
                    break
                deadline = self.next_deadline
                if deadline is None:
                    raise RuntimeError("the work waits on something other than the clock")
                if deadline > give_up:
                    raise RuntimeError(f"still running after {limit_s:g}s of clock time")
                await self.advance_to(deadline)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return task.result()


async def _settle() -> None:
    """Let every task that can run, run, until all of them wait (on the clock or an event).

    CPython's loop keeps its ready callbacks in `_ready`; where it has none (uvloop), a fixed
    number of passes stands in.
    """
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    passes = _SETTLE_PASSES if ready is not None else _SETTLE_PASSES_BLIND
    for _ in range(passes):
        await asyncio.sleep(0)
        if ready is not None and not ready:
            return


async def wait_for_event(clock: Clock, event: asyncio.Event, deadline: float) -> bool:
    """Wait until `event` is set or `deadline` passes; True if the event was set."""
    if event.is_set():
        return True
    if deadline <= clock.now():
        return False
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(clock.sleep_until(deadline))
    try:
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        sleeper.cancel()
    return event.is_set()


async def within(clock: Clock, work: Awaitable[_T], deadline: float) -> _T:
    """The result of `work`, or TimeoutError (with `work` cancelled) at `deadline`."""
    task = asyncio.ensure_future(work)
    sleeper = asyncio.ensure_future(clock.sleep_until(deadline))
    try:
        await asyncio.wait({task, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        sleeper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raise TimeoutError

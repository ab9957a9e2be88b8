"""The clock seam: the manual clock wakes sleepers at their moments and jumps over idle time;
the races the runner needs (an event or work against a deadline) work on either clock."""

from __future__ import annotations

import asyncio
import time

import pytest

from nimbus_scenarios.clock import LoopClock, ManualClock, wait_for_event, within


def test_manual_clock_wakes_each_sleeper_at_its_own_moment() -> None:
    """Sleepers wake in deadline order and each sees the time it asked for."""
    clock = ManualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, at: float) -> None:
        await clock.sleep_until(at)
        woke.append((name, clock.now()))

    async def main() -> None:
        await clock.run(
            asyncio.gather(sleeper("late", 30.0), sleeper("early", 5.0), sleeper("mid", 12.5))
        )

    started = time.monotonic()
    asyncio.run(main())
    assert woke == [("early", 5.0), ("mid", 12.5), ("late", 30.0)]
    assert time.monotonic() - started < 1.0


def test_manual_clock_runs_an_hour_of_ticks_in_no_time() -> None:
    """A loop ticking every second for an hour finishes at once, at exactly 3600 s."""
    clock = ManualClock(start=100.0)
    ticks = 0

    async def ticker() -> float:
        nonlocal ticks
        while clock.now() < 3700.0:
            await clock.sleep_until(clock.now() + 1.0)
            ticks += 1
        return clock.now()

    async def main() -> float:
        return await clock.run(ticker())

    assert asyncio.run(main()) == 3700.0
    assert ticks == 3600


def test_manual_clock_advance_stops_short_of_later_sleepers() -> None:
    """`advance` wakes only what is due; the wall clock moves with it."""
    clock = ManualClock(wall_start=1000.0)
    done: list[float] = []

    async def main() -> None:
        async def sleep(at: float) -> None:
            await clock.sleep_until(at)
            done.append(at)

        tasks = [asyncio.ensure_future(sleep(t)) for t in (1.0, 2.0, 10.0)]
        await clock.advance(5.0)
        assert done == [1.0, 2.0]
        assert clock.now() == 5.0
        assert clock.wall() == 1005.0
        assert clock.next_deadline == 10.0
        await clock.advance_to(10.0)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert done == [1.0, 2.0, 10.0]


def test_manual_clock_refuses_work_that_waits_on_nothing_it_drives() -> None:
    """Work blocked on an event nobody sets is reported, not waited on forever."""
    clock = ManualClock()

    async def main() -> None:
        await clock.run(asyncio.Event().wait())

    with pytest.raises(RuntimeError, match="other than the clock"):
        asyncio.run(main())


def test_wait_for_event_returns_whether_the_event_came_first() -> None:
    """An event set before the deadline wins; a deadline with no event loses."""
    clock = ManualClock()

    async def main() -> tuple[bool, bool, float]:
        event = asyncio.Event()

        async def set_later() -> None:
            await clock.sleep_until(3.0)
            event.set()

        setter = asyncio.ensure_future(set_later())
        first = await wait_for_event(clock, event, 10.0)
        at = clock.now()
        await setter
        second = await wait_for_event(clock, asyncio.Event(), 20.0)
        return first, second, at

    async def driven() -> tuple[bool, bool, float]:
        return await clock.run(main())

    assert asyncio.run(driven()) == (True, False, 3.0)


def test_within_times_out_and_cancels_the_work() -> None:
    """Work still running at the deadline is cancelled and TimeoutError raised."""
    clock = ManualClock()
    cancelled = False

    async def slow() -> str:
        nonlocal cancelled
        try:
            await clock.sleep_until(100.0)
        except asyncio.CancelledError:
            cancelled = True
            raise
        return "late"

    async def fast() -> str:
        await clock.sleep_until(1.0)
        return "fast"

    async def main() -> str:
        result = await within(clock, fast(), 5.0)
        with pytest.raises(TimeoutError):
            await within(clock, slow(), 10.0)
        return result

    async def driven() -> str:
        return await clock.run(main())

    assert asyncio.run(driven()) == "fast"
    assert cancelled


def test_loop_clock_is_the_loops_time() -> None:
    """LoopClock reads the running loop's clock and really sleeps."""

    async def main() -> tuple[float, float]:
        clock = LoopClock()
        loop = asyncio.get_running_loop()
        start = clock.now()
        assert abs(start - loop.time()) < 0.01
        await clock.sleep_until(start + 0.05)
        return start, clock.now()

    start, end = asyncio.run(main())
    assert end - start >= 0.05
    assert abs(LoopClock().wall() - time.time()) < 1.0


def test_loop_clock_on_uvloop_keeps_full_resolution_and_never_wakes_early() -> None:
    """On uvloop (whose `time()` counts whole milliseconds) LoopClock still reads the same
    monotonic clock finer than a millisecond, and a wait for a deadline under half a
    millisecond away returns at or after it (uvloop's timers round such a wait to none)."""
    uvloop = pytest.importorskip("uvloop")

    async def main() -> tuple[list[float], list[tuple[float, float]]]:
        clock = LoopClock()
        loop = asyncio.get_running_loop()
        readings = []
        woke = []
        for _ in range(20):
            before = loop.time()
            now = clock.now()
            readings.append(now)
            assert before <= now < before + 0.002  # the loop's own clock, not another
            deadline = now + 0.0002
            await clock.sleep_until(deadline)
            woke.append((deadline, clock.now()))
        return readings, woke

    readings, woke = uvloop.run(main())
    assert any(abs(r * 1000 - round(r * 1000)) > 1e-3 for r in readings)  # not whole ms
    assert all(now >= deadline for deadline, now in woke)

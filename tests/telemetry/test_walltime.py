"""Tests of `_walltime`: timestamps from the run's clock."""

from __future__ import annotations

import asyncio
import time

from nimbus_scenarios.clock import LoopClock, ManualClock
from nimbus_scenarios.telemetry._walltime import WallTime

WALL_START = 2_000_000_000.0


def test_a_manual_clock_gives_every_timestamp() -> None:
    """Wall time is the clock's; a `now()` time maps to it once calibrated in the run."""
    clock = ManualClock(start=100.0, wall_start=WALL_START)
    wall = WallTime(clock)
    assert wall.now_ns() == round((WALL_START + 100.0) * 1e9)
    wall.calibrate()
    assert wall.at_ns(100.0) == wall.now_ns()
    assert wall.at_ns(101.25) == wall.now_ns() + 1_250_000_000


def test_the_loop_clock_maps_to_the_real_wall_clock() -> None:
    """Before the run the offset assumes `time.monotonic`; inside it, the loop's own clock."""
    wall = WallTime(LoopClock())
    moment = time.monotonic()
    assert abs(wall.at_ns(moment) - time.time_ns()) < 50_000_000

    async def in_the_run() -> tuple[int, int]:
        wall.calibrate()
        loop = asyncio.get_running_loop()
        return wall.at_ns(loop.time()), time.time_ns()

    mapped, real = asyncio.run(in_the_run())
    assert abs(mapped - real) < 50_000_000
    assert abs(wall.now_ns() - time.time_ns()) < 50_000_000

"""Telemetry's timestamps, taken from the run's `Clock`, so that a manual clock holds them too.

Its place: shared by the span, request and log parts of telemetry. OTLP wants Unix nanoseconds;
the run's times are on its clock (`Clock.now()`, the event loop's monotonic time for
`LoopClock`). `WallTime.now_ns` is the clock's wall time (root and phase spans, span events,
log records); `WallTime.at_ns` maps a time of the clock's `now()` (a request's send and
response, as the dispatcher observed them) by one offset, read from the clock when the run
starts: a `LoopClock` reads its loop only inside the run, and before that the offset assumes
asyncio's default clock (`time.monotonic`). On a `ManualClock` every timestamp is then on the
clock's wall time (`wall_start + now()`); metric points alone stay the SDK's (real time).
"""

from __future__ import annotations

import time

from nimbus_scenarios.clock import Clock

__all__ = ["WallTime"]


class WallTime:
    """Unix nanoseconds from the run's clock."""

    __slots__ = ("_clock", "offset_ns")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.offset_ns = time.time_ns() - time.monotonic_ns()
        """Added to a `now()` time in nanoseconds to make it a Unix time (see `calibrate`)."""

    def calibrate(self) -> None:
        """Read the offset between the clock's `now()` and its wall time (inside the run)."""
        clock = self._clock
        self.offset_ns = round((clock.wall() - clock.now()) * 1e9)

    def now_ns(self) -> int:
        """The clock's wall time now."""
        return round(self._clock.wall() * 1e9)

    def at_ns(self, moment: float) -> int:
        """A time of the clock's `now()` as Unix nanoseconds."""
        return int(moment * 1e9) + self.offset_ns

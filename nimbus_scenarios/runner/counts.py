"""What a worker tells its parent every second (`run --workers`): its live counts, as the
parent's status line adds them up, and the whole seconds of its series that the parent's
guards read (`GuardRows`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GuardRows", "SecondRow", "TickCounts"]


@dataclass(frozen=True, slots=True)
class TickCounts:
    """A worker's live counts, for the parent's status line."""

    sent_last_s: int = 0
    """Sent in the last whole second."""
    sent: int = 0
    dropped: int = 0
    succeeded: int = 0
    failed: int = 0
    in_flight: int = 0

    def plus(self, other: TickCounts) -> TickCounts:
        """Both counts added."""
        return TickCounts(
            self.sent_last_s + other.sent_last_s,
            self.sent + other.sent,
            self.dropped + other.dropped,
            self.succeeded + other.succeeded,
            self.failed + other.failed,
            self.in_flight + other.in_flight,
        )


@dataclass(frozen=True, slots=True)
class SecondRow:
    """One whole second of a worker's per-second series, as the guards read it."""

    second: int
    """The run offset second (the same seconds in every process: they share the start)."""
    succeeded: int
    failed: int
    latency: str | None
    """The encoded histogram of the second's response latencies (None: no response)."""


@dataclass(frozen=True, slots=True)
class GuardRows:
    """The seconds a worker completed since its last tick, for the parent's guards: every
    second below `upto` is now complete in the rows it has sent (seconds with nothing in
    them are left out)."""

    upto: int
    run: tuple[SecondRow, ...] = ()
    """The run's series (sent when a guard reads it: one without `of NAME`)."""
    requests: tuple[tuple[str, tuple[SecondRow, ...]], ...] = ()
    """Each template a guard names (`of NAME`), with its own series' rows."""

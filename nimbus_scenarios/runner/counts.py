"""A worker's live counts (`run --workers`), as the parent's status line adds them up."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TickCounts"]


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

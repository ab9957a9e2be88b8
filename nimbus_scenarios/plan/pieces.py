"""A phase's open-model rate as pieces: the shape's own, spikes cut in, exact arrival counts.

`timeline` resolves a phase's literals and calls these; everything here is exact (fractions) and
linear in the number of pieces and spikes, sorting aside: a file with thousands of spikes on
thousands of stairs plans in one sweep, not one pass per spike. A `Tally` passed in counts the
loop steps, so that tests can hold the work to a linear bound without timing anything.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from nimbus_scenarios.plan.model import Segment

__all__ = ["Piece", "Tally", "Window", "segments", "stairs", "with_spikes"]


class Piece(NamedTuple):
    """A stretch of a phase with a linear rate: offsets from the phase start, rates per second."""

    start: Fraction
    end: Fraction
    rate_start: Fraction
    rate_end: Fraction

    def cut(self, lo: Fraction, hi: Fraction) -> Piece:
        """The part of this piece between `lo` and `hi` (inside it), rates interpolated."""
        if lo == self.start and hi == self.end:
            return self
        return Piece(lo, hi, self.rate_at(lo), self.rate_at(hi))

    def rate_at(self, at: Fraction) -> Fraction:
        """The rate at offset `at`, exactly."""
        r0, r1 = self.rate_start, self.rate_end
        if r0 == r1 or self.end == self.start:
            return r0
        return r0 + (r1 - r0) * (at - self.start) / (self.end - self.start)


class Window(NamedTuple):
    """`spike R for D at T`: the rate is `rate` instead of the shape's during [start, end)."""

    start: Fraction
    end: Fraction
    rate: Fraction


@dataclass(slots=True)
class Tally:
    """Loop steps taken by `with_spikes` and `segments` (mutable: it is a counter)."""

    steps: int = 0


def stairs(first: Fraction, last: Fraction, count: int, length: Fraction) -> list[Piece]:
    """`steps first -> last in count` over `length`: `count` stairs of equal width, stair j at
    first + (last - first) j / (count - 1) (one stair: first)."""
    width = length / count
    rise = (last - first) / (count - 1) if count > 1 else Fraction(0)
    pieces = []
    start, rate = Fraction(0), first
    for j in range(1, count + 1):
        end = length if j == count else width * j
        pieces.append(Piece(start, end, rate, rate))
        start, rate = end, rate + rise
    return pieces


def with_spikes(
    pieces: Sequence[Piece], spikes: Iterable[Window], tally: Tally | None = None
) -> list[Piece]:
    """The pieces (in order, tiling the phase) with every spike's window cut in.

    Spikes must not overlap (validation refuses that; touching is fine). One sweep over the
    pieces and the spikes sorted by start, then a merge: O(P + S log S).
    """
    windows = sorted(spikes)
    if not windows:
        return list(pieces)
    outside: list[Piece] = []  # what is left of the pieces outside every window, in order
    w = 0  # the first window that may still meet the piece at hand
    for piece in pieces:
        cursor, end = piece.start, piece.end
        while w < len(windows) and windows[w].end <= cursor:
            w += 1
            _step(tally)
        while w < len(windows) and windows[w].start < end:
            _step(tally)
            window = windows[w]
            if window.start > cursor:
                outside.append(piece.cut(cursor, window.start))
            cursor = window.end
            if cursor >= end:
                break  # the window runs on into the next piece
            w += 1
        if cursor < end:
            outside.append(piece.cut(cursor, end))
        _step(tally)
    result: list[Piece] = []
    kept = 0
    for window in windows:
        while kept < len(outside) and outside[kept].start < window.start:
            result.append(outside[kept])
            kept += 1
            _step(tally)
        result.append(Piece(window.start, window.end, window.rate, window.rate))
        _step(tally)
    result.extend(outside[kept:])
    return result


def segments(
    pieces: Iterable[Piece], offset: Fraction, tally: Tally | None = None
) -> tuple[list[Segment], int]:
    """Segments with exact arrival counts: arrival k lies in the piece whose integral covers it.

    `offset` is the phase start as a run offset; the second value is the phase's arrivals.
    """
    result = []
    cumulative = Fraction(0)
    first = 0
    for start, end, r0, r1 in pieces:
        _step(tally)
        integral_start = float(cumulative)
        # flat pieces (stairs, spikes, idle) are most of them: one product, not four operations
        cumulative += r0 * (end - start) if r0 == r1 else (r0 + r1) * (end - start) / 2
        reached = math.ceil(cumulative)
        result.append(
            Segment(
                start_s=float(offset + start),
                end_s=float(offset + end),
                rate_start=float(r0),
                rate_end=float(r1),
                first=first,
                count=reached - first,
                integral_start=integral_start,
            )
        )
        first = reached
    return result, first


def _step(tally: Tally | None) -> None:
    if tally is not None:
        tally.steps += 1

"""Arrival times and template choice: the exact arithmetic shared by the plan and the engine.

The k-th arrival of a segment is where the integral of its linear rate reaches k (solved in
closed form, so no drift accumulates). Templates are interleaved in Sainte-Laguë (Webster) order:
arrival n goes to the template i with the largest w_i / (2 c_i + 1), c_i being its arrivals so
far, ties to the first. For two templates that is exactly nginx's smooth weighted round robin;
for any number, every whole cycle of the integer weights holds them exactly, the first n
arrivals are Webster's apportionment of n by the weights, and their counts have a closed form
(`mix_counts`), so no plan walks the arrivals one by one (a cycle can be billions long). The order
replaced nginx's round robin for three templates and more, which has no closed form. No
randomness, only integers.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from collections.abc import Iterator, Sequence
from fractions import Fraction

from nimbus_scenarios.language.nodes import ShapeKind
from nimbus_scenarios.plan.model import PhasePlan, Segment

__all__ = [
    "MIX_CYCLE_LIMIT",
    "arrival_times",
    "integer_weights",
    "last_arrival_offset",
    "mix_chooser",
    "mix_counts",
    "mix_order",
    "segment_offsets",
    "shard_share",
]


def arrival_times(phase: PhasePlan) -> Iterator[float]:
    """Every scheduled arrival of an open-model phase as a run offset, in time order.

    Bursts yield `burst_size` equal offsets per instant.
    """
    if phase.shape is ShapeKind.BURST:
        for j in range(phase.burst_count):
            at = phase.start_s + j * phase.burst_every_s
            for _ in range(phase.burst_size):
                yield at
        return
    for segment in phase.segments:
        yield from segment_offsets(segment)


def last_arrival_offset(phase: PhasePlan) -> float | None:
    """The offset of the phase's last arrival (the last `arrival_times` yields), None if it has
    none; computed by the same arithmetic, without walking the arrivals."""
    if phase.shape is ShapeKind.BURST:
        if phase.burst_count <= 0 or phase.burst_size <= 0:
            return None
        return phase.start_s + (phase.burst_count - 1) * phase.burst_every_s
    for segment in reversed(phase.segments):
        if segment.count > 0:
            last = dataclasses.replace(segment, first=segment.first + segment.count - 1, count=1)
            return next(segment_offsets(last))
    return None


def segment_offsets(segment: Segment) -> Iterator[float]:
    """Run offsets of a segment's arrivals: arrival k lies where the integral reaches k."""
    t0, t1 = segment.start_s, segment.end_s
    r0, r1 = segment.rate_start, segment.rate_end
    width = t1 - t0
    slope = (r1 - r0) / width if width > 0 else 0.0
    for j in range(segment.count):
        x = max(segment.first + j - segment.integral_start, 0.0)
        if x == 0.0:
            yield t0
        elif slope == 0.0:
            yield min(t0 + x / r0, t1)
        else:
            u = 2.0 * x / (r0 + math.sqrt(max(r0 * r0 + 2.0 * slope * x, 0.0)))
            yield min(t0 + u, t1)


def integer_weights(weights: Sequence[Fraction]) -> list[int]:
    """Weights scaled to the smallest integers with the same ratios."""
    if not weights:
        return []
    scale = math.lcm(*(w.denominator for w in weights))
    ints = [int(w * scale) for w in weights]
    divisor = math.gcd(*ints) or 1
    return [i // divisor for i in ints]


class _Element:
    """Template `index`'s element w / (2c + 1) of the Sainte-Laguë order (`odd` is 2c + 1).

    Values are compared by cross-multiplying their integers, never as floats or fractions.
    """

    __slots__ = ("index", "odd", "weight")

    def __init__(self, weight: int, odd: int, index: int) -> None:
        self.weight, self.odd, self.index = weight, odd, index

    def _compare(self, other: _Element) -> int:
        """Above 0 when this element's value is the larger, 0 when they are equal."""
        return self.weight * other.odd - other.weight * self.odd


class _Next(_Element):
    """A heap entry ordered as the order takes them: the larger value, then the lower index."""

    __slots__ = ()

    def __lt__(self, other: _Next) -> bool:
        compared = self._compare(other)
        return compared > 0 or (compared == 0 and self.index < other.index)


class _Last(_Element):
    """A heap entry ordered last-taken first: the smaller value, then the higher index."""

    __slots__ = ()

    def __lt__(self, other: _Last) -> bool:
        compared = self._compare(other)
        return compared < 0 or (compared == 0 and self.index > other.index)


def mix_order(weights: Sequence[int]) -> Iterator[int]:
    """Template indices in Sainte-Laguë order, one per arrival, endless; O(log k) each.

    Arrival n goes to the template with the largest w_i / (2 c_i + 1), ties to the lowest
    index. For two templates this is nginx's smooth weighted round robin, choice for choice.
    """
    heads = [_Next(w, 1, i) for i, w in enumerate(weights)]
    heapq.heapify(heads)
    while heads:
        head = heads[0]
        yield head.index
        heapq.heapreplace(heads, _Next(head.weight, head.odd + 2, head.index))


MIX_CYCLE_LIMIT = 4096
"""`mix_chooser` replays one whole cycle of the order when the integer weights sum to at most
this (a list of that many small ints); longer cycles are computed arrival by arrival."""


def mix_chooser(weights: Sequence[int]) -> Iterator[int]:
    """The same endless sequence as `mix_order(weights)`, cheaper per arrival where it can be.

    The order repeats after each whole cycle (sum of the weights): at its end every template has
    had exactly its weight, and every comparison w_i (2 c_j + 1) against w_j (2 c_i + 1) is the
    one at the start, offset by 2 w_i w_j on both sides. So a cycle of at most `MIX_CYCLE_LIMIT`
    is computed once and replayed; one template is always template 0.
    """
    if len(weights) == 1:
        return itertools.repeat(0)
    period = sum(weights)
    if 0 < period <= MIX_CYCLE_LIMIT and all(w > 0 for w in weights):
        return itertools.cycle(list(itertools.islice(mix_order(weights), period)))
    return mix_order(weights)


def mix_counts(weights: Sequence[int], total: int) -> list[int]:
    """How many of the first `total` arrivals `mix_order(weights)` gives each template.

    Closed form, O(k log k) whatever `total` is. The order takes the elements w_i / (2j + 1)
    (j = 0, 1, ...) from the largest down, ties to the lower index. Those above
    T / (2 total) (T = sum of the weights) come first: template i has
    ((2 total w_i - 1) // T + 1) // 2 of them, and together they are within k/2 of `total`.
    The rest is settled element by element: the next ones in the order are added, or the
    last ones taken are given back, until the counts add up to `total`.
    """
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    counts = [((2 * total * w - 1) // whole + 1) // 2 for w in weights]
    taken = sum(counts)
    pairs = list(enumerate(zip(weights, counts, strict=True)))
    if taken < total:
        following = [_Next(w, 2 * c + 1, i) for i, (w, c) in pairs]
        heapq.heapify(following)
        for _ in range(total - taken):
            head = following[0]
            counts[head.index] += 1
            heapq.heapreplace(following, _Next(head.weight, head.odd + 2, head.index))
    elif taken > total:
        last = [_Last(w, 2 * c - 1, i) for i, (w, c) in pairs if c]
        heapq.heapify(last)
        for _ in range(taken - total):
            tail = last[0]
            counts[tail.index] -= 1
            if tail.odd > 1:
                heapq.heapreplace(last, _Last(tail.weight, tail.odd - 2, tail.index))
            else:
                heapq.heappop(last)
    return counts


def shard_share(total: int, index: int, count: int) -> int:
    """How many of `total` arrivals (numbered 0..total-1) shard `index` of `count` sends: the
    arrivals k with k mod count == index."""
    return (total - index + count - 1) // count if total > index else 0

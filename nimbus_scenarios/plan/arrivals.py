"""Arrival times and template choice: the exact arithmetic shared by the plan and the engine.

The k-th arrival of a segment is where the integral of its linear rate reaches k (solved in
closed form, so no drift accumulates); templates are interleaved by smooth weighted round robin,
so every cycle of the weights holds them exactly, with no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from fractions import Fraction

from nimbus_scenarios.language.nodes import ShapeKind
from nimbus_scenarios.plan.model import PhasePlan, Segment

__all__ = [
    "arrival_times",
    "integer_weights",
    "mix_counts",
    "segment_offsets",
    "shard_share",
    "smooth_round_robin",
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


def smooth_round_robin(weights: Sequence[int]) -> Iterator[int]:
    """Indices chosen by smooth weighted round robin (nginx's): endless, evenly interleaved."""
    total = sum(weights)
    current = [0] * len(weights)
    if len(weights) == 1:
        while True:
            yield 0
    while True:
        best = 0
        for i, w in enumerate(weights):
            current[i] += w
            if current[i] > current[best]:
                best = i
        current[best] -= total
        yield best


def mix_counts(weights: Sequence[Fraction], total: int) -> list[int]:
    """How many of `total` arrivals each template gets under smooth weighted round robin."""
    ints = integer_weights(weights)
    cycle = sum(ints)
    full, rest = divmod(total, cycle)
    counts = [w * full for w in ints]
    chooser = smooth_round_robin(ints)
    for _ in range(rest):
        counts[next(chooser)] += 1
    return counts


def shard_share(total: int, index: int, count: int) -> int:
    """How many of `total` arrivals (numbered 0..total-1) shard `index` of `count` sends: the
    arrivals k with k mod count == index."""
    return (total - index + count - 1) // count if total > index else 0

"""HDR latency histograms that are cheap to record into: the engine's one way to hold latencies.

Its place: the bottom of the `engine` stage. `engine.stats` (per phase), `engine.series` (per
second) and the dispatcher (send lateness) record into `LatencyHistogram`; the judge's guards
decode and merge per-second histograms with it.

The hot path records into a plain list of counts with the exact bucket layout of the
``hdrhistogram`` package (whose own ``record_value`` is about four times slower); hdrhistogram
is used only to encode and decode (its compressed base64 V2 format), so encoded histograms stay
interoperable with other HDR tools. Values are integer microseconds from 1 us to one hour.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from itertools import accumulate
from operator import add, sub
from typing import Final

from hdrh.histogram import HdrHistogram

from nimbus_scenarios.engine.records import LatencySummary

__all__ = [
    "HIGHEST_TRACKABLE_US",
    "PHASE_SIGNIFICANT_DIGITS",
    "SECOND_SIGNIFICANT_DIGITS",
    "LatencyHistogram",
]

HIGHEST_TRACKABLE_US: Final = 3_600_000_000
"""One hour in microseconds: larger latencies are recorded as one hour."""
PHASE_SIGNIFICANT_DIGITS: Final = 3
"""The precision of per-phase histograms (and of send lateness)."""
SECOND_SIGNIFICANT_DIGITS: Final = 2
"""The precision of per-second histograms: coarser, because a long run keeps one per second."""

_SUMMARY_PERCENTILES: Final = (50.0, 90.0, 95.0, 99.0)


class _Layout:
    """The bucket layout of an hdrhistogram with lowest value 1, and a scratch one to encode."""

    __slots__ = (
        "counts_len",
        "digits",
        "half_count",
        "half_mag",
        "highest",
        "mask",
        "scratch",
        "shift",
        "zeros",
    )

    def __init__(self, digits: int, highest: int) -> None:
        scratch = HdrHistogram(1, highest, digits)
        self.digits = digits
        self.highest = highest
        self.counts_len = int(scratch.counts_len)
        self.mask = int(scratch.sub_bucket_mask)
        self.half_mag = int(scratch.sub_bucket_half_count_magnitude)
        self.half_count = int(scratch.sub_bucket_half_count)
        self.shift = self.half_mag + 1
        self.zeros = (0,) * self.counts_len
        self.scratch = scratch

    def lowest_value(self, index: int) -> int:
        """The lowest value of the bucket at ``index`` (hdrh's get_value_from_index)."""
        bucket = (index >> self.half_mag) - 1
        sub = (index & (self.half_count - 1)) + self.half_count
        if bucket < 0:
            sub -= self.half_count
            bucket = 0
        return sub << bucket

    def highest_value(self, index: int) -> int:
        """The highest value equivalent to the bucket at ``index``."""
        bucket = max((index >> self.half_mag) - 1, 0)
        return self.lowest_value(index) + (1 << bucket) - 1

    def median_value(self, index: int) -> int:
        """The middle of the bucket at ``index`` (what hdrhistogram's mean weighs)."""
        bucket = max((index >> self.half_mag) - 1, 0)
        return self.lowest_value(index) + ((1 << bucket) >> 1)


_LAYOUTS: dict[tuple[int, int], _Layout] = {}


def _layout(digits: int, highest: int) -> _Layout:
    layout = _LAYOUTS.get((digits, highest))
    if layout is None:
        layout = _LAYOUTS[digits, highest] = _Layout(digits, highest)
    return layout


class LatencyHistogram:
    """An HDR histogram of integer microseconds, cheap to record into.

    Same buckets as ``hdrh.histogram.HdrHistogram(1, highest_us, significant_digits)`` and the
    same percentile semantics (a percentile is the highest value equivalent to the bucket that
    holds it); `encode` / `decode` use hdrhistogram's compressed base64 format. Values below 0
    are recorded as 0 and values above ``highest_us`` as ``highest_us``.
    """

    __slots__ = ("_counts", "_half_count", "_half_mag", "_highest", "_layout", "_mask", "_shift")

    def __init__(
        self,
        significant_digits: int = PHASE_SIGNIFICANT_DIGITS,
        highest_us: int = HIGHEST_TRACKABLE_US,
    ) -> None:
        layout = _layout(significant_digits, highest_us)
        self._layout = layout
        self._counts = list(layout.zeros)
        # Copied out of the layout so that `record` reads slots, not a chain of attributes.
        self._highest = highest_us
        self._mask = layout.mask
        self._half_mag = layout.half_mag
        self._half_count = layout.half_count
        self._shift = layout.shift

    @property
    def significant_digits(self) -> int:
        """The precision the buckets keep."""
        return self._layout.digits

    def record(self, value_us: int) -> None:
        """Count one value (hot path)."""
        if value_us > self._highest:
            value_us = self._highest
        elif value_us < 0:
            value_us = 0
        bucket = (value_us | self._mask).bit_length() - self._shift
        self._counts[
            ((bucket + 1) << self._half_mag) + (value_us >> bucket) - self._half_count
        ] += 1

    def record_count(self, value_us: int, count: int) -> None:
        """Count ``count`` occurrences of one value."""
        if value_us > self._highest:
            value_us = self._highest
        elif value_us < 0:
            value_us = 0
        bucket = (value_us | self._mask).bit_length() - self._shift
        index = ((bucket + 1) << self._half_mag) + (value_us >> bucket) - self._half_count
        self._counts[index] += count

    @property
    def total_count(self) -> int:
        """How many values were recorded."""
        return sum(self._counts)

    def reset(self) -> None:
        """Forget every value (the per-second series reuses its live histograms)."""
        self._counts[:] = self._layout.zeros

    def copy(self) -> LatencyHistogram:
        """An independent histogram with the same counts."""
        other = LatencyHistogram(self._layout.digits, self._highest)
        other._counts[:] = self._counts
        return other

    def add(self, other: LatencyHistogram) -> None:
        """Add every count of ``other`` (re-bucketing its values if its layout differs)."""
        if other._layout is self._layout:
            self._counts[:] = map(add, self._counts, other._counts)
            return
        layout = other._layout
        for index, count in enumerate(other._counts):
            if count:
                self.record_count(layout.lowest_value(index), count)

    def without(self, other: LatencyHistogram) -> LatencyHistogram | None:
        """A new histogram of this one's values minus ``other``'s (same layout), or None when
        ``other`` holds a value this one does not."""
        if other._layout is not self._layout:
            return None
        rest = LatencyHistogram(self._layout.digits, self._highest)
        rest._counts[:] = map(sub, self._counts, other._counts)
        return None if any(count < 0 for count in rest._counts) else rest

    def __eq__(self, other: object) -> bool:
        """Same layout, same counts."""
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        return self._layout is other._layout and self._counts == other._counts

    __hash__ = None  # type: ignore[assignment]

    # Queries -------------------------------------------------------------------------------

    def percentiles(self, percentiles: Iterable[float]) -> dict[float, int]:
        """Values (us) at the given percentiles (0-100); all 0 for an empty histogram."""
        return self._percentiles(list(accumulate(self._counts)), percentiles)

    def _percentiles(self, cumulative: list[int], percentiles: Iterable[float]) -> dict[float, int]:
        total = cumulative[-1]
        result: dict[float, int] = {}
        layout = self._layout
        for percentile in percentiles:
            if not total:
                result[percentile] = 0
                continue
            target = max(int(min(percentile, 100.0) * total / 100 + 0.5), 1)
            index = bisect_left(cumulative, target)
            if percentile:
                result[percentile] = layout.highest_value(index)
            else:
                result[percentile] = layout.lowest_value(index)
        return result

    def value_at_percentile(self, percentile: float) -> int:
        """The value (us) at one percentile (0-100); 0 when empty."""
        return self.percentiles((percentile,))[percentile]

    def max_value(self) -> int:
        """The highest value equivalent to the largest value recorded (0 when empty)."""
        counts = self._counts
        for index in range(len(counts) - 1, -1, -1):
            if counts[index]:
                return self._layout.highest_value(index)
        return 0

    def mean_value(self) -> float:
        """The mean, from bucket midpoints (as hdrhistogram computes it); 0.0 when empty."""
        layout = self._layout
        total = 0
        weighted = 0
        for index, count in enumerate(self._counts):
            if count:
                total += count
                weighted += count * layout.median_value(index)
        return weighted / total if total else 0.0

    def summary(self) -> LatencySummary:
        """p50, p90, p95, p99, max and mean in milliseconds (all 0.0 when empty)."""
        values = self.percentiles(_SUMMARY_PERCENTILES)
        return LatencySummary(
            p50=values[50.0] / 1000.0,
            p90=values[90.0] / 1000.0,
            p95=values[95.0] / 1000.0,
            p99=values[99.0] / 1000.0,
            max=self.max_value() / 1000.0,
            mean=self.mean_value() / 1000.0,
        )

    def sealed(self, percentiles: Iterable[float]) -> tuple[int, dict[float, int], str] | None:
        """(count, values at ``percentiles``, encoding) in one pass; None when empty.

        What the per-second series keeps of a second once its live histogram is reused.
        """
        cumulative = list(accumulate(self._counts))
        total = cumulative[-1]
        if not total:
            return None
        return total, self._percentiles(cumulative, percentiles), self._encode(cumulative)

    # Encoding ------------------------------------------------------------------------------

    def encode(self) -> str:
        """hdrhistogram's compressed base64 (V2) encoding of this histogram."""
        return self._encode(list(accumulate(self._counts)))

    def _encode(self, cumulative: list[int]) -> str:
        scratch = self._layout.scratch
        scratch.counts[:] = self._counts
        total = cumulative[-1]
        if total:
            scratch.set_internal_tacking_values(
                bisect_left(cumulative, 1), bisect_left(cumulative, total), total
            )
        else:
            scratch.total_count = 0
        return str(scratch.encode().decode("ascii"))

    @classmethod
    def decode(
        cls,
        encoded: str | bytes,
        significant_digits: int | None = None,
        highest_us: int = HIGHEST_TRACKABLE_US,
    ) -> LatencyHistogram:
        """Read an hdrhistogram encoding; ``significant_digits`` defaults to the encoded one.

        A histogram whose layout differs (other digits, range or lowest value) is re-bucketed
        value by value, to the precision of the coarser of the two.
        """
        source = HdrHistogram.decode(encoded)
        digits = (
            int(source.significant_figures) if significant_digits is None else significant_digits
        )
        histogram = cls(digits, highest_us)
        same_layout = (
            int(source.lowest_trackable_value) == 1
            and int(source.significant_figures) == digits
            and int(source.counts_len) == histogram._layout.counts_len
        )
        if same_layout:
            histogram._counts[:] = source.counts
            return histogram
        for index, count in enumerate(source.counts):
            if count:
                histogram.record_count(int(source.get_value_from_index(index)), int(count))
        return histogram

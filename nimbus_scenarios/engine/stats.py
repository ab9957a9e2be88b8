"""Counters and HDR latency histograms for one load run: what the engine records per request.

Its place: the `engine` stage. The open-model pacer and the transports (`engine.transport`) call
the hot-path methods of `PhaseStats` for every request (`schedule`, `mark_sent`, `drop`,
`record`); the live progress display reads `RunStats.snapshot`; the results file is
`RunStats.to_json`, which `RunStats.from_json` reads back and `merge` combines (e.g. the results
of several load generators), and the judge and the report read those.

Times given to the hot-path methods are seconds (floats) on one monotonic clock, the one
`RunStats.started_at` is on (the event loop's ``loop.time()`` is a good choice). Latencies are
kept in microseconds in HDR histograms covering 1 us ... 1 hour:

* ``latency``: from the *scheduled* time to completion. Because an open-model pacer schedules
  independently of responses, this is corrected for coordinated omission: a stalled sender or a
  full connection pool shows up as latency instead of silently thinning the load.
* ``service_time``: from the actual send to completion.

Both count every completed request, failed ones included (a fast 503 or a timeout is a latency
too); the counters tell how many failed. The hot path records into `LatencyHistogram`, a plain
list of counts with the exact bucket layout of the ``hdrhistogram`` package (whose own
``record_value`` is about four times slower); hdrhistogram is used to encode, decode and merge
(its compressed base64 V2 format), so results files stay interoperable with other HDR tools.

Per-second series: the run-wide `SecondSeries` counts, for each whole second of run offset,
scheduled and dropped (by scheduled time), sent (by send time), succeeded and failed (by
completion time) and keeps latency percentiles by completion time. Memory stays flat however long
the run: only the last ``live_seconds`` (2) seconds have live histograms (2 significant digits);
older seconds are sealed into a `SecondLatency` record (count, p50/p95/p99/max and the encoded
histogram) and the live histogram objects are reset and reused.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from operator import add
from typing import Any, Final

from hdrh.histogram import HdrHistogram

__all__ = [
    "HIGHEST_TRACKABLE_US",
    "PHASE_SIGNIFICANT_DIGITS",
    "SECOND_SIGNIFICANT_DIGITS",
    "LatencyHistogram",
    "PhaseStats",
    "RunStats",
    "SecondLatency",
    "SecondSeries",
    "Snapshot",
    "merge",
]

HIGHEST_TRACKABLE_US: Final = 3_600_000_000
"""One hour in microseconds: larger latencies are recorded as one hour."""
PHASE_SIGNIFICANT_DIGITS: Final = 3
SECOND_SIGNIFICANT_DIGITS: Final = 2
FORMAT: Final = "nimbus-stats/1"

JsonDict = dict[str, Any]

_SUMMARY_PERCENTILES: Final = (50.0, 90.0, 95.0, 99.0)
_SECOND_PERCENTILES: Final = (50.0, 95.0, 99.0)
_TIMEOUT: Final = "timeout"  # engine.request.ErrorKind.timeout (a StrEnum compares equal)


# --------------------------------------------------------------------------------------------
# Histograms


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
        self._highest = highest_us
        self._mask = layout.mask
        self._half_mag = layout.half_mag
        self._half_count = layout.half_count
        self._shift = layout.shift

    @property
    def significant_digits(self) -> int:
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
        return sum(self._counts)

    def reset(self) -> None:
        self._counts[:] = self._layout.zeros

    def copy(self) -> LatencyHistogram:
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

    # Queries -------------------------------------------------------------------------------

    def percentiles(self, percentiles: Iterable[float]) -> dict[float, int]:
        """Values (us) at the given percentiles (0-100); all 0 for an empty histogram."""
        cumulative = list(accumulate(self._counts))
        return self._percentiles(cumulative, percentiles)

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

    def summary_ms(self) -> dict[str, float]:
        """p50, p90, p95, p99, max and mean in milliseconds."""
        values = self.percentiles(_SUMMARY_PERCENTILES)
        return {
            "p50": values[50.0] / 1000.0,
            "p90": values[90.0] / 1000.0,
            "p95": values[95.0] / 1000.0,
            "p99": values[99.0] / 1000.0,
            "max": self.max_value() / 1000.0,
            "mean": self.mean_value() / 1000.0,
        }

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


# --------------------------------------------------------------------------------------------
# Per-second series


@dataclass(frozen=True, slots=True)
class SecondLatency:
    """The sealed latency (from scheduled time, by completion second) of one second."""

    count: int
    p50_us: int
    p95_us: int
    p99_us: int
    max_us: int
    encoded: str
    """hdrhistogram encoding (2 significant digits), so seconds can be merged later."""

    @classmethod
    def of(cls, histogram: LatencyHistogram) -> SecondLatency | None:
        """Seal ``histogram`` (None when it is empty)."""
        cumulative = list(accumulate(histogram._counts))
        total = cumulative[-1]
        if not total:
            return None
        values = histogram._percentiles(cumulative, (*_SECOND_PERCENTILES, 100.0))
        return cls(
            count=total,
            p50_us=values[50.0],
            p95_us=values[95.0],
            p99_us=values[99.0],
            max_us=values[100.0],
            encoded=histogram._encode(cumulative),
        )

    def to_json(self) -> JsonDict:
        return {
            "count": self.count,
            "p50": self.p50_us / 1000.0,
            "p95": self.p95_us / 1000.0,
            "p99": self.p99_us / 1000.0,
            "max": self.max_us / 1000.0,
        }


_GROW: Final = 64
_MAX_SECOND: Final = 7 * 86_400  # a wild timestamp must not allocate without bound


class SecondSeries:
    """Counts and latency percentiles for each whole second of run offset (see the module doc).

    Seconds are ``int(t - started_at)``; times before ``started_at`` count in second 0 (and
    times more than a week after it in the week's last second). A
    completion for a second that is already sealed (more than ``live_seconds`` behind the
    newest completion) is counted in its own second's counters but its latency goes to the
    oldest live second (``late_latencies`` counts those; with completion times taken at the
    completion, this does not happen).
    """

    def __init__(
        self,
        started_at: float,
        *,
        live_seconds: int = 2,
        significant_digits: int = SECOND_SIGNIFICANT_DIGITS,
    ) -> None:
        if live_seconds < 1:
            raise ValueError(f"live_seconds must be >= 1, got {live_seconds!r}")
        self.started_at = started_at
        self.live_seconds = live_seconds
        self.significant_digits = significant_digits
        self.late_latencies = 0
        size = _GROW
        self.scheduled: list[int] = [0] * size
        self.sent: list[int] = [0] * size
        self.dropped: list[int] = [0] * size
        self.succeeded: list[int] = [0] * size
        self.failed: list[int] = [0] * size
        self._size = size
        self._sealed: list[SecondLatency | None] = []  # index: second; len == _live_base
        self._live = [LatencyHistogram(significant_digits) for _ in range(live_seconds)]
        self._live_base = 0  # the second of _live[0]
        self._cur_sec = 0
        self._cur_hist = self._live[0]

    # Hot path ------------------------------------------------------------------------------

    def _index(self, at: float) -> int:
        """The counter index of time ``at``, growing the counter lists when needed."""
        sec = min(int(at - self.started_at), _MAX_SECOND)
        if sec < 0:
            return 0
        if sec >= self._size:
            grow = max(sec + 1 - self._size, _GROW)
            for counters in (self.scheduled, self.sent, self.dropped, self.succeeded, self.failed):
                counters.extend([0] * grow)
            self._size += grow
        return sec

    def count_scheduled(self, at: float, n: int = 1) -> None:
        sec = int(at - self.started_at)
        if 0 <= sec < self._size:
            self.scheduled[sec] += n
        else:
            self.scheduled[self._index(at)] += n

    def count_sent(self, at: float) -> None:
        sec = int(at - self.started_at)
        if 0 <= sec < self._size:
            self.sent[sec] += 1
        else:
            self.sent[self._index(at)] += 1

    def count_dropped(self, at: float) -> None:
        sec = int(at - self.started_at)
        if 0 <= sec < self._size:
            self.dropped[sec] += 1
        else:
            self.dropped[self._index(at)] += 1

    def count_done(self, done_at: float, latency_us: int, ok: bool) -> None:
        sec = int(done_at - self.started_at)
        if sec == self._cur_sec:
            self._cur_hist.record(latency_us)
        else:
            sec = self._index(done_at)
            self._latency_slow(sec).record(latency_us)
        if ok:
            self.succeeded[sec] += 1
        else:
            self.failed[sec] += 1

    def _latency_slow(self, sec: int) -> LatencyHistogram:
        """The live histogram for completion second ``sec``, sealing old seconds first."""
        live = self._live
        window = self.live_seconds
        if sec < self._live_base:
            self.late_latencies += 1
            return live[0]
        end = self._live_base + window
        if sec >= end:
            to_seal = sec - end + 1
            if to_seal >= window:
                for hist in live:
                    self._sealed.append(SecondLatency.of(hist))
                    hist.reset()
                self._sealed.extend([None] * (to_seal - window))
            else:
                for _ in range(to_seal):
                    hist = live.pop(0)
                    self._sealed.append(SecondLatency.of(hist))
                    hist.reset()
                    live.append(hist)
            self._live_base += to_seal
        hist = live[sec - self._live_base]
        if sec > self._cur_sec:
            self._cur_sec = sec
            self._cur_hist = hist
        return hist

    # Reading -------------------------------------------------------------------------------

    @property
    def live_histograms(self) -> int:
        """How many live (not yet sealed) per-second histograms exist: ``live_seconds``."""
        return len(self._live)

    @property
    def sealed_seconds(self) -> int:
        return len(self._sealed)

    def __len__(self) -> int:
        """Seconds from 0 to the last one with any count or latency."""
        last = -1
        for counters in (self.scheduled, self.sent, self.dropped, self.succeeded, self.failed):
            for sec in range(len(counters) - 1, last, -1):
                if counters[sec]:
                    last = sec
                    break
        for offset, hist in enumerate(self._live):
            if any(hist._counts):
                last = max(last, self._live_base + offset)
        for sec in range(len(self._sealed) - 1, last, -1):
            if self._sealed[sec] is not None:
                last = sec
                break
        return last + 1

    def latency(self, sec: int) -> SecondLatency | None:
        """The latency record of second ``sec`` (computed without sealing for live seconds)."""
        if sec < len(self._sealed):
            return self._sealed[sec]
        offset = sec - self._live_base
        if 0 <= offset < len(self._live):
            return SecondLatency.of(self._live[offset])
        return None

    def recent_latency(self, lookback: int = 5) -> tuple[int, SecondLatency] | None:
        """The most recent sealed second that had completions, within ``lookback`` seconds."""
        sealed = self._sealed
        for sec in range(len(sealed) - 1, max(len(sealed) - 1 - lookback, -1), -1):
            record = sealed[sec]
            if record is not None:
                return sec, record
        return None

    def _counter(self, counters: list[int], sec: int) -> int:
        return counters[sec] if sec < len(counters) else 0

    def to_json(self) -> list[JsonDict]:
        seconds: list[JsonDict] = []
        for sec in range(len(self)):
            record = self.latency(sec)
            seconds.append(
                {
                    "second": sec,
                    "scheduled": self._counter(self.scheduled, sec),
                    "sent": self._counter(self.sent, sec),
                    "dropped": self._counter(self.dropped, sec),
                    "succeeded": self._counter(self.succeeded, sec),
                    "failed": self._counter(self.failed, sec),
                    "latency_ms": None if record is None else record.to_json(),
                    "histogram": None if record is None else record.encoded,
                }
            )
        return seconds

    @classmethod
    def from_json(cls, seconds: Sequence[JsonDict], started_at: float = 0.0) -> SecondSeries:
        """Rebuild a finished series (every second sealed) from `to_json` output."""
        series = cls(started_at)
        n = len(seconds)
        series._index(started_at + n)  # allocate counters
        for item in seconds:
            sec = int(item["second"])
            series.scheduled[sec] = int(item["scheduled"])
            series.sent[sec] = int(item["sent"])
            series.dropped[sec] = int(item["dropped"])
            series.succeeded[sec] = int(item["succeeded"])
            series.failed[sec] = int(item["failed"])
        sealed: list[SecondLatency | None] = [None] * n
        for item in seconds:
            encoded, latency = item.get("histogram"), item.get("latency_ms")
            if encoded and latency:
                sealed[int(item["second"])] = SecondLatency(
                    count=int(latency["count"]),
                    p50_us=round(float(latency["p50"]) * 1000.0),
                    p95_us=round(float(latency["p95"]) * 1000.0),
                    p99_us=round(float(latency["p99"]) * 1000.0),
                    max_us=round(float(latency["max"]) * 1000.0),
                    encoded=str(encoded),
                )
        series._seal_as(sealed)
        return series

    def _seal_as(self, sealed: list[SecondLatency | None]) -> None:
        """Replace the latency records by ``sealed`` (live seconds start after them)."""
        self._sealed = sealed
        self._live_base = len(sealed)
        for hist in self._live:
            hist.reset()
        self._cur_sec = self._live_base
        self._cur_hist = self._live[0]


def _merge_series(a: SecondSeries, b: SecondSeries) -> SecondSeries:
    merged = SecondSeries(a.started_at, live_seconds=a.live_seconds)
    n = max(len(a), len(b))
    merged._index(merged.started_at + n)
    for name in ("scheduled", "sent", "dropped", "succeeded", "failed"):
        target: list[int] = getattr(merged, name)
        for source in (a, b):
            counters: list[int] = getattr(source, name)
            for sec in range(min(n, len(counters))):
                target[sec] += counters[sec]
    sealed: list[SecondLatency | None] = []
    for sec in range(n):
        first, second = a.latency(sec), b.latency(sec)
        if first is None or second is None:
            sealed.append(first if second is None else second)
            continue
        hist = LatencyHistogram.decode(first.encoded, merged.significant_digits)
        hist.add(LatencyHistogram.decode(second.encoded, merged.significant_digits))
        sealed.append(SecondLatency.of(hist))
    merged._seal_as(sealed)
    return merged


# --------------------------------------------------------------------------------------------
# Phases


class PhaseStats:
    """Counters and the two latency histograms of one phase of a run.

    Accounting: ``scheduled == sent + dropped`` once nothing is pending, ``sent == succeeded +
    failed`` once nothing is in flight; ``timed_out`` (error kind "timeout") is part of
    ``failed``. ``errors_by_kind`` counts the error kinds of failures; ``status_counts`` counts
    every response status, whether the engine judged it a success or not.
    """

    __slots__ = (
        "dropped",
        "errors_by_kind",
        "failed",
        "latency",
        "name",
        "scheduled",
        "sent",
        "series",
        "service_time",
        "status_counts",
        "succeeded",
        "timed_out",
    )

    def __init__(self, name: str, series: SecondSeries | None = None) -> None:
        self.name = name
        self.series = series if series is not None else SecondSeries(0.0)
        self.scheduled = 0
        self.sent = 0
        self.dropped = 0
        self.succeeded = 0
        self.failed = 0
        self.timed_out = 0
        self.errors_by_kind: dict[str, int] = {}
        self.status_counts: dict[int, int] = {}
        self.latency = LatencyHistogram(PHASE_SIGNIFICANT_DIGITS)
        """From the scheduled time to completion (coordinated-omission corrected), in us."""
        self.service_time = LatencyHistogram(PHASE_SIGNIFICANT_DIGITS)
        """From the actual send to completion, in us."""

    # Hot path ------------------------------------------------------------------------------

    def schedule(self, at: float, n: int = 1) -> None:
        """``n`` requests were scheduled for time ``at``."""
        self.scheduled += n
        self.series.count_scheduled(at, n)

    def mark_sent(self, at: float) -> None:
        """A request was handed to the transport at ``at``."""
        self.sent += 1
        self.series.count_sent(at)

    def drop(self, scheduled_at: float) -> None:
        """A request scheduled for ``scheduled_at`` was not sent (e.g. too many in flight)."""
        self.dropped += 1
        self.series.count_dropped(scheduled_at)

    def record(
        self,
        scheduled_at: float,
        sent_at: float,
        done_at: float,
        status: int | None,
        ok: bool,
        *,
        error_kind: str | None = None,
    ) -> None:
        """A sent request completed; ``error_kind`` is counted only when ``ok`` is false."""
        latency_us = int((done_at - scheduled_at) * 1_000_000.0)
        self.latency.record(latency_us)
        self.service_time.record(int((done_at - sent_at) * 1_000_000.0))
        if ok:
            self.succeeded += 1
        else:
            self.failed += 1
            if error_kind is not None:
                errors = self.errors_by_kind
                errors[error_kind] = errors.get(error_kind, 0) + 1
                if error_kind == _TIMEOUT:
                    self.timed_out += 1
        if status is not None:
            statuses = self.status_counts
            statuses[status] = statuses.get(status, 0) + 1
        self.series.count_done(done_at, latency_us, ok)

    # Views ---------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return {
            "scheduled": self.scheduled,
            "sent": self.sent,
            "dropped": self.dropped,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "timed_out": self.timed_out,
        }

    def accounting_problems(self, *, in_flight: int = 0, pending: int = 0) -> list[str]:
        """What breaks the accounting identities, given what is still pending / in flight."""
        problems: list[str] = []
        where = f"phase {self.name!r}"
        if self.scheduled != self.sent + self.dropped + pending:
            problems.append(
                f"{where}: scheduled {self.scheduled} != sent {self.sent} + dropped "
                f"{self.dropped}" + (f" + pending {pending}" if pending else "")
            )
        if self.sent != self.succeeded + self.failed + in_flight:
            problems.append(
                f"{where}: sent {self.sent} != succeeded {self.succeeded} + failed "
                f"{self.failed}" + (f" + in flight {in_flight}" if in_flight else "")
            )
        if self.timed_out > self.failed:
            problems.append(f"{where}: timed_out {self.timed_out} > failed {self.failed}")
        if sum(self.errors_by_kind.values()) > self.failed:
            problems.append(f"{where}: more errors by kind than failures ({self.failed})")
        completed = self.succeeded + self.failed
        if self.latency.total_count != completed:
            problems.append(
                f"{where}: latency histogram holds {self.latency.total_count} values, "
                f"{completed} requests completed"
            )
        return problems

    def merge_from(self, other: PhaseStats) -> None:
        """Add ``other``'s counts and histograms to this phase (not to its series)."""
        self.scheduled += other.scheduled
        self.sent += other.sent
        self.dropped += other.dropped
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.timed_out += other.timed_out
        for kind, count in other.errors_by_kind.items():
            self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + count
        for status, count in other.status_counts.items():
            self.status_counts[status] = self.status_counts.get(status, 0) + count
        self.latency.add(other.latency)
        self.service_time.add(other.service_time)

    def to_json(self) -> JsonDict:
        return {
            "name": self.name,
            "counts": self.counts(),
            "errors_by_kind": {str(kind): n for kind, n in sorted(self.errors_by_kind.items())},
            "status_counts": {str(status): n for status, n in sorted(self.status_counts.items())},
            "latency_ms": self.latency.summary_ms(),
            "service_time_ms": self.service_time.summary_ms(),
            "histograms": {
                "latency_us": self.latency.encode(),
                "service_time_us": self.service_time.encode(),
            },
        }

    @classmethod
    def from_json(cls, data: JsonDict, series: SecondSeries | None = None) -> PhaseStats:
        phase = cls(str(data["name"]), series)
        counts = data["counts"]
        phase.scheduled = int(counts["scheduled"])
        phase.sent = int(counts["sent"])
        phase.dropped = int(counts["dropped"])
        phase.succeeded = int(counts["succeeded"])
        phase.failed = int(counts["failed"])
        phase.timed_out = int(counts["timed_out"])
        phase.errors_by_kind = {str(k): int(v) for k, v in data["errors_by_kind"].items()}
        phase.status_counts = {int(k): int(v) for k, v in data["status_counts"].items()}
        histograms = data["histograms"]
        phase.latency = LatencyHistogram.decode(histograms["latency_us"], PHASE_SIGNIFICANT_DIGITS)
        phase.service_time = LatencyHistogram.decode(
            histograms["service_time_us"], PHASE_SIGNIFICANT_DIGITS
        )
        return phase


# --------------------------------------------------------------------------------------------
# The run


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Live progress, cheap to take; in-flight and pending counts are the engine's."""

    elapsed_s: float
    phase: str | None
    """The phase created last."""
    scheduled: int
    sent: int
    dropped: int
    succeeded: int
    failed: int
    timed_out: int
    recent_second: int | None
    """The most recent sealed second that had completions, if any in the last 5."""
    recent_completed: int
    recent_p95_ms: float | None
    recent_p99_ms: float | None


class RunStats:
    """Every phase of one run (by name, in creation order) and the run's per-second series."""

    def __init__(self, started_at: float, *, live_seconds: int = 2) -> None:
        self.started_at = started_at
        self.series = SecondSeries(started_at, live_seconds=live_seconds)
        self.phases: dict[str, PhaseStats] = {}

    def phase(self, name: str) -> PhaseStats:
        """The phase called ``name``, created (after the existing ones) if new."""
        phase = self.phases.get(name)
        if phase is None:
            phase = self.phases[name] = PhaseStats(name, self.series)
        return phase

    def total(self) -> PhaseStats:
        """A merged view of all phases (a new object; recording into it changes nothing)."""
        total = PhaseStats("total")
        for phase in self.phases.values():
            total.merge_from(phase)
        return total

    def snapshot(self, now: float) -> Snapshot:
        phases = self.phases.values()
        recent = self.series.recent_latency()
        return Snapshot(
            elapsed_s=now - self.started_at,
            phase=next(reversed(self.phases)) if self.phases else None,
            scheduled=sum(p.scheduled for p in phases),
            sent=sum(p.sent for p in phases),
            dropped=sum(p.dropped for p in phases),
            succeeded=sum(p.succeeded for p in phases),
            failed=sum(p.failed for p in phases),
            timed_out=sum(p.timed_out for p in phases),
            recent_second=None if recent is None else recent[0],
            recent_completed=0 if recent is None else recent[1].count,
            recent_p95_ms=None if recent is None else recent[1].p95_us / 1000.0,
            recent_p99_ms=None if recent is None else recent[1].p99_us / 1000.0,
        )

    def check_accounting(self, *, in_flight: int = 0, pending: int = 0) -> list[str]:
        """Problems with the accounting identities; empty when all hold.

        For a finished run call it with nothing in flight or pending. While running, pass the
        engine's counts of requests in flight (sent, not completed) and pending (scheduled,
        neither sent nor dropped): the identities are then checked over all phases together,
        as the engine does not track them per phase.
        """
        problems: list[str] = []
        if in_flight or pending:
            total = self.total()
            total.name = "all phases"
            problems.extend(total.accounting_problems(in_flight=in_flight, pending=pending))
        else:
            for phase in self.phases.values():
                problems.extend(phase.accounting_problems())
        series = self.series
        for name in ("scheduled", "sent", "dropped", "succeeded", "failed"):
            in_series = sum(getattr(series, name))
            in_phases = sum(getattr(p, name) for p in self.phases.values())
            if in_series != in_phases:
                problems.append(f"per-second {name} sum {in_series} != phases' {in_phases}")
        return problems

    def to_json(self) -> JsonDict:
        return {
            "format": FORMAT,
            "latency_unit": "us",
            "phases": [phase.to_json() for phase in self.phases.values()],
            "total": self.total().to_json(),
            "seconds": self.series.to_json(),
        }

    @classmethod
    def from_json(cls, data: JsonDict) -> RunStats:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document (format: {data.get('format')!r})")
        run = cls(0.0)
        run.series = SecondSeries.from_json(data["seconds"])
        for item in data["phases"]:
            phase = PhaseStats.from_json(item, run.series)
            run.phases[phase.name] = phase
        return run


def merge(a: RunStats, b: RunStats) -> RunStats:
    """Combine two runs' stats (e.g. two load generators sharing a schedule origin).

    Phases are matched by name (``a``'s order, then ``b``'s new ones); seconds are matched by
    run offset. Counts add up and histograms merge, so merged percentiles are those of one
    histogram over all the data, to histogram precision. The result is a finished run.
    """
    merged = RunStats(a.started_at)
    merged.series = _merge_series(a.series, b.series)
    for source in (a, b):
        for name, phase in source.phases.items():
            target = merged.phases.get(name)
            if target is None:
                target = merged.phases[name] = PhaseStats(name, merged.series)
            target.merge_from(phase)
    return merged

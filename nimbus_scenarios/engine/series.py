"""The run's per-second series: counts and latency for each whole second of run offset.

Its place: the `engine` stage, beside `engine.stats`, which records into it on the hot path. The
guards read its recent seconds while a run goes on; `freeze` hands the finished series out as
`SecondRecord`s and `thaw` reads them back so that shards can be merged second by second.

For each second it counts scheduled and dropped (by scheduled time), sent (by send time),
succeeded and failed (by completion time), and keeps the latency from scheduled time of the
responses, by completion time (a request with no response is counted, not timed: see
`engine.stats`). Memory stays flat however long the run: only the last ``live_seconds`` (2)
seconds have live histograms (2 significant digits); older seconds are sealed into a
`SecondLatency` (count, p50/p95/p99/max and the encoded histogram) and the live histogram
objects are reset and reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from nimbus_scenarios.engine.histogram import SECOND_SIGNIFICANT_DIGITS, LatencyHistogram
from nimbus_scenarios.engine.records import SecondLatencySummary, SecondRecord

__all__ = ["COUNTERS", "SecondLatency", "SecondSeries", "merge_series"]

_SECOND_PERCENTILES: Final = (50.0, 95.0, 99.0, 100.0)
_GROW: Final = 64
_MAX_SECOND: Final = 7 * 86_400  # a wild timestamp must not allocate without bound

COUNTERS: Final = ("scheduled", "sent", "dropped", "succeeded", "failed")
"""The names of the per-second counter lists."""


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
        sealed = histogram.sealed(_SECOND_PERCENTILES)
        if sealed is None:
            return None
        count, values, encoded = sealed
        return cls(count, values[50.0], values[95.0], values[99.0], values[100.0], encoded)

    def summary(self) -> SecondLatencySummary:
        """The count and percentiles in milliseconds."""
        return SecondLatencySummary(
            count=self.count,
            p50=self.p50_us / 1000.0,
            p95=self.p95_us / 1000.0,
            p99=self.p99_us / 1000.0,
            max=self.max_us / 1000.0,
        )

    @classmethod
    def thaw(cls, summary: SecondLatencySummary, encoded: str) -> SecondLatency:
        """The sealed second a `SecondRecord` describes (its summary was cut from whole us)."""
        return cls(
            count=summary.count,
            p50_us=round(summary.p50 * 1000.0),
            p95_us=round(summary.p95 * 1000.0),
            p99_us=round(summary.p99 * 1000.0),
            max_us=round(summary.max * 1000.0),
            encoded=encoded,
        )


class SecondSeries:
    """Counts and latency percentiles for each whole second of run offset (see the module doc).

    Seconds are ``int(t - started_at)``; times before ``started_at`` count in second 0 (and
    times more than a week after it in the week's last second). A completion for a second that
    is already sealed (more than ``live_seconds`` behind the newest completion) is counted in
    its own second's counters but its latency goes to the oldest live second
    (``late_latencies`` counts those; with completion times taken at the completion, this does
    not happen).
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

    def counters(self, name: str) -> list[int]:
        """The counter list called ``name`` (one of `COUNTERS`)."""
        if name not in COUNTERS:
            raise ValueError(f"no per-second counter {name!r}")
        counters: list[int] = getattr(self, name)
        return counters

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
        """``n`` requests were scheduled for ``at``."""
        sec = int(at - self.started_at)
        if 0 <= sec < self._size:
            self.scheduled[sec] += n
        else:
            self.scheduled[self._index(at)] += n

    def count_sent(self, at: float) -> None:
        """A request was sent at ``at``."""
        sec = int(at - self.started_at)
        if 0 <= sec < self._size:
            self.sent[sec] += 1
        else:
            self.sent[self._index(at)] += 1

    def count_dropped(self, at: float) -> None:
        """A request scheduled for ``at`` was dropped."""
        sec = int(at - self.started_at)
        if 0 <= sec < self._size:
            self.dropped[sec] += 1
        else:
            self.dropped[self._index(at)] += 1

    def count_done(self, done_at: float, latency_us: int, ok: bool) -> None:
        """A response came at ``done_at``, ``latency_us`` after its scheduled time."""
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

    def count_unanswered(self, done_at: float, ok: bool) -> None:
        """A request ended at ``done_at`` with no response: counted, not timed."""
        sec = int(done_at - self.started_at)
        if not 0 <= sec < self._size:
            sec = self._index(done_at)
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
        """How many seconds have been sealed."""
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
            if hist.total_count:
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

    def latency_histogram(self, sec: int) -> LatencyHistogram | None:
        """A new histogram of second ``sec``'s latencies (None when it has none): what a
        guard merges over its window."""
        record = self.latency(sec)
        if record is None:
            return None
        return LatencyHistogram.decode(record.encoded, self.significant_digits)

    def recent_latency(self, lookback: int = 5) -> tuple[int, SecondLatency] | None:
        """The most recent sealed second that had completions, within ``lookback`` seconds."""
        sealed = self._sealed
        for sec in range(len(sealed) - 1, max(len(sealed) - 1 - lookback, -1), -1):
            record = sealed[sec]
            if record is not None:
                return sec, record
        return None

    # Freezing ------------------------------------------------------------------------------

    def freeze(self) -> tuple[SecondRecord, ...]:
        """Every second from 0 to the last one with data (live seconds summarised, not sealed)."""
        records = []
        for sec in range(len(self)):  # the counters always reach at least len(self)
            latency = self.latency(sec)
            records.append(
                SecondRecord(
                    second=sec,
                    scheduled=self.scheduled[sec],
                    sent=self.sent[sec],
                    dropped=self.dropped[sec],
                    succeeded=self.succeeded[sec],
                    failed=self.failed[sec],
                    latency_ms=None if latency is None else latency.summary(),
                    histogram=None if latency is None else latency.encoded,
                )
            )
        return tuple(records)

    @classmethod
    def thaw(cls, seconds: Sequence[SecondRecord], started_at: float = 0.0) -> SecondSeries:
        """A finished series (every second sealed) from `freeze`'s records."""
        series = cls(started_at)
        n = max((record.second + 1 for record in seconds), default=0)
        series._index(started_at + n)  # allocate the counters
        sealed: list[SecondLatency | None] = [None] * n
        for record in seconds:
            sec = record.second
            series.scheduled[sec] = record.scheduled
            series.sent[sec] = record.sent
            series.dropped[sec] = record.dropped
            series.succeeded[sec] = record.succeeded
            series.failed[sec] = record.failed
            if record.histogram and record.latency_ms is not None:
                sealed[sec] = SecondLatency.thaw(record.latency_ms, record.histogram)
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


def merge_series(a: SecondSeries, b: SecondSeries) -> SecondSeries:
    """Two series added second by second, as a finished series (every second sealed).

    Seconds with latency in both are merged histograms, resealed: their percentiles are those
    of one histogram over both, to the per-second precision.
    """
    merged = SecondSeries(a.started_at, live_seconds=a.live_seconds)
    n = max(len(a), len(b))
    merged._index(merged.started_at + n)
    for name in COUNTERS:
        target = merged.counters(name)
        for source in (a, b):
            counters = source.counters(name)
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

"""What the engine records for one request template within one phase: its counters and its two
latency histograms, and a handle on the template's run-wide per-second series.

Its place: the `engine` stage, under `engine.stats`, whose `PhaseStats` holds one
`RequestStats` per template and hands the handle to the hot path. A phase's counters and
histograms are the sums of its templates' (plus, for a phase thawed from a document written
before templates had histograms, the latencies no template holds), so the hot path records each
event once. Each `RequestStats` of a template, in every phase, holds the same `SecondSeries`
(``series``, owned by `engine.stats.RunStats`), so the hot path records into it without a lookup.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TypeVar

from nimbus_scenarios.engine.histogram import PHASE_SIGNIFICANT_DIGITS, LatencyHistogram
from nimbus_scenarios.engine.records import Counts, Histograms, RequestRecord
from nimbus_scenarios.engine.series import SecondSeries

__all__ = ["RequestStats", "add_counts"]

_K = TypeVar("_K")


def add_counts(target: dict[_K, int], source: Mapping[_K, int]) -> None:
    """Add ``source``'s counts to ``target``'s, key by key."""
    for key, count in source.items():
        target[key] = target.get(key, 0) + count


class RequestStats:
    """The counters and latency histograms of one request template within one phase.

    Accounting: ``scheduled == sent + dropped`` once nothing is pending, ``sent == succeeded +
    failed`` once nothing is in flight; ``timed_out`` (error kind "timeout") is part of
    ``failed``. ``errors_by_kind`` counts the error kinds of failures, ``dropped_by_kind`` the
    `DropKind` of drops; ``status_counts`` counts
    every response status, whether the engine judged it a success or not; ``truncated`` counts
    the responses whose body was cut at the transports' cap (`engine.transport.MAX_BODY_BYTES`),
    so it is at most ``sum(status_counts.values())``.

    ``latency`` (from the scheduled time) and ``service_time`` (from the send) hold one value per
    response, in us, while ``timed``: a template thawed from a document written before templates
    had histograms is not timed, its histograms are empty and its phase holds its latencies.

    ``series`` is the template's per-second series over the whole run (shared by the template's
    `RequestStats` in every phase; a new one of its own when none is given).
    """

    __slots__ = (
        "dropped",
        "dropped_by_kind",
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
        "timed",
        "timed_out",
        "truncated",
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
        self.truncated = 0
        self.errors_by_kind: dict[str, int] = {}
        self.status_counts: dict[int, int] = {}
        self.dropped_by_kind: dict[str, int] = {}
        self.latency = LatencyHistogram(PHASE_SIGNIFICANT_DIGITS)
        """From the scheduled time to the response (coordinated-omission corrected), in us."""
        self.service_time = LatencyHistogram(PHASE_SIGNIFICANT_DIGITS)
        """From the actual send to the response, in us."""
        self.timed = True

    def counts(self) -> Counts:
        """The seven counters as a record."""
        return Counts(
            self.scheduled,
            self.sent,
            self.dropped,
            self.succeeded,
            self.failed,
            self.timed_out,
            self.truncated,
        )

    def add(self, record: RequestRecord) -> None:
        """Add a record's counters (not its histograms) to these."""
        counts = record.counts
        self.scheduled += counts.scheduled
        self.sent += counts.sent
        self.dropped += counts.dropped
        self.succeeded += counts.succeeded
        self.failed += counts.failed
        self.timed_out += counts.timed_out
        self.truncated += counts.truncated
        add_counts(self.errors_by_kind, record.errors_by_kind)
        add_counts(self.status_counts, record.status_counts)
        add_counts(self.dropped_by_kind, record.dropped_by_kind)

    def accounting_problems(self, where: str) -> list[str]:
        """What breaks the identities, for a template with nothing pending or in flight."""
        responses = sum(self.status_counts.values())
        problems = self.counts().problems(
            where,
            sum(self.errors_by_kind.values()),
            responses,
            sum(self.dropped_by_kind.values()),
        )
        if self.timed:
            for name, histogram in (("latency", self.latency), ("service time", self.service_time)):
                if histogram.total_count != responses:
                    problems.append(
                        f"{where}: {name} histogram holds {histogram.total_count} values, "
                        f"{responses} requests got a response"
                    )
        return problems

    def counts_record(self) -> RequestRecord:
        """The counters as a record (error kinds and statuses sorted, as in the results)."""
        return RequestRecord(
            name=self.name,
            counts=self.counts(),
            errors_by_kind={str(kind): n for kind, n in sorted(self.errors_by_kind.items())},
            status_counts=dict(sorted(self.status_counts.items())),
            dropped_by_kind=dict(sorted(self.dropped_by_kind.items())),
        )

    def freeze(self) -> RequestRecord:
        """The counters, and the latencies when timed, as a record."""
        record = self.counts_record()
        if not self.timed:
            return record
        return dataclasses.replace(
            record,
            latency_ms=self.latency.summary(),
            service_time_ms=self.service_time.summary(),
            histograms=Histograms(
                latency_us=self.latency.encode(), service_time_us=self.service_time.encode()
            ),
        )

    @classmethod
    def thaw(cls, record: RequestRecord, series: SecondSeries | None = None) -> RequestStats:
        """A template holding what ``record`` holds (not timed when it has no histograms),
        recording into ``series``."""
        request = cls(record.name, series)
        request.add(record)
        histograms = record.histograms
        if histograms is None:
            request.timed = False
        else:
            request.latency = LatencyHistogram.decode(
                histograms.latency_us, PHASE_SIGNIFICANT_DIGITS
            )
            request.service_time = LatencyHistogram.decode(
                histograms.service_time_us, PHASE_SIGNIFICANT_DIGITS
            )
        return request

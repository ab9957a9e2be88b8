"""What the engine recorded, frozen: the counters, latency summaries and encoded histograms of a
run, by phase, by request template and by second.

`engine.stats` records into mutable counters on the hot path and hands these out at the end
(`RunStats.freeze`); `merge` turns them back into counters (`RunStats.thaw`) to add shards up.
The results document embeds them as they are, under `stats`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Final

__all__ = [
    "STATS_FORMAT",
    "Counts",
    "DropKind",
    "Histograms",
    "LatencySummary",
    "PhaseRecord",
    "RequestRecord",
    "RequestSeconds",
    "RequestSnapshot",
    "SecondLatencySummary",
    "SecondRecord",
    "Snapshot",
    "StatsRecord",
]

STATS_FORMAT: Final = "nimbus-stats/2"
"""Version 2 adds per-request-template counts (`PhaseRecord.requests`), later their latency
summaries and histograms (`RequestRecord.histograms`, absent in documents written before), later
their per-second series (`StatsRecord.requests`, empty in documents written before)."""


class DropKind(StrEnum):
    """Why a scheduled request was not sent (the keys of `dropped_by_kind`)."""

    MAX_INFLIGHT = "max_inflight"
    """`max_inflight` requests were in flight when it was due: dropped, never queued."""
    LATE_START = "late_start"
    """It was due before this process started its phases (a shard that started after the
    common `--start-at`): dropped rather than sent late in a burst."""


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """p50, p90, p95, p99, max and mean of a latency histogram, in milliseconds."""

    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    mean: float


@dataclass(frozen=True, slots=True)
class SecondLatencySummary:
    """The latency of the responses that came in one second (``count`` of them), in
    milliseconds."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float


@dataclass(frozen=True, slots=True)
class Counts:
    """Request counters. Accounting: scheduled = sent + dropped, sent = succeeded + failed (once
    nothing is pending or in flight); timed_out is part of failed; truncated counts responses
    (succeeded or failed by their status) whose body was cut at the transports' cap."""

    scheduled: int = 0
    sent: int = 0
    dropped: int = 0
    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    truncated: int = 0

    def problems(
        self,
        where: str,
        errors: int,
        responses: int,
        dropped_kinds: int = 0,
        *,
        in_flight: int = 0,
        pending: int = 0,
    ) -> list[str]:
        """The broken identities of these counters, given how many requests are still pending
        and in flight (`errors`, `responses` and `dropped_kinds`: the sums of `errors_by_kind`,
        `status_counts` and `dropped_by_kind` that go with them)."""
        problems: list[str] = []
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
        if errors > self.failed:
            problems.append(f"{where}: more errors by kind than failures ({self.failed})")
        if dropped_kinds > self.dropped:
            problems.append(f"{where}: more drops by kind than drops ({self.dropped})")
        if self.truncated > responses:
            problems.append(f"{where}: truncated {self.truncated} > responses {responses}")
        return problems

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.scheduled + other.scheduled,
            self.sent + other.sent,
            self.dropped + other.dropped,
            self.succeeded + other.succeeded,
            self.failed + other.failed,
            self.timed_out + other.timed_out,
            self.truncated + other.truncated,
        )

    @property
    def completed(self) -> int:
        """Requests that got an outcome: succeeded + failed."""
        return self.succeeded + self.failed


@dataclass(frozen=True, slots=True)
class Histograms:
    """hdrhistogram's compressed base64 encodings, in microseconds."""

    latency_us: str
    """From the scheduled time to the response (no coordinated omission); responses only."""
    service_time_us: str
    """From the actual send to the response; responses only."""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request template's share of a phase (or of the run)."""

    name: str
    counts: Counts = field(default_factory=Counts)
    errors_by_kind: Mapping[str, int] = field(default_factory=dict)
    status_counts: Mapping[int, int] = field(default_factory=dict)
    dropped_by_kind: Mapping[str, int] = field(default_factory=dict)
    """Drops by `DropKind` (empty in documents written before drops had kinds)."""
    latency_ms: LatencySummary | None = None
    """From the scheduled time, over the template's responses (as `PhaseRecord.latency_ms`)."""
    service_time_ms: LatencySummary | None = None
    """From the actual send, over the template's responses."""
    histograms: Histograms | None = None
    """The template's own histograms; the three are None in documents written before templates
    had them (the phase's histograms then hold those responses)."""

    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset(
        {"latency_ms", "service_time_ms", "histograms"}
    )


@dataclass(frozen=True, slots=True)
class PhaseRecord:
    """Everything recorded for one phase (or, as `StatsRecord.total`, the whole run)."""

    name: str
    counts: Counts
    errors_by_kind: Mapping[str, int]
    status_counts: Mapping[int, int]
    latency_ms: LatencySummary
    service_time_ms: LatencySummary
    histograms: Histograms
    requests: tuple[RequestRecord, ...] = ()
    dropped_by_kind: Mapping[str, int] = field(default_factory=dict)
    """Drops by `DropKind` (empty in documents written before drops had kinds)."""


@dataclass(frozen=True, slots=True)
class SecondRecord:
    """One whole second of run offset: scheduled and dropped by scheduled time, sent by send
    time, succeeded, failed and latency (of the responses) by completion time."""

    second: int
    scheduled: int
    sent: int
    dropped: int
    succeeded: int
    failed: int
    latency_ms: SecondLatencySummary | None
    histogram: str | None
    """The second's latency histogram (2 significant digits), so seconds can be merged."""


@dataclass(frozen=True, slots=True)
class RequestSeconds:
    """One request template's per-second series over the whole run (across phases), with the
    same meaning as the run's `SecondRecord`s. Seconds in which the template had nothing are
    left out, so a template that ran in one phase of a long run costs only that phase."""

    name: str
    seconds: tuple[SecondRecord, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsRecord:
    """A run's statistics, frozen: what `merge` needs to add shards up exactly."""

    format: str = STATS_FORMAT
    latency_unit: str = "us"
    phases: tuple[PhaseRecord, ...]
    total: PhaseRecord
    seconds: tuple[SecondRecord, ...]
    requests: tuple[RequestSeconds, ...] = ()
    """Per request template (first-seen order), its per-second series; empty in documents
    written before templates had them, and a template missing here has none (its phases'
    counts still hold)."""


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
    requests: tuple[RequestSnapshot, ...] = ()
    """Per request template (first-seen order), its outcomes so far, over every phase."""


@dataclass(frozen=True, slots=True)
class RequestSnapshot:
    """One request template's outcomes so far, over every phase: what the live status line
    needs to say which request fails and how."""

    name: str
    failed: int
    status_counts: Mapping[int, int]
    """Every response status, failing or not (which statuses fail is the plan's to say)."""
    errors_by_kind: Mapping[str, int]

"""The results document as frozen data: one run (or one merged run), from its plan to its verdict.

`results.build` makes a `RunResults` from what a run recorded; `results.io` writes and reads it
as versioned JSON; the reports, `merge` and the console read only this. Field names are the JSON
names (a contract with other tools: `docs/reports.md` lists them).

Values are rounded when they are built (offsets to the millisecond, observed values to six
decimals), so that a document read back is equal to the one written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, NamedTuple

from nimbus_scenarios.engine.records import (
    LatencySummary,
    SecondRecord,
    StatsRecord,
)
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.plan.model import ExpectationPlan, Plan
from nimbus_scenarios.results.codec import FLAT
from nimbus_scenarios.scaling import ScalingRecord

__all__ = [
    "Abort",
    "CleanupResult",
    "Judgement",
    "KillResult",
    "LoadResult",
    "MergedShard",
    "PhaseResult",
    "ReplicaPoint",
    "ReplicaSourceResult",
    "RequestResult",
    "RunResults",
    "RunVerdict",
    "SampleResult",
    "ShardInfo",
    "Stage",
    "StartSkew",
    "TelemetrySummary",
    "Verdict",
]


class Verdict(StrEnum):
    """The outcome of one expectation. Nothing is passed for lack of data: `not_judged`."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_JUDGED = "not_judged"


class RunVerdict(StrEnum):
    """The outcome of a run, and so its exit code (`judge.verdict`): 0 passed, 1 failed,
    3 aborted, 4 error or partial."""

    PASSED = "passed"
    FAILED = "failed"
    ABORTED = "aborted"
    ERROR = "error"
    PARTIAL = "partial"
    """A merge of some of a run's shards (`merge --allow-partial`) in which nothing judged
    failed: not passed, since the run was not judged as a whole."""


class Stage(StrEnum):
    """Where a run is: pre-flight -> before -> phases -> pending windows -> after -> cleanup."""

    PREFLIGHT = "preflight"
    BEFORE = "before"
    PHASES = "phases"
    PENDING = "pending"
    AFTER = "after"
    CLEANUP = "cleanup"


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict on one expectation of the plan, with what was observed and, for windows, when
    the condition first held (a run offset; for `before`/`after`, seconds into the stage)."""

    expectation: ExpectationPlan
    verdict: Verdict
    observed: float | None = None
    met_at_s: float | None = None
    detail: str = ""

    @property
    def window_s(self) -> tuple[float, float] | None:
        """The window as run offsets, for the scenario's and the phases' replica windows."""
        e = self.expectation
        if e.start_s is None or e.end_s is None:
            return None
        return (e.start_s, e.end_s)


@dataclass(frozen=True, slots=True)
class Abort:
    """Why and when a run stopped early: a guard, a signal or `--max-duration`."""

    reason: str
    at_s: float | None
    stage: Stage


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """Shard `index` of `count` (0 of 1 for a run that is not sharded)."""

    index: int
    count: int


@dataclass(frozen=True, slots=True)
class RequestResult:
    """One request template's counts and latencies in a phase or in the whole run."""

    name: str
    scheduled: int = 0
    sent: int = 0
    dropped: int = 0
    dropped_by_kind: Mapping[str, int] = field(default_factory=dict)
    """Drops by reason: `max_inflight` (the in-flight cap) and `late_start` (due before a late
    shard started); empty in documents written before drops had reasons."""
    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    truncated: int = 0
    """Responses whose body was cut at the transports' 1 MiB cap (still responses)."""
    errors_by_kind: Mapping[str, int] = field(default_factory=dict)
    status_counts: Mapping[int, int] = field(default_factory=dict)
    latency_ms: LatencySummary | None = None
    """From the scheduled time, over the template's responses (as `LoadResult.latency_ms`);
    None when none got a response, and in documents written before templates were timed."""
    service_ms: LatencySummary | None = None
    """From the actual send, over the template's responses."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadResult:
    """What was sent and what came back, over a phase or the run (`totals`).

    `latency_ms` is measured from the scheduled time (no coordinated omission), `service_ms`
    from the actual send, both over the requests that got a response (whatever its status);
    both are None when no request got one.
    """

    scheduled: int = 0
    sent: int = 0
    dropped: int = 0
    dropped_by_kind: Mapping[str, int] = field(default_factory=dict)
    """Drops by reason (`RequestResult.dropped_by_kind`)."""
    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    truncated: int = 0
    """Responses whose body was cut at the transports' 1 MiB cap (still responses)."""
    errors_by_kind: Mapping[str, int] = field(default_factory=dict)
    status_counts: Mapping[int, int] = field(default_factory=dict)
    latency_ms: LatencySummary | None = None
    service_ms: LatencySummary | None = None
    requests: tuple[RequestResult, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseResult:
    """One phase: where the plan put it, whether and when it ran, and its load (whose fields
    the JSON holds next to the phase's own)."""

    name: str
    start_s: float
    end_s: float
    shape: str
    """The shape as written, with params resolved (`ramp 2/s -> 20/s`)."""
    ran: bool
    ran_s: tuple[float, float] | None
    target_rate: float | None
    """This shard's planned arrivals over the phase length (None for closed-model phases)."""
    achieved_rate: float | None
    planned: int | None
    """This shard's planned arrivals (None for closed-model phases)."""
    load: LoadResult = field(metadata=FLAT)


class ReplicaPoint(NamedTuple):
    """A replica sample as a run offset (written as `[t_s, ready, desired]`)."""

    t_s: float
    ready: int
    desired: int


@dataclass(frozen=True, slots=True)
class SampleResult:
    """One replica sample in full: ready, desired (spec) and current (status) replicas, and the
    autoscaler's desired replicas when known."""

    t_s: float
    ready: int
    desired: int
    current: int
    autoscaler: int | None = None


@dataclass(frozen=True, slots=True)
class ReplicaSourceResult:
    """Where replica counts came from and what it saw."""

    description: str
    autoscaler: str | None
    lost_at_s: float | None
    samples: tuple[SampleResult, ...]


@dataclass(frozen=True, slots=True)
class KillResult:
    """`at T kill N pods`: the pods deleted, or why none were."""

    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset({"pods", "error"})

    phase: str
    at_s: float
    count: int
    pods: tuple[str, ...] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CleanupResult:
    """One cleanup request: its status, or the error that stopped it."""

    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset({"status"})

    request: str
    status: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TelemetrySummary:
    """What the run's telemetry exported (all zero when it was off)."""

    enabled: bool = False
    endpoint: str | None = None
    protocol: str | None = None
    trace_sample: float = 100.0
    spans_exported: int = 0
    spans_dropped: int = 0
    spans_queue_full: int = 0
    logs_exported: int = 0
    logs_dropped: int = 0
    logs_queue_full: int = 0
    metric_exports: int = 0
    export_errors: int = 0


@dataclass(frozen=True, slots=True)
class MergedShard:
    """One of the shard results a merged document was made from."""

    run_id: str
    shard: int
    verdict: RunVerdict
    start_late_s: float | None = None
    """The shard's `start_late_s`."""


@dataclass(frozen=True, slots=True)
class StartSkew:
    """How far apart the shards of a merged run started their phases (from their
    `start_late_s`, over the shards that had a common start)."""

    skew_s: float
    """The latest shard's start minus the earliest's."""
    latest_shard: int
    latest_late_s: float
    """How long after the common start the latest shard started."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResults:
    """One run's results document."""

    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset(
        {
            "telemetry",
            "merged_from",
            "grafana_url",
            "grafana_tempo_uid",
            "grafana_org",
            "start_late_s",
            "start_skew",
            "scaling",
            "event_loop",
        }
    )

    run_id: str
    scenario: str
    verdict: RunVerdict
    exit_code: ExitCode
    trace_id: str | None = None
    error: str | None = None
    """The infrastructure problem that stopped the run at pre-flight."""
    abort: Abort | None = None
    tool_version: str
    shard: ShardInfo | None
    """None for a merged document."""
    scenario_hash: str
    scenario_source: str
    """The scenario text, secret values masked."""
    params: Mapping[str, str]
    target: str
    """The target as it may be shown (a password or an `env(...)` target masked)."""
    started_at: dt.datetime
    ended_at: dt.datetime
    duration_s: float
    stage_reached: Stage
    phases: tuple[PhaseResult, ...]
    expectations: tuple[Judgement, ...]
    replicas: tuple[ReplicaPoint, ...]
    replica_source: ReplicaSourceResult | None
    kills: tuple[KillResult, ...]
    cleanup: tuple[CleanupResult, ...]
    totals: LoadResult
    send_lateness_ms: LatencySummary | None
    seconds: tuple[SecondRecord, ...]
    stats: StatsRecord
    notes: tuple[str, ...] = ()
    telemetry: TelemetrySummary | None = None
    merged_from: tuple[MergedShard, ...] | None = None
    grafana_url: str | None = None
    grafana_tempo_uid: str | None = None
    """The Tempo datasource uid the trace link opens (`--grafana-tempo-uid`); None: `tempo`."""
    grafana_org: int | None = None
    """The Grafana organisation the trace link opens (`--grafana-org`); None: 1."""
    start_late_s: float | None = None
    """How long after the common start (`--start-at`, `--start-at-from`) this shard started its
    phases (about 0 when it was there in time and waited); None without a common start, and in
    a merged document (see `start_skew`)."""
    start_skew: StartSkew | None = None
    """A merged document's: how far apart its shards started."""
    scaling: ScalingRecord | None = None
    """Why the Deployment scaled (`scaling.ScalingRecord`): the autoscaler's status over time,
    the pods, the scale events derived, as run offsets; None when the replica source recorded
    none (no scaling recorder, no replica source) and in documents written before it existed.
    A merged document keeps shard 0's."""
    event_loop: str | None = None
    """The event loop the engine ran on (`uvloop` or `asyncio`, `engine.loop`); None in a
    merged document and in documents written before it was recorded."""
    plan: Plan
    """The compiled plan the run played (secrets masked): what `merge` and the reports read
    instead of compiling the source again."""

    @property
    def lost_at_s(self) -> float | None:
        """When the replica source was lost, if it was."""
        return None if self.replica_source is None else self.replica_source.lost_at_s

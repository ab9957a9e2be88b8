"""How to run a plan (`RunOptions`, from the command line) and what a run gives back."""

from __future__ import annotations

from dataclasses import dataclass

from nimbus_scenarios.engine.factory import DEFAULT_TRANSPORT
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.results.model import RunResults, ShardInfo

__all__ = ["UNSHARDED", "RunOptions", "RunOutcome", "flush_budget"]

UNSHARDED = ShardInfo(0, 1)
"""A run that is not sharded: shard 0 of 1."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How to run a plan."""

    url: str
    transport: str = DEFAULT_TRANSPORT
    consumer_cleanup: bool = False
    """Also send the consumer's `DELETE /process/cleanup` at the end (`--cleanup`)."""
    grace_s: float = 10.0
    """After a stop, how long the rest of the run may take: requests in flight, cleanup and
    the telemetry flush together (keep it under the pod's terminationGracePeriodSeconds)."""
    max_duration_s: float | None = None
    guard_interval_s: float = 1.0
    progress_interval_s: float | None = None
    shard: ShardInfo = UNSHARDED
    """This process sends its exact share; shard 0 alone judges replicas, kills and cleans up."""
    send_shard: ShardInfo | None = None
    """The share this process's own engine sends, when it differs from `shard` (the share its
    results stand for): a `--workers` parent sends global shard I of N x W and reports shard
    I of N, its workers' statistics merged in. None: `shard`."""
    preflight: bool = True
    """Check that the target answers before anything else (a worker process leaves it to its
    parent)."""
    start_at: float | None = None
    """Wall-clock (Unix) time of run offset 0, shared by the shards of one run."""
    start_wait_s: float = 600.0
    """With a start source (`--start-at-from`): how long to wait for it to hold the common
    start (`--start-wait`) before giving up (exit 4)."""
    preflight_timeout_s: float = 5.0
    install_signal_handlers: bool = True
    target_shown: str | None = None
    """How the target appears in results and messages (masked when it is secret); None: the
    URL itself."""
    run_id: str | None = None
    """None: a fresh one (or telemetry's)."""
    grafana_url: str | None = None
    grafana_tempo_uid: str | None = None
    """Where the results' trace link opens (`--grafana-tempo-uid`, `--grafana-org`); None:
    Grafana's defaults as `telemetry.links` has them."""
    grafana_org: int | None = None


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a run produced: its results document and exit code."""

    results: RunResults
    exit_code: ExitCode
    shutdown_left_s: float | None = None
    """Seconds left of a stopped run's shutdown budget (`--grace`) when it returned."""


def flush_budget(most_s: float, shutdown_left_s: float | None) -> float:
    """How long telemetry may take to flush at the end: `most_s`, less if a stop's shutdown
    budget has less left (at least 0.1s: what is queued gets one try)."""
    flush_s = most_s if shutdown_left_s is None else min(most_s, shutdown_left_s)
    return max(flush_s, 0.1)

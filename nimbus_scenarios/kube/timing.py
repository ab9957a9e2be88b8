"""How often and how patiently `replicas.ClusterReplicaSource` (and its watcher threads) talk to
the API server: `SourceTiming`, in seconds."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SourceTiming"]


@dataclass(frozen=True, slots=True)
class SourceTiming:
    """How often and how patiently the source talks to the API server (seconds)."""

    poll_interval_s: float = 2.0
    fresh_interval_s: float = 2.0
    """Prove freshness with a GET when nothing else has for this long."""
    behind_grace_s: float = 0.5
    """How long a watch found behind the GET may take to catch up before its stream is cut."""
    stale_after_s: float = 5.0
    """Without a proof for this long, the data is stale (from the last proof on, for good)."""
    autoscaler_interval_s: float = 2.0
    watch_timeout_s: int = 300
    request_timeout_s: float = 10.0
    retry_delay_s: float = 0.5
    retry_delay_max_s: float = 2.0
    lost_after_s: float = 10.0
    lost_after_failures: int = 3
    stop_timeout_s: float = 5.0

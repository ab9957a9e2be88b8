"""The replica source seam: where replica counts come from (Kubernetes, the local fleet, a test).
Both real sources implement it, and the runner and its tests depend only on it.

A source records samples with times on the run's clock (the event loop's `loop.time()`); the
runner turns them into run offsets. Samples alone do not say the Deployment stayed as last seen:
a source also says how far its samples are known to be complete (`fresh_until`: the last event,
bookmark or answer that proved it up to date), and a source that has proven nothing for
`stale_after_s` is stale from `fresh_until` on. A source that loses its connection for good says
so (`lost_at`). Expectations over time the source could not prove are "not judged", never passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["ReplicaSample", "ReplicaSource"]


@dataclass(frozen=True, slots=True)
class ReplicaSample:
    """The Deployment's replica counts at one moment.

    `ready` is status.readyReplicas, `desired` spec.replicas (the autoscaler's decision),
    `current` status.replicas; `autoscaler` is the HPA's desiredReplicas when one is known.
    """

    at: float
    ready: int
    desired: int
    current: int
    autoscaler: int | None = None


class ReplicaSource(Protocol):
    """A running observer of one Deployment's replica counts."""

    @property
    def description(self) -> str:
        """What is watched, for results and messages (`deployment nimbusguard/consumer`)."""
        ...

    @property
    def samples(self) -> list[ReplicaSample]:
        """Every sample so far, in time order (a sample is recorded when a count changes)."""
        ...

    @property
    def lost_at(self) -> float | None:
        """When the source stopped seeing the Deployment for good (None while it sees it)."""
        ...

    @property
    def fresh_until(self) -> float | None:
        """The clock time up to which `samples` are known complete: no change before it is missing.

        It advances with every proof (an event, a bookmark, a list or a poll answer) that comes
        within `stale_after_s` of the one before; after a longer gap it stays where the gap began
        for the rest of the run, because what was learnt after the gap may have happened in it.
        None before `start()`.
        """
        ...

    @property
    def stale_after_s(self) -> float:
        """How long the source may go without a proof: once `now - fresh_until` exceeds it, the
        data is stale from `fresh_until` on (a running source proves itself well within it)."""
        ...

    @property
    def autoscaler(self) -> str | None:
        """The HPA or ScaledObject found targeting the Deployment, if any."""
        ...

    async def start(self) -> None:
        """Begin watching; returns once the first sample is recorded."""
        ...

    async def stop(self) -> None:
        """Stop watching and release resources."""
        ...

    async def kill_pods(self, count: int) -> list[str]:
        """Delete `count` ready pods of the Deployment; the names deleted."""
        ...

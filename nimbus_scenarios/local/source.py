"""The replica source of a local run: the `ReplicaSource` seam over a `local.fleet.Fleet`.

Its place: the `local` stage, plugged into the runner where the cluster's Deployment watcher
would be. It records a `ReplicaSample` (on the event loop's clock, like every source) when the
fleet's ready, desired or current count changes, plus one when it starts; `autoscaler` in each
sample is the fleet's desired count (the local autoscaler's decision). A local fleet is never
"lost", and its data is fresh up to now while the source follows it: the fleet tells the source
of every change as it makes it, so nothing can be missing. `kill_pods` delegates to the fleet
(SIGKILL; the fleet replaces the replicas).

It is also a `scaling.ScalingRecorder`: after every autoscaler decision and every replica
transition (`Fleet.watch`) it records the autoscaler's status as an HPA would report it (an
`AutoscalerSample` when anything in it changed) and each replica as a pod (`PodRecord`), both
made by `local.records` on the same clock as the replica samples. What it records is fixed when
it stops following (before the fleet's own stop ends every process).

The fleet is normally started by the caller (the load generator needs its URL first) and then
only observed; if it is not started yet, `start()` starts it and `stop()` stops it again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from nimbus_scenarios.local.autoscaler import Decision
from nimbus_scenarios.local.fleet import Fleet, FleetCounts
from nimbus_scenarios.local.records import autoscaler_sample, pod_record
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.scaling import AutoscalerSample, PodRecord

__all__ = ["LocalReplicaSource"]

_STALE_AFTER_S = 1.0
"""The staleness bound the source reports; it is fresh up to now for as long as it runs."""


class LocalReplicaSource:
    """A `ReplicaSource` and `ScalingRecorder` over a local fleet of reference consumers."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self._samples: list[ReplicaSample] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._owns_fleet = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped_at: float | None = None
        self._unwatch: Callable[[], None] | None = None
        self._autoscaler_samples: list[AutoscalerSample] = []
        self._decision: Decision | None = None
        self._pods: dict[str, PodRecord] = {}

    @property
    def description(self) -> str:
        """`local fleet at http://127.0.0.1:PORT (autoscaler: ...)`."""
        where = f" at {self.fleet.url}" if self.fleet.started else ""
        return f"local fleet{where} (autoscaler: {self.fleet.config.describe()})"

    @property
    def samples(self) -> list[ReplicaSample]:
        """Every sample so far, in time order."""
        return list(self._samples)

    @property
    def lost_at(self) -> float | None:
        """Always None: a local fleet cannot be lost from sight."""
        return None

    @property
    def fresh_until(self) -> float | None:
        """Now while the source follows the fleet (every change reaches it as it is made); the
        moment it stopped following, once stopped; None before it started."""
        if self._unsubscribe is not None and self._loop is not None:
            return self._loop.time()
        return self._stopped_at

    @property
    def stale_after_s(self) -> float:
        """A bound the source never reaches while it follows the fleet."""
        return _STALE_AFTER_S

    @property
    def autoscaler(self) -> str | None:
        """The local autoscaler and its triggers."""
        return self.fleet.autoscaler_description

    @property
    def autoscaler_samples(self) -> list[AutoscalerSample]:
        """The local autoscaler's status after each decision that changed it, in time order."""
        return list(self._autoscaler_samples)

    @property
    def pods(self) -> list[PodRecord]:
        """Each consumer process of the fleet as a pod, oldest first."""
        return list(self._pods.values())

    @property
    def pods_watched(self) -> bool:
        """True once started: every consumer process is the fleet's own, so none is missed."""
        return self._loop is not None

    async def start(self) -> None:
        """Start the fleet if needed, record the first sample, then follow every change."""
        if self._unsubscribe is not None:
            return
        if not self.fleet.started:
            self._owns_fleet = True
            await self.fleet.start()
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self.fleet.subscribe(self._record)
        self._unwatch = self.fleet.watch(self._changed)
        counts = self.fleet.counts()
        self._append(self._loop.time(), counts)
        self._changed()

    async def stop(self) -> None:
        """Stop following the fleet; stop the fleet too if `start()` started it."""
        if self._unsubscribe is not None:
            self._stopped_at = self.fresh_until
            self._unsubscribe()
            self._unsubscribe = None
        if self._unwatch is not None:
            self._changed()  # the latest of each replica (a start or an exit tells no event)
            self._unwatch()
            self._unwatch = None
        if self._owns_fleet:
            self._owns_fleet = False
            await self.fleet.stop()

    async def kill_pods(self, count: int) -> list[str]:
        """SIGKILL `count` ready replicas; the fleet replaces them. The names killed."""
        return await self.fleet.kill_pods(count)

    def _record(self, counts: FleetCounts) -> None:
        last = self._samples[-1] if self._samples else None
        if last is not None and (last.ready, last.desired, last.current) == (
            counts.ready,
            counts.desired,
            counts.current,
        ):
            return
        self._append(counts.at, counts)

    def _append(self, at: float, counts: FleetCounts) -> None:
        if self._samples and at < self._samples[-1].at:
            at = self._samples[-1].at  # keep time order
        self._samples.append(
            ReplicaSample(
                at=at,
                ready=counts.ready,
                desired=counts.desired,
                current=counts.current,
                autoscaler=counts.desired,
            )
        )

    def _changed(self) -> None:
        decision = self.fleet.last_decision
        if decision is not None and decision is not self._decision:
            self._decision = decision
            self._add_autoscaler_sample(autoscaler_sample(decision, self.fleet.config))
        for info in self.fleet.replicas():
            self._pods[info.name] = pod_record(info)

    def _add_autoscaler_sample(self, sample: AutoscalerSample) -> None:
        last = self._autoscaler_samples[-1] if self._autoscaler_samples else None
        if last is not None:
            if (last.desired, last.current, last.metrics, last.conditions) == (
                sample.desired,
                sample.current,
                sample.metrics,
                sample.conditions,
            ):
                return
            if sample.at < last.at:
                sample = dataclasses.replace(sample, at=last.at)  # keep time order
        self._autoscaler_samples.append(sample)

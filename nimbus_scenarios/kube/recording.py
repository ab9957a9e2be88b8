"""What `ClusterReplicaSource` records about *why* the Deployment scaled (the `ScalingRecorder`
half of the source): the autoscaler's status each time it changes, and the Deployment's pods.

`ScalingRecording` lives on the event loop, as the source does. The source hands it each
autoscaler status it reads (`autoscaler`), stamped with the loop's clock; the pods come from a
`PodWatcher` thread it starts (`start_pods`), whose events it folds into a `PodBook`, with the
API's times put on the loop's clock (`podrecords.api_times`) at the moment each event arrives.

When the pods cannot be watched (the access pre-flight found `list`/`watch` on pods missing, the
Deployment has no selector, or the API forbade them later), `pods_watched` is False and `notes`
says why: the pods' part of the breakdown is missing, the run goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time

from kubernetes import client as k8s

from nimbus_scenarios.kube.autoscaler_status import AutoscalerStatus
from nimbus_scenarios.kube.podrecords import PodBook, api_times
from nimbus_scenarios.kube.podwatch import PodChanged, PodsForbidden, PodsListed, PodWatcher
from nimbus_scenarios.kube.watch import Failed, WatchTiming
from nimbus_scenarios.scaling import AutoscalerSample, PodRecord

__all__ = ["ScalingRecording"]

log = logging.getLogger(__name__)

MISSING_PODS = "the pods' breakdown (creation, scheduling, start, Ready, restarts) is missing"


class ScalingRecording:
    """The autoscaler samples and pod records of one watched Deployment (see the module doc)."""

    def __init__(self, description: str) -> None:
        self._description = description
        self._samples: list[AutoscalerSample] = []
        self._book = PodBook()
        self._notes: list[str] = []
        self._pods_watched = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: PodWatcher | None = None
        self._closed = False

    @property
    def autoscaler_samples(self) -> list[AutoscalerSample]:
        """Every autoscaler status seen, in time order."""
        return self._samples

    @property
    def pods(self) -> list[PodRecord]:
        """The latest record of each pod, in the order first seen."""
        return self._book.records

    @property
    def pods_watched(self) -> bool:
        """Whether the pods are (or were, until the run ended) watched."""
        return self._pods_watched

    @property
    def notes(self) -> tuple[str, ...]:
        """Why part of the breakdown is missing."""
        return tuple(self._notes)

    @property
    def running(self) -> bool:
        """Whether the pod watcher's thread is alive."""
        return self._watcher is not None and self._watcher.running

    def autoscaler(self, status: AutoscalerStatus, at: float) -> None:
        """The autoscaler's status read at loop time `at`: a sample when anything changed."""
        last = self._samples[-1] if self._samples else None
        now = (status.desired, status.current, status.metrics, status.conditions)
        if last is not None and (last.desired, last.current, last.metrics, last.conditions) == now:
            return
        self._samples.append(
            AutoscalerSample(at, status.desired, status.current, status.metrics, status.conditions)
        )

    def pods_unavailable(self, why: str) -> None:
        """The pods cannot be watched (`why`): say so once, stop trying."""
        self._pods_watched = False
        note = f"{MISSING_PODS}: {why}"
        if note not in self._notes:
            self._notes.append(note)
            log.warning("%s: %s", self._description, note)
        self.halt()

    def start_pods(
        self,
        loop: asyncio.AbstractEventLoop,
        api: k8s.ApiClient,
        namespace: str,
        selector: str,
        timing: WatchTiming,
    ) -> None:
        """Watch the pods matching `selector` from a thread (the first list comes from it)."""
        if not selector:
            self.pods_unavailable(f"{self._description} has an empty selector")
            return
        self._loop = loop
        self._pods_watched = True
        self._watcher = PodWatcher(api, namespace, selector, timing, self._on_pods)
        self._watcher.start(loop, None)

    def halt(self) -> None:
        """Stop watching the pods (the records stay as they are)."""
        self._closed = True
        if self._watcher is not None:
            self._watcher.halt()
            self._watcher.interrupt()

    def interrupt(self) -> None:
        """Cut the pod watch stream, if any, so a halted thread ends sooner."""
        if self._watcher is not None:
            self._watcher.interrupt()

    def _on_pods(self, event: object) -> None:
        """What the pod watcher saw, run on the loop."""
        if self._closed or self._loop is None:
            return
        seen = self._loop.time()
        times = api_times(seen, time.time())
        match event:
            case PodsListed(pods):
                self._book.relist(pods, times, seen)
            case PodChanged("DELETED", pod):
                self._book.delete(pod, times, seen)
            case PodChanged(_, pod):
                self._book.update(pod, times)
            case PodsForbidden():
                self.pods_unavailable(f"forbidden to list or watch pods ({self._description})")
            case Failed(reason):
                log.info("%s: pods: %s", self._description, reason)

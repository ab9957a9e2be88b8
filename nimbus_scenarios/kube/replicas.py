"""Replica counts from a live Kubernetes API: `ClusterReplicaSource`, the `ReplicaSource` a real
run uses, in the `kube` layer. It owns the run's view of one Deployment; `watch` follows the
Deployment from a thread, `scaling` reads the autoscaler and kills pods, `recording` keeps the
autoscaler's status and the pods, `access` runs the pre-flight over `api`'s permission table.

The official `kubernetes` client is synchronous, so every call it makes runs off the event loop:
pre-flight calls go through `asyncio.to_thread`, and the long-lived watch (or the polling that
replaces it when watch is forbidden) runs in one background thread. That thread never touches
the source's state: it hands what it saw to the loop with `loop.call_soon_threadsafe`, and the
loop stamps each sample with its own clock (`loop.time()`) and decides when the source is lost.

Freshness: a watch that says nothing may be quiet or may be dead (or held open by something in
between that no longer forwards events), and bookmarks come about once a minute at best, so
silence proves nothing. Every event, bookmark, list or poll answer proves the samples complete up
to the moment it arrives (`fresh_until`); when nothing has for `fresh_interval_s`, the loop reads
the Deployment with a GET and compares its resourceVersion with the last one the watch
delivered: equal proves the data fresh; different means the watch missed a change, and unless it
catches up within `behind_grace_s` its stream is cut and the watch resumes from the last version
(replaying what it missed), or relists if a resync already brought nothing. A proof that comes
more than `stale_after_s` after the one before does not make the data fresh again: freshness
stays where the gap began, because what was learnt after the gap may have happened in it.

This module imports `kubernetes`; keep it out of the `validate`/`plan` import path (import it
lazily where a run needs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from nimbus_scenarios.errors import ClusterError, DeploymentNotFound
from nimbus_scenarios.kube.access import preflight
from nimbus_scenarios.kube.api import (
    LIST_DEPLOYMENTS,
    TRANSPORT_ERRORS,
    KubeObject,
    api_error,
    describe_failure,
    get_in,
    needed_permissions,
    unreachable,
)
from nimbus_scenarios.kube.recording import ScalingRecording
from nimbus_scenarios.kube.scaling import (
    Autoscaler,
    delete_ready_pods,
    discover_autoscaler,
    label_selector,
    read_status,
)
from nimbus_scenarios.kube.timing import SourceTiming
from nimbus_scenarios.kube.watch import (
    Contact,
    Deleted,
    DeploymentCounts,
    DeploymentWatcher,
    Failed,
    ModeChanged,
    Observed,
    Relisted,
    WatchEvent,
    WatchMode,
    deployment_counts,
    get_deployment,
    list_deployment,
    object_version,
)
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.scaling import AutoscalerSample, PodRecord

__all__ = ["ClusterReplicaSource", "SourceTiming"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the source
class ClusterReplicaSource:
    """Watches one Deployment through the Kubernetes API and records its replica counts.

    `start()` checks access, lists the Deployment (the first sample), looks for an HPA or KEDA
    ScaledObject targeting it, then watches it from the list's resourceVersion in a background
    thread: a dropped stream resumes from the last resourceVersion seen (no change is lost), 410
    Gone relists and watches on, and a 403 on watch falls back to polling every
    `poll_interval_s` (`mode` says which is in use). When the API stays unreachable
    (`lost_after_failures` failed attempts, the first `lost_after_s` ago or more) or the
    Deployment is deleted, `lost_at` is set and the source stops. `fresh_until` is how far the
    samples are proven complete (the module docstring says how).

    A `ScalingRecorder` too (`kube.recording`): the autoscaler's status every
    `autoscaler_interval_s`, and the selector's pods. Without `list`/`watch` on pods the pre-flight
    fails when `pods_required`, else `pods_watched` is False with a note in `scaling_notes`.
    """

    def __init__(
        self,
        deployment: str,
        namespace: str,
        api_client: k8s.ApiClient,
        *,
        kills: bool = False,
        check_permissions: bool = True,
        timing: SourceTiming | None = None,
        service_account: tuple[str, str] | None = None,
        pods_required: bool = False,
    ) -> None:
        self.deployment = deployment
        self.namespace = namespace
        self._api = api_client
        self._kills = kills
        self._check_permissions = check_permissions
        self._service_account = service_account  # named in a pre-flight permission error
        self._timing = timing or SourceTiming()
        self._pods_required = pods_required
        self._recording = ScalingRecording(self.description)
        # Loop-owned state: written only on the event loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._samples: list[ReplicaSample] = []
        self._counts: DeploymentCounts | None = None
        self._selector = ""
        self._autoscaler: Autoscaler | None = None
        self._autoscaler_desired: int | None = None
        self._autoscaler_task: asyncio.Task[None] | None = None
        self._fresh_task: asyncio.Task[None] | None = None
        self._mode = WatchMode.WATCH
        self._relists = 0
        self._lost_at: float | None = None
        self._lost_reason: str | None = None
        self._last_contact: float | None = None
        self._failures = 0
        self._first_failure: float | None = None
        self._stopped = False
        # Freshness (loop times): the last proof, how far the data is fresh (it stops moving
        # after a gap longer than stale_after_s), what the watch last delivered and when.
        self._proven_at: float | None = None
        self._fresh_until: float | None = None
        self._stale_from: float | None = None
        self._delivered_version: str | None = None
        self._heard_at: float | None = None
        self._resyncs = 0
        self._resynced_at: float | None = None
        # Made here, not in start(), so that a stop() during start() halts it before it runs.
        self._watcher = DeploymentWatcher(
            api_client, namespace, deployment, self._timing, self._on_watch
        )

    # ------------------------------------------------------------ the ReplicaSource protocol
    @property
    def description(self) -> str:
        """What is watched (`deployment nimbusguard/consumer`)."""
        return f"deployment {self.namespace}/{self.deployment}"

    @property
    def samples(self) -> list[ReplicaSample]:
        """Every sample so far, in time order."""
        return self._samples

    @property
    def lost_at(self) -> float | None:
        """Loop time of the last good contact, once the source has given up; else None."""
        return self._lost_at

    @property
    def fresh_until(self) -> float | None:
        """Loop time up to which the samples are proven complete (None before `start()`)."""
        return self._fresh_until

    @property
    def stale_after_s(self) -> float:
        """Without a proof for this long, the data is stale."""
        return self._timing.stale_after_s

    @property
    def autoscaler(self) -> str | None:
        """`HorizontalPodAutoscaler ns/name` or `ScaledObject ns/name`, when one targets it."""
        if self._autoscaler is None:
            return None
        return f"{self._autoscaler.kind} {self.namespace}/{self._autoscaler.name}"

    @property
    def autoscaler_samples(self) -> list[AutoscalerSample]:
        """Every autoscaler status seen (when it changed), in time order."""
        return self._recording.autoscaler_samples

    @property
    def pods(self) -> list[PodRecord]:
        """Each pod of the Deployment seen, latest record per pod, in the order first seen."""
        return self._recording.pods

    @property
    def pods_watched(self) -> bool:
        """Whether the pods were watched (False: forbidden, or no selector)."""
        return self._recording.pods_watched

    @property
    def scaling_notes(self) -> tuple[str, ...]:
        """Why part of the scaling breakdown is missing (the pods were not watched)."""
        return self._recording.notes

    @property
    def lost_reason(self) -> str | None:
        """Why the source was lost (the last error, or the Deployment's deletion)."""
        return self._lost_reason

    @property
    def mode(self) -> WatchMode:
        """`watch`, or `poll` after the API forbade watching."""
        return self._mode

    @property
    def relists(self) -> int:
        """How many times a 410 Gone made the source relist."""
        return self._relists

    @property
    def resyncs(self) -> int:
        """How many times a watch stream was found to have missed a change, and was cut."""
        return self._resyncs

    async def start(self) -> None:
        """Check access, record the first sample and begin watching.

        Raises `ClusterForbidden`, `ClusterUnreachable`, `DeploymentNotFound` or `ClusterError`
        with a message naming what is wrong.
        """
        if self._loop is not None:
            raise RuntimeError(f"{self.description}: the source was already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        pods = True
        if self._check_permissions:
            needs = needed_permissions(self._kills, pods_required=self._pods_required)
            args = (self._api, self.namespace, needs, self._service_account)
            missing = await asyncio.to_thread(preflight, *args)
            if missing:
                pods = False
                self._recording.pods_unavailable("; ".join(missing))
        version, deployment = await asyncio.to_thread(self._first_list)
        timeout = self._timing.request_timeout_s
        autoscaler, status = await asyncio.to_thread(
            discover_autoscaler, self._api, self.namespace, self.deployment, timeout
        )
        self._selector = label_selector(get_in(deployment, "spec", "selector"))
        self._autoscaler = autoscaler
        self._autoscaler_desired = None if status is None else status.desired
        if status is not None:
            self._recording.autoscaler(status, loop.time())
        self._observe(deployment_counts(deployment), object_version(deployment))
        self._watcher.start(loop, version or None)
        if pods and not self._stopped:
            self._recording.start_pods(
                loop, self._api, self.namespace, self._selector, self._timing
            )
        self._fresh_task = loop.create_task(self._keep_fresh())
        if autoscaler is not None:
            self._autoscaler_task = loop.create_task(self._follow_autoscaler(autoscaler))

    async def stop(self) -> None:
        """Stop watching; waits up to `stop_timeout_s` for the watcher thread to end."""
        self._stopped = True
        self._watcher.halt()
        self._recording.halt()
        for task in (self._autoscaler_task, self._fresh_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        watcher = self._watcher
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timing.stop_timeout_s
        recording = self._recording
        while (watcher.running or recording.running) and loop.time() < deadline:
            watcher.interrupt()
            recording.interrupt()
            await asyncio.sleep(0.02)
        if watcher.running or recording.running:
            log.warning("%s: a watcher thread did not stop in time", self.description)

    async def kill_pods(self, count: int) -> list[str]:
        """Delete `count` ready pods of the Deployment (fewer if fewer are ready); their names.

        Pods are chosen by the Deployment's selector, Ready=True and not terminating, in name
        order. Raises `ClusterError` (with the forbidden verb, or the API's answer) on failure.
        """
        if count <= 0:
            return []
        if not self._selector:
            raise ClusterError(f"{self.description} has an empty selector: refusing to kill pods")
        timeout = self._timing.request_timeout_s
        return await asyncio.to_thread(
            delete_ready_pods, self._api, self.namespace, self._selector, count, timeout
        )

    # ------------------------------------------------------------ loop side
    def _on_watch(self, event: WatchEvent) -> None:
        """What the watcher thread saw, run on the loop."""
        match event:
            case Observed(counts, version):
                self._observe(counts, version)
            case Contact(proves):
                self._contact(prove=proves)
            case Deleted():
                self._gone()
            case Relisted():
                self._relists += 1
            case ModeChanged(mode):
                self._set_mode(mode)
            case Failed(reason):
                self._failed(reason)

    @property
    def _closed(self) -> bool:
        return self._stopped or self._lost_at is not None

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _contact(self, *, prove: bool = True) -> float:
        """A good answer from the watcher has just arrived (proving the data complete up to now,
        unless it is only a stream ended cleanly); the loop time."""
        now = self._now()
        if not self._closed:
            self._last_contact = now
            self._heard_at = now
            self._failures = 0
            self._first_failure = None
            if prove:
                self._prove(now)
        return now

    def _observe(self, counts: DeploymentCounts, version: str | None) -> None:
        if self._closed:
            return
        now = self._contact()
        self._delivered_version = version
        if counts != self._counts:
            self._counts = counts
            self._append(now)

    def _prove(self, at: float) -> None:
        """Nothing was missed up to `at`: the data is fresh to there, unless the last proof is
        more than `stale_after_s` older, in which case it stays stale from that last proof."""
        if self._closed:
            return
        last = self._proven_at
        if last is not None and at - last > self._timing.stale_after_s and self._stale_from is None:
            self._stale_from = last
            log.warning(
                "%s: nothing proved the replica data fresh for %.1fs; stale from then on",
                self.description,
                at - last,
            )
        self._proven_at = at if last is None else max(last, at)
        if self._stale_from is None:
            self._fresh_until = self._proven_at

    def _append(self, now: float) -> None:
        counts = self._counts
        assert counts is not None
        self._samples.append(
            ReplicaSample(
                at=now,
                ready=counts.ready,
                desired=counts.desired,
                current=counts.current,
                autoscaler=self._autoscaler_desired,
            )
        )

    def _set_mode(self, mode: WatchMode) -> None:
        if mode == WatchMode.POLL and self._mode != WatchMode.POLL:
            interval = self._timing.poll_interval_s
            log.warning("%s: watch is forbidden; polling every %gs", self.description, interval)
        self._mode = mode

    def _failed(self, reason: str) -> None:
        if self._closed:
            return
        now = self._now()
        if self._first_failure is None:
            self._first_failure = now
        self._failures += 1
        log.info("%s: %s (failure %d)", self.description, reason, self._failures)
        timing = self._timing
        if (
            self._failures >= timing.lost_after_failures
            and now - self._first_failure >= timing.lost_after_s
        ):
            self._lose(reason)

    def _gone(self) -> None:
        if self._closed:
            return
        self._contact()
        self._lose(f"{self.description} was deleted")

    def _lose(self, reason: str) -> None:
        self._lost_at = self._last_contact if self._last_contact is not None else self._now()
        if self._fresh_until is not None:  # lost: stale from the last contact at the latest
            self._fresh_until = min(self._fresh_until, self._lost_at)
        self._lost_reason = reason
        log.warning("%s: lost (%s)", self.description, reason)
        self._watcher.halt()
        self._watcher.interrupt()
        self._recording.halt()
        for task in (self._autoscaler_task, self._fresh_task):
            if task is not None:
                task.cancel()

    # ------------------------------------------------------------ freshness
    async def _keep_fresh(self) -> None:
        """Whenever nothing has proved the data fresh for `fresh_interval_s`, read the
        Deployment: the version the watch delivered proves it; another one means the watch
        missed a change, and its stream is cut unless it catches up within `behind_grace_s`."""
        timing = self._timing
        attempted = self._now()
        while not self._closed:
            since = attempted if self._proven_at is None else max(self._proven_at, attempted)
            await asyncio.sleep(max(since + timing.fresh_interval_s - self._now(), 0.0))
            now = self._now()
            proven = self._proven_at
            if self._closed:
                return
            if self._mode is WatchMode.POLL:  # each poll answer proves itself
                attempted = now
                continue
            if proven is not None and now - proven < timing.fresh_interval_s:
                continue  # an event or a bookmark came meanwhile
            attempted = now
            try:
                deployment = await asyncio.to_thread(
                    get_deployment,
                    self._api,
                    self.namespace,
                    self.deployment,
                    timing.request_timeout_s,
                )
            except Exception as exc:  # the watcher's own attempts decide when it is lost
                log.info("%s: freshness check failed: %s", self.description, describe_failure(exc))
                continue
            version = object_version(deployment)
            if self._closed or version is None:
                continue
            if version == self._delivered_version:
                self._prove(attempted)
                continue
            await asyncio.sleep(timing.behind_grace_s)
            heard = self._heard_at
            if not self._closed and (heard is None or heard < attempted):
                self._resync()

    def _resync(self) -> None:
        """The watch stream missed a change: cut it and watch again from the last version seen,
        or relist if the last resync brought nothing."""
        heard = self._heard_at
        last = self._resynced_at
        relist = last is not None and (heard is None or heard < last)
        self._resyncs += 1
        self._resynced_at = self._now()
        action = "relisting" if relist else "watching again from the last version seen"
        log.warning("%s: the watch missed a change; %s", self.description, action)
        self._watcher.resync(relist=relist)

    # ------------------------------------------------------------ autoscaler
    async def _follow_autoscaler(self, autoscaler: Autoscaler) -> None:
        timeout = self._timing.request_timeout_s
        while not self._closed:
            await asyncio.sleep(self._timing.autoscaler_interval_s)
            status = await asyncio.to_thread(
                read_status, self._api, self.namespace, autoscaler, timeout
            )
            if self._closed:
                return
            if status is not None:
                self._recording.autoscaler(status, self._now())
            desired = None if status is None else status.desired
            if desired != self._autoscaler_desired:
                self._autoscaler_desired = desired
                if self._counts is not None:
                    self._append(self._now())

    # ------------------------------------------------------------ pre-flight
    def _first_list(self) -> tuple[str, KubeObject]:
        """The list's resourceVersion and the Deployment; a clear error if it cannot be read."""
        try:
            version, deployment = list_deployment(
                self._api, self.namespace, self.deployment, self._timing.request_timeout_s
            )
        except ApiException as exc:
            raise api_error(exc, LIST_DEPLOYMENTS, self.namespace) from None
        except TRANSPORT_ERRORS as exc:
            raise unreachable(self._api, exc) from None
        if deployment is None:
            raise DeploymentNotFound(f"{self.description} not found")
        return version, deployment

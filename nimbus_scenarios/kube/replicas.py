"""Replica counts from a live Kubernetes API: `ClusterReplicaSource`, the `ReplicaSource` a real
run uses, in the `kube` layer. It owns the run's view of one Deployment; `watch` follows the
Deployment from a thread, `scaling` reads the autoscaler and kills pods, and `api` holds the
permission table, the pre-flight check and the mapping of API answers to errors.

The official `kubernetes` client is synchronous, so every call it makes runs off the event loop:
pre-flight calls go through `asyncio.to_thread`, and the long-lived watch (or the polling that
replaces it when watch is forbidden) runs in one background thread. That thread never touches
the source's state: it hands what it saw to the loop with `loop.call_soon_threadsafe`, and the
loop stamps each sample with its own clock (`loop.time()`) and decides when the source is lost.

This module imports `kubernetes`; keep it out of the `validate`/`plan` import path (import it
lazily where a run needs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from nimbus_scenarios.errors import ClusterError, ClusterForbidden, DeploymentNotFound
from nimbus_scenarios.kube.api import (
    LIST_DEPLOYMENTS,
    TRANSPORT_ERRORS,
    KubeObject,
    api_error,
    check_access,
    get_in,
    needed_permissions,
    unreachable,
)
from nimbus_scenarios.kube.scaling import (
    Autoscaler,
    delete_ready_pods,
    discover_autoscaler,
    label_selector,
    read_decision,
)
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
    list_deployment,
)
from nimbus_scenarios.replicas import ReplicaSample

__all__ = ["ClusterReplicaSource", "SourceTiming"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the source
@dataclass(frozen=True, slots=True)
class SourceTiming:
    """How often and how patiently the source talks to the API server (seconds)."""

    poll_interval_s: float = 2.0
    autoscaler_interval_s: float = 5.0
    watch_timeout_s: int = 300
    request_timeout_s: float = 10.0
    retry_delay_s: float = 0.5
    retry_delay_max_s: float = 2.0
    lost_after_s: float = 10.0
    lost_after_failures: int = 3
    stop_timeout_s: float = 5.0


class ClusterReplicaSource:
    """Watches one Deployment through the Kubernetes API and records its replica counts.

    `start()` checks access, lists the Deployment (the first sample), looks for an HPA or KEDA
    ScaledObject targeting it, then watches it from the list's resourceVersion in a background
    thread: a dropped stream resumes from the last resourceVersion seen (no change is lost), 410
    Gone relists and watches on, and a 403 on watch falls back to polling every
    `poll_interval_s` (`mode` says which is in use). When the API stays unreachable
    (`lost_after_failures` failed attempts, the first `lost_after_s` ago or more) or the
    Deployment is deleted, `lost_at` is set and the source stops.
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
    ) -> None:
        self.deployment = deployment
        self.namespace = namespace
        self._api = api_client
        self._kills = kills
        self._check_permissions = check_permissions
        self._timing = timing or SourceTiming()
        # Loop-owned state: written only on the event loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._samples: list[ReplicaSample] = []
        self._counts: DeploymentCounts | None = None
        self._selector = ""
        self._autoscaler: Autoscaler | None = None
        self._autoscaler_desired: int | None = None
        self._autoscaler_task: asyncio.Task[None] | None = None
        self._mode = WatchMode.WATCH
        self._relists = 0
        self._lost_at: float | None = None
        self._lost_reason: str | None = None
        self._last_contact: float | None = None
        self._failures = 0
        self._first_failure: float | None = None
        self._stopped = False
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
    def autoscaler(self) -> str | None:
        """`HorizontalPodAutoscaler ns/name` or `ScaledObject ns/name`, when one targets it."""
        if self._autoscaler is None:
            return None
        return f"{self._autoscaler.kind} {self.namespace}/{self._autoscaler.name}"

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

    async def start(self) -> None:
        """Check access, record the first sample and begin watching.

        Raises `ClusterForbidden`, `ClusterUnreachable`, `DeploymentNotFound` or `ClusterError`
        with a message naming what is wrong.
        """
        if self._loop is not None:
            raise RuntimeError(f"{self.description}: the source was already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        if self._check_permissions:
            needs = needed_permissions(self._kills)
            problems = await asyncio.to_thread(check_access, self._api, self.namespace, needs)
            if problems:
                raise ClusterForbidden("; ".join(problems))
        version, deployment = await asyncio.to_thread(self._first_list)
        timeout = self._timing.request_timeout_s
        autoscaler, desired = await asyncio.to_thread(
            discover_autoscaler, self._api, self.namespace, self.deployment, timeout
        )
        self._selector = label_selector(get_in(deployment, "spec", "selector"))
        self._autoscaler = autoscaler
        self._autoscaler_desired = desired
        self._observe(deployment_counts(deployment))
        self._watcher.start(loop, version or None)
        if autoscaler is not None:
            self._autoscaler_task = loop.create_task(self._follow_autoscaler(autoscaler))

    async def stop(self) -> None:
        """Stop watching; waits up to `stop_timeout_s` for the watcher thread to end."""
        self._stopped = True
        self._watcher.halt()
        if self._autoscaler_task is not None:
            self._autoscaler_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._autoscaler_task
        watcher = self._watcher
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timing.stop_timeout_s
        while watcher.running and loop.time() < deadline:
            watcher.interrupt()
            await asyncio.sleep(0.02)
        if watcher.running:
            log.warning("%s: the watcher thread did not stop in time", self.description)

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
            case Observed(counts):
                self._observe(counts)
            case Contact():
                self._contact()
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

    def _contact(self) -> float:
        """A good answer from the API has just arrived; the loop time."""
        now = self._now()
        if not self._closed:
            self._last_contact = now
            self._failures = 0
            self._first_failure = None
        return now

    def _observe(self, counts: DeploymentCounts) -> None:
        if self._closed:
            return
        now = self._contact()
        if counts != self._counts:
            self._counts = counts
            self._append(now)

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
        self._lost_reason = reason
        log.warning("%s: lost (%s)", self.description, reason)
        self._watcher.halt()
        self._watcher.interrupt()
        if self._autoscaler_task is not None:
            self._autoscaler_task.cancel()

    # ------------------------------------------------------------ autoscaler
    async def _follow_autoscaler(self, autoscaler: Autoscaler) -> None:
        timeout = self._timing.request_timeout_s
        while not self._closed:
            await asyncio.sleep(self._timing.autoscaler_interval_s)
            desired = await asyncio.to_thread(
                read_decision, self._api, self.namespace, autoscaler, timeout
            )
            if self._closed:
                return
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

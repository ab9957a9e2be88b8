"""What the `kube` tests share: Kubernetes objects as the API stores them, and a `Cluster` (the
emulated API server of `apiserver.py` with the official client pointed at it).

The server runs on 127.0.0.1 in the test's own event loop, so any blocking call the code under
test made on the loop would stall the server and fail the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import kmock
from kubernetes import client as k8s

from nimbus_scenarios.kube.replicas import ClusterReplicaSource, SourceTiming
from tests.kube.apiserver import ApiServer, api_client, close

NS = "nimbusguard"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
CONSUMER = f"{DEPLOYMENTS}/consumer"
PODS = f"/api/v1/namespaces/{NS}/pods"
HPAS = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"
SCALEDOBJECTS = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects"

FAST = SourceTiming(
    poll_interval_s=0.1,
    fresh_interval_s=0.1,
    behind_grace_s=0.1,
    stale_after_s=1.0,
    autoscaler_interval_s=0.1,
    watch_timeout_s=30,
    request_timeout_s=2.0,
    retry_delay_s=0.05,
    retry_delay_max_s=0.1,
    lost_after_s=0.5,
    lost_after_failures=3,
    stop_timeout_s=2.0,
)


def deployment(
    name: str = "consumer", *, replicas: int = 1, ready: int = 1, namespace: str = NS
) -> dict[str, Any]:
    """A Deployment as the API would store it, with status written by its controller."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "consumer:1"}]},
            },
        },
        "status": {"replicas": replicas, "readyReplicas": ready},
    }


def pod(name: str, app: str, *, ready: bool = True, terminating: bool = False) -> dict[str, Any]:
    """A pod carrying `app=<app>`, Ready or not, maybe already terminating."""
    metadata: dict[str, Any] = {"name": name, "namespace": NS, "labels": {"app": app}}
    if terminating:  # held by a finalizer: kmock drops a deleted object that has none
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        metadata["finalizers"] = ["test/hold"]
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": [{"name": "app", "image": "consumer:1"}]},
        "status": {"phase": "Running", "conditions": [condition]},
    }


def hpa(name: str, target: str, desired: int) -> dict[str, Any]:
    """An autoscaling/v2 HPA scaling Deployment `target`, having decided `desired`."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1,
            "maxReplicas": 10,
        },
        "status": {"currentReplicas": 1, "desiredReplicas": desired},
    }


@dataclass
class Cluster:
    """A running emulated API server, and the official client pointed at it."""

    server: ApiServer
    api: k8s.ApiClient
    http: kmock.Server
    stack: contextlib.AsyncExitStack

    async def create(self, path: str, body: dict[str, Any]) -> None:
        """POST `body` to the collection at `path`, as kubectl would."""
        async with self.http.client.post(path, json=body) as response:
            assert response.status < 300, await response.text()

    async def patch(self, path: str, body: dict[str, Any]) -> None:
        """Merge-patch the object (or subresource) at `path`."""
        async with self.http.client.patch(path, json=body) as response:
            assert response.status < 300, await response.text()

    async def scale(
        self, *, replicas: int | None = None, current: int | None = None, ready: int | None = None
    ) -> None:
        """Write what the HPA (spec.replicas) and the controller (status) would write."""
        if replicas is not None:
            await self.patch(CONSUMER, {"spec": {"replicas": replicas}})
        status = {
            k: v for k, v in (("replicas", current), ("readyReplicas", ready)) if v is not None
        }
        if status:
            await self.patch(f"{CONSUMER}/status", {"status": status})

    async def kill_server(self) -> None:
        """Stop the API server: open streams are cut, new connections refused."""
        await self.server.go_down()
        await asyncio.sleep(0.05)
        await self.stack.aclose()

    def source(self, **kwargs: Any) -> ClusterReplicaSource:
        """A source watching Deployment `consumer`, with `FAST` timing unless told otherwise."""
        kwargs.setdefault("timing", FAST)
        return ClusterReplicaSource("consumer", NS, self.api, **kwargs)


@contextlib.asynccontextmanager
async def serve(*, watch_pods: bool = False) -> AsyncIterator[Cluster]:
    """An emulated API server on 127.0.0.1 for the block, shut down cleanly after it.

    Unless `watch_pods`, watching pods is denied: the source then records no pods (a note says
    so) and the Deployment's stream is the only watch, which the Deployment-watch tests count on.
    """
    async with ApiServer() as server:
        if not watch_pods:
            server.deny("watch", "", "pods")
        stack = contextlib.AsyncExitStack()
        http = await stack.enter_async_context(kmock.Server(server))
        cluster = Cluster(server, api_client(str(http.url)), http, stack)
        try:
            yield cluster
        finally:
            server.drop_watches(abrupt=False)
            await stack.aclose()
            close(cluster.api)


@contextlib.asynccontextmanager
async def started(cluster: Cluster, **kwargs: Any) -> AsyncIterator[ClusterReplicaSource]:
    """A started source for the block, stopped after it."""
    source = cluster.source(**kwargs)
    await source.start()
    try:
        yield source
    finally:
        await source.stop()


def run(
    test: Callable[[Cluster], Awaitable[None]], timeout: float = 20.0, *, watch_pods: bool = False
) -> None:
    """Run an async test against a fresh emulated cluster, in a loop of its own (`serve`)."""

    async def main() -> None:
        async with serve(watch_pods=watch_pods) as cluster:
            await asyncio.wait_for(test(cluster), timeout)

    asyncio.run(main())


def counts(source: ClusterReplicaSource) -> list[tuple[int, int, int]]:
    """Every sample as (ready, desired, current)."""
    return [(s.ready, s.desired, s.current) for s in source.samples]


def readies(source: ClusterReplicaSource) -> list[int]:
    """Every sample's ready count."""
    return [s.ready for s in source.samples]


@contextlib.contextmanager
def socket_port() -> Iterator[int]:
    """A port on 127.0.0.1 that nothing listens on once the block ends."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


def stamp(wall: float) -> str:
    """A Unix time as the API writes timestamps (whole seconds, UTC)."""
    return datetime.datetime.fromtimestamp(wall, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_status(
    t0: float,
    *,
    scheduled: float | None = None,
    started: float | None = None,
    ready: float | None = None,
    restarts: int = 0,
    terminated: str | None = None,
) -> dict[str, Any]:
    """A pod's status as the kubelet writes it, its moments given as seconds after wall time
    `t0`: `PodScheduled` and `Ready` conditions with their lastTransitionTime, one container
    running since `started` (waiting before), with `restarts` and, when `terminated`, a
    `lastState.terminated` of that reason."""
    conditions = []
    if scheduled is not None:
        conditions.append(
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp(t0 + scheduled)}
        )
    moment = t0 + (ready if ready is not None else 0.0)
    conditions.append(
        {"type": "Ready", "status": str(ready is not None), "lastTransitionTime": stamp(moment)}
    )
    container: dict[str, Any] = {
        "name": "app",
        "restartCount": restarts,
        "ready": ready is not None,
    }
    if started is None:
        container["state"] = {"waiting": {"reason": "ContainerCreating"}}
    else:
        container["state"] = {"running": {"startedAt": stamp(t0 + started)}}
    if terminated is not None:
        container["lastState"] = {
            "terminated": {
                "reason": terminated,
                "exitCode": 137,
                "startedAt": stamp(t0),
                "finishedAt": stamp(t0 + (started or 0.0)),
            }
        }
    phase = "Running" if started is not None else "Pending"
    return {"phase": phase, "conditions": conditions, "containerStatuses": [container]}


def hpa_with_metrics(name: str, target: str, desired: int, current: int) -> dict[str, Any]:
    """An HPA scaling `target` on an external metric (5 per replica) and CPU (60 %), its status
    showing 7.2 per replica and 45 %, with its three conditions."""
    body = hpa(name, target, desired)
    body["spec"]["metrics"] = [
        {
            "type": "External",
            "external": {
                "metric": {"name": "s0-prometheus"},
                "target": {"type": "AverageValue", "averageValue": "5"},
            },
        },
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 60},
            },
        },
    ]
    body["status"] = {
        "desiredReplicas": desired,
        "currentReplicas": current,
        "currentMetrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": 45}},
            },
            {
                "type": "External",
                "external": {
                    "metric": {"name": "s0-prometheus"},
                    "current": {"averageValue": "7200m"},
                },
            },
        ],
        "conditions": [
            {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale"},
            {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"},
            {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange"},
        ],
    }
    return body

"""Tests for ClusterReplicaSource and the access checks, with the official client against kmock.

The API server is kmock's emulator extended in `apiserver.py` (resourceVersions, 410, selectors,
RBAC); it runs on 127.0.0.1 in the test's own event loop, so any blocking call the source made
on the loop would stall the server and fail the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kmock
import pytest
from kubernetes import client as k8s

from nimbus_scenarios.errors import ClusterForbidden, ClusterUnreachable, DeploymentNotFound
from nimbus_scenarios.kube.cluster import (
    PERMISSIONS,
    ClusterReplicaSource,
    KubeConfig,
    SourceTiming,
    check_access,
    label_selector,
    needed_permissions,
    required_rbac_rules,
)
from tests.kube.apiserver import ApiServer, api_client, close

NS = "nimbusguard"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
CONSUMER = f"{DEPLOYMENTS}/consumer"
PODS = f"/api/v1/namespaces/{NS}/pods"
HPAS = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"
SCALEDOBJECTS = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects"

FAST = SourceTiming(
    poll_interval_s=0.1,
    autoscaler_interval_s=0.1,
    watch_timeout_s=30,
    request_timeout_s=2.0,
    retry_delay_s=0.05,
    retry_delay_max_s=0.1,
    lost_after_s=0.5,
    lost_after_failures=3,
    stop_timeout_s=2.0,
)


def deployment(name: str = "consumer", *, replicas: int = 1, ready: int = 1) -> dict[str, Any]:
    """A Deployment as the API would store it, with status written by its controller."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
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
        async with self.http.client.post(path, json=body) as response:
            assert response.status < 300, await response.text()

    async def patch(self, path: str, body: dict[str, Any]) -> None:
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
        self.server.go_down()
        await asyncio.sleep(0.05)
        await self.stack.aclose()

    def source(self, **kwargs: Any) -> ClusterReplicaSource:
        kwargs.setdefault("timing", FAST)
        return ClusterReplicaSource("consumer", NS, self.api, **kwargs)


@contextlib.asynccontextmanager
async def serve() -> AsyncIterator[Cluster]:
    async with ApiServer() as server:
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
    source = cluster.source(**kwargs)
    await source.start()
    try:
        yield source
    finally:
        await source.stop()


def run(test: Callable[[Cluster], Awaitable[None]], timeout: float = 20.0) -> None:
    async def main() -> None:
        async with serve() as cluster:
            await asyncio.wait_for(test(cluster), timeout)

    asyncio.run(main())


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def counts(source: ClusterReplicaSource) -> list[tuple[int, int, int]]:
    return [(s.ready, s.desired, s.current) for s in source.samples]


def readies(source: ClusterReplicaSource) -> list[int]:
    return [s.ready for s in source.samples]


# ---------------------------------------------------------------- watching
def test_samples_follow_a_controller_scaling_up() -> None:
    """Every change of spec.replicas, status.replicas and readyReplicas is a sample, in order."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        await cluster.create(DEPLOYMENTS, deployment("other"))
        async with started(cluster) as source:
            assert counts(source) == [(1, 1, 1)]
            await cluster.scale(replicas=3)
            await cluster.scale(current=3)
            await cluster.patch(f"{DEPLOYMENTS}/other/status", {"status": {"readyReplicas": 0}})
            await cluster.scale(ready=2)
            await cluster.patch(CONSUMER, {"metadata": {"labels": {"touched": "yes"}}})
            await cluster.scale(ready=3)
            await eventually(lambda: counts(source)[-1] == (3, 3, 3))
            assert counts(source) == [(1, 1, 1), (1, 3, 1), (1, 3, 3), (2, 3, 3), (3, 3, 3)]
            times = [s.at for s in source.samples]
            assert times == sorted(times)
            assert source.mode == "watch"
            assert source.lost_at is None
            assert source.autoscaler is None
            assert source.description == f"deployment {NS}/consumer"
            first_watch = cluster.server.state.watch_params[0]
            assert first_watch["fieldSelector"] == "metadata.name=consumer"
            assert first_watch["resourceVersion"] == "2"  # the list's version

    run(test)


@pytest.mark.parametrize("abrupt", [True, False], ids=["cut", "closed"])
def test_dropped_watch_resumes_without_losing_a_change(abrupt: bool) -> None:
    """A dropped stream resumes from the last resourceVersion and replays what it missed."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment(replicas=4))
        async with started(cluster) as source:
            await cluster.scale(ready=2)
            await eventually(lambda: readies(source) == [1, 2])
            seen = cluster.server.state.version
            cluster.server.watch_gate.clear()  # the reconnect waits until the changes are made
            assert cluster.server.drop_watches(abrupt=abrupt) == 1
            await eventually(lambda: len(cluster.server.state.watch_params) == 2)
            await cluster.scale(ready=3)  # made while disconnected,
            await cluster.scale(ready=4)  # and overwritten before the reconnect
            cluster.server.watch_gate.set()
            await eventually(lambda: readies(source)[-1] == 4)
            assert readies(source) == [1, 2, 3, 4]
            assert cluster.server.state.watch_params[1]["resourceVersion"] == str(seen)
            assert source.lost_at is None

    run(test)


def test_gone_on_resume_relists_and_watches_on() -> None:
    """410 Gone on resume relists (recording the current state) and keeps watching."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment(replicas=4))
        async with started(cluster) as source:
            await cluster.scale(ready=2)
            await eventually(lambda: readies(source) == [1, 2])
            cluster.server.watch_gate.clear()
            cluster.server.drop_watches()
            await eventually(lambda: len(cluster.server.state.watch_params) == 2)
            await cluster.scale(ready=3)
            cluster.server.compact()  # the version the client holds is now too old
            cluster.server.watch_gate.set()
            await eventually(lambda: readies(source)[-1] == 3)
            assert source.relists == 1
            await cluster.scale(ready=4)
            await eventually(lambda: readies(source)[-1] == 4)
            assert readies(source) == [1, 2, 3, 4]
            assert source.mode == "watch"
            assert source.lost_at is None
            resumed = cluster.server.state.watch_params[-1]["resourceVersion"]
            assert int(resumed) >= cluster.server.state.compacted

    run(test)


def test_forbidden_watch_falls_back_to_polling() -> None:
    """A 403 on watch (get still allowed) switches to polling, which still records changes."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment(replicas=3))
        async with started(cluster) as source:
            cluster.server.deny("watch", "apps", "deployments")
            cluster.server.drop_watches(abrupt=False)
            await eventually(lambda: source.mode == "poll")
            await cluster.scale(ready=2)
            await eventually(lambda: readies(source)[-1] == 2)
            await cluster.scale(ready=3)
            await eventually(lambda: readies(source)[-1] == 3)
            assert readies(source) == [1, 2, 3]
            assert source.lost_at is None
            assert cluster.server.open_watches == 0

    run(test)


def test_watch_forbidden_from_the_start_polls() -> None:
    """Without the access check, a source that may never watch polls from its first sample."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment(replicas=2))
        cluster.server.deny("watch", "apps", "deployments")
        async with started(cluster, check_permissions=False) as source:
            await eventually(lambda: source.mode == "poll")
            await cluster.scale(ready=2)
            await eventually(lambda: readies(source) == [1, 2])

    run(test)


# ---------------------------------------------------------------- losing the API
def test_api_killed_mid_run_sets_lost_at() -> None:
    """When the API server dies, lost_at is set to the last good contact and watching stops."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment(replicas=2))
        async with started(cluster) as source:
            await cluster.scale(ready=2)
            await eventually(lambda: readies(source) == [1, 2])
            loop = asyncio.get_running_loop()
            killed_at = loop.time()
            await cluster.kill_server()
            await eventually(lambda: source.lost_at is not None, timeout=5)
            lost_at = source.lost_at
            assert lost_at is not None
            assert source.samples[-1].at <= lost_at <= killed_at
            assert loop.time() - killed_at >= FAST.lost_after_s  # not before the grace
            assert source.lost_reason is not None
            assert readies(source) == [1, 2]

    run(test)


def test_deleted_deployment_loses_the_source() -> None:
    """Deleting the watched Deployment marks the source lost: nothing more can be seen."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        async with started(cluster) as source:
            async with cluster.http.client.delete(CONSUMER) as response:
                assert response.status == 200
            await eventually(lambda: source.lost_at is not None)
            assert source.lost_reason == f"deployment {NS}/consumer was deleted"

    run(test)


def test_unreachable_api_at_preflight_raises_a_clear_error() -> None:
    """An API that does not answer at start() raises ClusterUnreachable naming the host."""

    async def test() -> None:
        with socket_port() as port:
            api = api_client(f"http://127.0.0.1:{port}")
        source = ClusterReplicaSource("consumer", NS, api, timing=FAST)
        with pytest.raises(ClusterUnreachable, match=rf"127\.0\.0\.1:{port} is unreachable"):
            await source.start()
        await source.stop()
        close(api)

    asyncio.run(test())


def test_missing_deployment_raises_not_found() -> None:
    """Watching a Deployment that does not exist fails pre-flight with its name."""

    async def test(cluster: Cluster) -> None:
        source = cluster.source()
        with pytest.raises(DeploymentNotFound, match=f"deployment {NS}/consumer not found"):
            await source.start()
        await source.stop()

    run(test)


@contextlib.contextmanager
def socket_port() -> Any:
    """A port on 127.0.0.1 that nothing listens on once the block ends."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# ---------------------------------------------------------------- permissions
def test_check_access_names_each_missing_required_permission() -> None:
    """SelfSubjectAccessReviews that say no give messages naming verb, resource, namespace."""

    async def test(cluster: Cluster) -> None:
        cluster.server.deny("watch", "apps", "deployments")
        cluster.server.deny("delete", "", "pods")
        cluster.server.deny("list", "autoscaling", "horizontalpodautoscalers")  # optional
        problems = await asyncio.to_thread(
            check_access, cluster.api, NS, needed_permissions(kills=True)
        )
        assert problems == [
            "forbidden: cannot watch deployments.apps in namespace nimbusguard",
            "forbidden: cannot delete pods in namespace nimbusguard",
        ]
        quiet = await asyncio.to_thread(check_access, cluster.api, NS, needed_permissions(False))
        assert quiet == ["forbidden: cannot watch deployments.apps in namespace nimbusguard"]
        await cluster.create(DEPLOYMENTS, deployment())
        source = cluster.source(kills=True)
        with pytest.raises(
            ClusterForbidden, match=r"cannot watch deployments\.apps.*cannot delete"
        ):
            await source.start()
        await source.stop()

    run(test)


def test_forbidden_list_at_preflight_names_the_verb() -> None:
    """A 403 on the first list (no access check) still says what is forbidden, and where."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        cluster.server.deny("list", "apps", "deployments")
        source = cluster.source(check_permissions=False)
        with pytest.raises(ClusterForbidden, match=r"cannot list deployments\.apps in namespace"):
            await source.start()
        await source.stop()

    run(test)


def test_required_rbac_rules_are_the_calls_the_module_makes() -> None:
    """The Role rules come from the permission table, one rule per resource."""
    assert required_rbac_rules(kills=False) == [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": ["autoscaling"],
            "resources": ["horizontalpodautoscalers"],
            "verbs": ["get", "list"],
        },
        {"apiGroups": ["keda.sh"], "resources": ["scaledobjects"], "verbs": ["get", "list"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]},
    ]
    with_kills = required_rbac_rules(kills=True)
    assert {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete"]} in with_kills
    assert len(with_kills) == 5


def test_permission_table_names_real_client_methods() -> None:
    """Every table entry's client method exists and its name agrees with the verb."""
    api = k8s.ApiClient(k8s.Configuration(host="http://127.0.0.1:1"))
    prefixes = {"get": ("read_", "get_"), "list": ("list_",), "watch": ("list_",)}
    for permission in PERMISSIONS:
        method = permission.method(api)
        assert callable(method)
        name = permission.call.split(".")[1]
        assert name.startswith(prefixes.get(permission.verb, (f"{permission.verb}_",)))
    close(api)


# ---------------------------------------------------------------- kill
def test_kill_deletes_exactly_n_ready_pods_selected_by_labels() -> None:
    """kill_pods picks Ready, non-terminating pods matching the Deployment's selector."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment(replicas=4))
        for body in (
            pod("consumer-a", "consumer"),
            pod("consumer-b", "consumer"),
            pod("consumer-c", "consumer"),
            pod("consumer-0-starting", "consumer", ready=False),
            pod("consumer-0-leaving", "consumer", terminating=True),
            pod("other-a", "other"),
        ):
            await cluster.create(PODS, body)
        async with started(cluster, kills=True) as source:
            assert await source.kill_pods(2) == ["consumer-a", "consumer-b"]
            left = sorted(
                name
                for (_, _, name), obj in cluster.server.objects.items()
                if not obj.deleted and obj.get("kind") == "Pod"
            )
            assert left == ["consumer-0-leaving", "consumer-0-starting", "consumer-c", "other-a"]
            assert cluster.server.state.list_params[-1]["labelSelector"] == "app=consumer"
            assert await source.kill_pods(5) == ["consumer-c"]
            assert await source.kill_pods(0) == []

    run(test)


def test_kill_without_delete_permission_says_so() -> None:
    """A forbidden delete raises an error naming the verb, the resource and the namespace."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        await cluster.create(PODS, pod("consumer-a", "consumer"))
        async with started(cluster, check_permissions=False) as source:
            cluster.server.deny("delete", "", "pods")
            with pytest.raises(ClusterForbidden, match="cannot delete pods in namespace"):
                await source.kill_pods(1)

    run(test)


def test_label_selector_renders_match_labels_and_expressions() -> None:
    """A LabelSelector becomes the selector string the API takes."""
    selector = {
        "matchLabels": {"tier": "worker", "app": "consumer"},
        "matchExpressions": [
            {"key": "track", "operator": "In", "values": ["stable", "canary"]},
            {"key": "legacy", "operator": "NotIn", "values": ["yes"]},
            {"key": "owner", "operator": "Exists"},
            {"key": "paused", "operator": "DoesNotExist"},
        ],
    }
    assert label_selector(selector) == (
        "app=consumer,tier=worker,track in (stable,canary),legacy notin (yes),owner,!paused"
    )
    assert label_selector(None) == ""


# ---------------------------------------------------------------- autoscalers
def test_hpa_desired_replicas_are_recorded_and_named() -> None:
    """An HPA targeting the Deployment is named, and its desiredReplicas go into the samples."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        await cluster.create(HPAS, hpa("web", "web", 7))
        await cluster.create(HPAS, hpa("consumer", "consumer", 2))
        async with started(cluster) as source:
            assert source.autoscaler == f"HorizontalPodAutoscaler {NS}/consumer"
            assert source.samples[0].autoscaler == 2
            await cluster.patch(f"{HPAS}/consumer/status", {"status": {"desiredReplicas": 4}})
            await eventually(lambda: source.samples[-1].autoscaler == 4)
            await cluster.scale(replicas=4)
            await eventually(lambda: source.samples[-1].desired == 4)
            assert [(s.desired, s.autoscaler) for s in source.samples] == [(1, 2), (1, 4), (4, 4)]

    run(test)


def test_keda_scaled_object_is_named_with_its_hpa_decision() -> None:
    """A ScaledObject is named as such; the decision comes from its generated keda-hpa-<name>."""

    async def test(cluster: Cluster) -> None:
        cluster.server.state.crds.add(("keda.sh", "scaledobjects"))
        await cluster.create(DEPLOYMENTS, deployment())
        await cluster.create(
            SCALEDOBJECTS,
            {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "metadata": {"name": "consumer", "namespace": NS},
                "spec": {"scaleTargetRef": {"name": "consumer"}, "maxReplicaCount": 10},
            },
        )
        await cluster.create(HPAS, hpa("keda-hpa-consumer", "consumer", 3))
        async with started(cluster) as source:
            assert source.autoscaler == f"ScaledObject {NS}/consumer"
            assert source.samples[0].autoscaler == 3

    run(test)


def test_missing_crd_or_forbidden_autoscalers_mean_none() -> None:
    """Without the KEDA CRD and without HPA access the autoscaler is simply unknown."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        await cluster.create(HPAS, hpa("consumer", "consumer", 2))
        cluster.server.deny("list", "autoscaling", "horizontalpodautoscalers")
        async with started(cluster) as source:  # optional permissions do not fail the check
            assert source.autoscaler is None
            assert source.samples[0].autoscaler is None

    run(test)


# ---------------------------------------------------------------- configuration
def test_kubeconfig_context_gives_host_and_namespace(tmp_path: Path) -> None:
    """Outside a cluster the kubeconfig's chosen context gives the server and the namespace."""
    path = tmp_path / "config"
    path.write_text(
        """
apiVersion: v1
kind: Config
clusters:
- name: one
  cluster: {server: "http://127.0.0.1:6443"}
- name: two
  cluster: {server: "http://127.0.0.1:7443"}
users:
- name: me
  user: {token: secret-token}
contexts:
- name: first
  context: {cluster: one, user: me, namespace: nimbusguard}
- name: second
  context: {cluster: two, user: me}
current-context: first
""",
        encoding="utf-8",
    )
    current = KubeConfig.load(str(path), environ={})
    assert current.configuration.host == "http://127.0.0.1:6443"
    assert current.namespace == "nimbusguard"
    chosen = KubeConfig.load(str(path), "second", environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    assert chosen.configuration.host == "http://127.0.0.1:7443"
    assert chosen.namespace == "default"
    from_env = KubeConfig.load(environ={"KUBECONFIG": str(path)})
    assert from_env.origin == f"kubeconfig {path}, context first"


def test_in_cluster_config_uses_the_service_account(tmp_path: Path) -> None:
    """With KUBERNETES_SERVICE_HOST set, the service account's token, CA and namespace are used."""
    (tmp_path / "token").write_text("sa-token", encoding="utf-8")
    (tmp_path / "ca.crt").write_text("not checked until a connection is made", encoding="utf-8")
    (tmp_path / "namespace").write_text("nimbusguard\n", encoding="utf-8")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = KubeConfig.load(environ=env, service_account_dir=tmp_path)
    assert config.configuration.host == "https://10.96.0.1:443"
    assert config.configuration.api_key["BearerToken"] == "bearer sa-token"
    assert config.namespace == "nimbusguard"
    (tmp_path / "namespace").unlink()
    assert KubeConfig.load(environ=env, service_account_dir=tmp_path).namespace == "default"


def test_kube_package_does_not_import_the_cluster_module() -> None:
    """validate and plan stay fast: importing the kube package loads no kubernetes client."""
    code = (
        "import sys, nimbus_scenarios.kube, nimbus_scenarios.replicas;"
        "assert 'kubernetes' not in sys.modules, 'kubernetes imported';"
        "assert 'nimbus_scenarios.kube.cluster' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)

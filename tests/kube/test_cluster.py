"""Tests for the emulated cluster (`cluster.py`: `ApiServer` with `jobs.py`'s Job controller and
`kubelet.py`'s kubelet), through the official client as `submit` will use it: Jobs whose pods
run the real runner against a loopback target, Indexed Jobs, `backoffLimit` and
`podFailurePolicy`, scripted image and scheduling failures, deletion with propagation, the
`pods/log` subresource (following too) and immutable ConfigMaps.

The cluster runs on the test's loop; every client call goes through `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from tests.kube.cluster import ClusterThread, EmulatedCluster, emulated_cluster
from tests.support.http import HttpServer
from tests.support.wait import eventually

NS = "loadtest"
SCENARIOS = "scenarios-abc123"
SCENARIO = """
scenario "tiny" {{
  request h = GET "{path}"
  phase "one" {seconds}s {{
    rate 5/s
    send h
  }}
  phase "two" {seconds}s {{
    rate 5/s
    send h
  }}
  expect errors < 1%
}}
"""


def scenario(path: str = "/h", seconds: float = 0.5) -> str:
    """Two phases at 5/s; the errors expectation fails when `path` answers errors."""
    return SCENARIO.format(path=path, seconds=seconds)


def config_map(text: str, name: str = SCENARIOS) -> dict[str, Any]:
    """The scenario file as an immutable ConfigMap."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS},
        "data": {"tiny.scn": text},
        "immutable": True,
    }


def job(
    name: str,
    url: str,
    *,
    image: str = "nimbus-scenarios:test",
    shards: int | None = None,
    backoff: int = 0,
    fail_on: list[int] | None = None,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A Job running `run /scenarios/tiny.scn --url URL`, maybe Indexed with `shards`."""
    args = ["run", "/scenarios/tiny.scn", "--url", url, "--results=/out/r.json", *extra]
    if shards is not None:
        args += ["--shards", str(shards)]
    spec: dict[str, Any] = {
        "backoffLimit": backoff,
        "template": {
            "metadata": {"labels": {"nimbus-scenarios/run-id": name}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "runner",
                        "image": image,
                        "args": args,
                        "env": [
                            {"name": "RUN_NAME", "value": name},
                            {
                                "name": "POD_NAME",
                                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                            },
                        ],
                        "volumeMounts": [
                            {"name": "scenarios", "mountPath": "/scenarios"},
                            {"name": "out", "mountPath": "/out"},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "scenarios", "configMap": {"name": SCENARIOS}},
                    {"name": "out", "emptyDir": {}},
                ],
            },
        },
    }
    if shards is not None:
        spec.update(completionMode="Indexed", completions=shards, parallelism=shards)
    if fail_on is not None:
        spec["podFailurePolicy"] = {
            "rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": fail_on}}]
        }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


class Client:
    """The official client's calls `submit` makes, off the cluster's loop."""

    def __init__(self, cluster: EmulatedCluster) -> None:
        self.core = k8s.CoreV1Api(cluster.api)
        self.batch = k8s.BatchV1Api(cluster.api)

    async def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(method, *args, **kwargs)

    async def setup(self, text: str, body: dict[str, Any]) -> None:
        await self.call(self.core.create_namespaced_config_map, NS, config_map(text))
        await self.call(self.batch.create_namespaced_job, NS, body)

    async def pods(self, selector: str) -> list[k8s.V1Pod]:
        answer = await self.call(self.core.list_namespaced_pod, NS, label_selector=selector)
        return list(answer.items)

    async def finished(self, name: str, timeout_s: float = 20.0) -> k8s.V1Job:
        """The Job once it has a Complete or Failed condition."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = await self.call(self.batch.read_namespaced_job_status, name, NS)
            if any(c.type in {"Complete", "Failed"} for c in found.status.conditions or []):
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"job {name} did not finish within {timeout_s}s")

    async def log(self, pod: str, **options: Any) -> str:
        text: str = await self.call(self.core.read_namespaced_pod_log, pod, NS, **options)
        return text


def play(test: Callable[[EmulatedCluster, Client], Awaitable[None]], root: Path) -> None:
    """Run `test` against a fresh emulated cluster on a loop of its own."""

    async def main() -> None:
        async with emulated_cluster(root) as cluster:
            await asyncio.wait_for(test(cluster, Client(cluster)), 25)

    asyncio.run(main())


def sent(log: str) -> int:
    """How many requests the runner says it sent (its `run_ended` log line)."""
    for line in log.splitlines():
        if line.startswith("{") and '"run_ended"' in line:
            return int(json.loads(line)["sent"])
    raise AssertionError(f"no run_ended line in:\n{log}")


def condition(found: k8s.V1Job) -> tuple[str, str | None]:
    final = found.status.conditions[-1]
    return final.type, final.reason


def test_job_runs_the_runner_against_the_target_and_completes(
    http_server: HttpServer, tmp_path: Path
) -> None:
    """A Job's pod runs `run` on the mounted scenario and completes; its log is the runner's
    output, streamed line by line with `follow=true` while it runs (phase two starts a second
    after phase one) and ending with the container."""

    async def test(cluster: EmulatedCluster, client: Client) -> None:
        await client.setup(scenario(seconds=1), job("one", http_server.url))
        await eventually(lambda: bool(cluster.server.state.logs))
        (pod,) = await client.pods("job-name=one")
        arrivals = await asyncio.to_thread(follow, client, pod.metadata.name)
        started = {
            json.loads(text)["phase"]: at for at, text in arrivals if '"phase_started"' in text
        }
        assert started["two"] - started["one"] >= 0.8  # streamed, not sent at the end
        found = await client.finished("one")
        assert condition(found) == ("Complete", None)
        assert (found.status.succeeded, found.status.failed) == (1, 0)
        (pod,) = await client.pods("job-name=one")
        assert pod.metadata.labels["controller-uid"] == found.metadata.uid
        assert pod.metadata.labels["nimbus-scenarios/run-id"] == "one"
        assert pod.status.phase == "Succeeded"
        terminated = pod.status.container_statuses[0].state.terminated
        assert (terminated.exit_code, terminated.reason) == (0, "Completed")
        log = await client.log(pod.metadata.name)
        assert [text for _, text in arrivals] == log.splitlines(keepends=True)
        assert "verdict PASSED (exit 0)" in log
        assert len(http_server.paths("/h")) == sent(log) > 0  # the target saw this run
        (run,) = cluster.kubelet.runs
        assert run.env["POD_NAME"] == pod.metadata.name
        assert run.env["RUN_NAME"] == "one"
        assert (run.workdir.parent / "volumes" / "out" / "r.json").is_file()
        tail = await client.log(pod.metadata.name, tail_lines=1)
        assert tail == log.splitlines(keepends=True)[-1]

    play(test, tmp_path)


def follow(client: Client, pod: str) -> list[tuple[float, str]]:
    """Follow a pod's log to its end: each line with the moment it arrived."""
    response = client.core.read_namespaced_pod_log(pod, NS, follow=True, _preload_content=False)
    arrivals = [(time.monotonic(), line.decode()) for line in response]
    response.release_conn()
    return arrivals


def test_indexed_job_runs_one_pod_per_index(http_server: HttpServer, tmp_path: Path) -> None:
    """An Indexed Job of 2 runs pods 0 and 1, each told its index, and completes both."""

    async def test(cluster: EmulatedCluster, client: Client) -> None:
        start = ("--start-at", f"{time.time() + 3:.3f}")  # both pods are running by then
        body = job("sharded", http_server.url, shards=2, extra=start)
        await client.setup(scenario(), body)
        found = await client.finished("sharded")
        assert condition(found) == ("Complete", None)
        assert (found.status.succeeded, found.status.completed_indexes) == (2, "0-1")
        pods = await client.pods("nimbus-scenarios/run-id=sharded")
        indexes = sorted(
            p.metadata.annotations["batch.kubernetes.io/job-completion-index"] for p in pods
        )
        assert indexes == ["0", "1"]
        assert sorted(r.env["JOB_COMPLETION_INDEX"] for r in cluster.kubelet.runs) == ["0", "1"]
        logs = [await client.log(pod.metadata.name) for pod in pods]
        assert len(http_server.paths("/h")) == sum(sent(log) for log in logs)
        assert all(0 < sent(log) < len(http_server.paths("/h")) for log in logs)  # shared

    play(test, tmp_path)


@pytest.mark.parametrize(
    ("fail_on", "backoff", "pods", "reason"),
    [([1, 2, 3, 4], 6, 1, "PodFailurePolicy"), (None, 2, 3, "BackoffLimitExceeded")],
)
def test_failed_verdict_is_retried_only_without_the_policy(
    http_server: HttpServer,
    tmp_path: Path,
    fail_on: list[int] | None,
    backoff: int,
    pods: int,
    reason: str,
) -> None:
    """Exit 1 with a FailJob rule on 1-4 fails the Job at once; without it, backoffLimit
    retries with new pods."""

    async def test(cluster: EmulatedCluster, client: Client) -> None:
        body = job("failing", http_server.url, backoff=backoff, fail_on=fail_on)
        await client.setup(scenario("/status/500", seconds=0.1), body)
        found = await client.finished("failing")
        assert condition(found) == ("Failed", reason)
        assert found.status.failed == pods
        assert cluster.jobs.pods_created(NS, "failing") == pods
        assert [r.returncode for r in cluster.kubelet.runs] == [1] * pods
        for pod in await client.pods("job-name=failing"):
            terminated = pod.status.container_statuses[0].state.terminated
            assert (pod.status.phase, terminated.exit_code, terminated.reason) == (
                "Failed",
                1,
                "Error",
            )

    play(test, tmp_path)


@pytest.mark.parametrize(("fail_index", "pods"), [(False, 4), (True, 2)])
def test_backoff_limit_per_index_fails_indexes_not_the_job(
    http_server: HttpServer, tmp_path: Path, fail_index: bool, pods: int
) -> None:
    """`backoffLimitPerIndex: 1`: each failing index is retried once, or not at all on a
    `FailIndex` rule; `backoffLimit` (unset) does not stop it; once every index is done the Job
    fails with reason FailedIndexes and lists them in `failedIndexes`."""

    async def test(cluster: EmulatedCluster, client: Client) -> None:
        start = ("--start-at", f"{time.time() + 1:.3f}")
        body = job("indexes", http_server.url, shards=2, extra=start)
        del body["spec"]["backoffLimit"]
        body["spec"]["backoffLimitPerIndex"] = 1
        if fail_index:
            codes = {"operator": "In", "values": [1, 2, 3, 4]}
            rule = {"action": "FailIndex", "onExitCodes": codes}
            body["spec"]["podFailurePolicy"] = {"rules": [rule]}
        await client.setup(scenario("/status/500", seconds=0.4), body)  # 2 arrivals a shard
        found = await client.finished("indexes")
        assert condition(found) == ("Failed", "FailedIndexes")
        assert found.status.failed_indexes == "0-1"
        assert found.status.failed == pods
        assert cluster.jobs.pods_created(NS, "indexes") == pods
        assert all(r.returncode for r in cluster.kubelet.runs)  # a retry starts late: 1 or 4

    play(test, tmp_path)


def test_missing_image_and_unschedulable_pod_stay_pending_with_their_reason(
    http_server: HttpServer, tmp_path: Path
) -> None:
    """`missing/` images go ErrImagePull then ImagePullBackOff; `unschedulable/` pods are never
    scheduled; neither has a log yet (400, waiting to start)."""

    async def test(cluster: EmulatedCluster, client: Client) -> None:
        await client.setup(scenario(), job("pull", http_server.url, image="missing/runner:1"))
        body = job("nowhere", http_server.url, image="unschedulable/runner:1")
        await client.call(client.batch.create_namespaced_job, NS, body)
        seen: list[str] = []

        async def waiting_reasons() -> bool:
            for pod in await client.pods("job-name=pull"):
                for status in pod.status.container_statuses or []:
                    if status.state.waiting is not None:
                        seen.append(status.state.waiting.reason)
            return "ImagePullBackOff" in seen

        deadline = time.monotonic() + 10
        while not await waiting_reasons():
            assert time.monotonic() < deadline, seen
            await asyncio.sleep(0.02)
        assert seen.index("ErrImagePull") < seen.index("ImagePullBackOff")
        (pulling,) = await client.pods("job-name=pull")
        assert pulling.status.phase == "Pending"
        with pytest.raises(ApiException) as refused:
            await client.log(pulling.metadata.name)
        assert refused.value.status == 400
        assert "is waiting to start: trying and failing to pull image" in refused.value.body
        (stuck,) = await client.pods("job-name=nowhere")
        await eventually(
            lambda: bool(
                cluster.server.store.get("", "pods", NS, stuck.metadata.name)["status"].get(
                    "conditions"
                )
            )
        )
        (stuck,) = await client.pods("job-name=nowhere")
        scheduled = stuck.status.conditions[0]
        assert (scheduled.type, scheduled.status, scheduled.reason) == (
            "PodScheduled",
            "False",
            "Unschedulable",
        )
        assert cluster.kubelet.runs == []  # nothing ran

    play(test, tmp_path)


def test_deleting_the_job_removes_its_pods_and_ends_their_processes(
    http_server: HttpServer, tmp_path: Path
) -> None:
    """Background and Foreground deletion remove the pods and end their runs; a DELETE without
    a policy orphans them, as batch/v1 does."""

    async def test(cluster: EmulatedCluster, client: Client) -> None:
        await client.call(
            client.core.create_namespaced_config_map, NS, config_map(scenario(seconds=30))
        )
        for name in ("background", "foreground", "orphaned"):
            await client.call(client.batch.create_namespaced_job, NS, job(name, http_server.url))
        await eventually(lambda: len(cluster.kubelet.runs) == 3)
        await eventually(
            lambda: all(cluster.server.state.logs.get((NS, r.pod)) for r in cluster.kubelet.runs)
        )
        for name, policy in (("background", "Background"), ("foreground", "Foreground")):
            await client.call(
                client.batch.delete_namespaced_job, name, NS, propagation_policy=policy
            )
            assert await client.pods(f"job-name={name}") == []
        await client.call(client.batch.delete_namespaced_job, "orphaned", NS)
        await eventually(lambda: sum(r.returncode is not None for r in cluster.kubelet.runs) == 2)
        ended = {r.pod.split("-")[0]: r.returncode for r in cluster.kubelet.runs}
        assert ended["orphaned"] is None  # still running: nothing deleted its pod
        (orphan,) = await client.pods("job-name=orphaned")
        assert orphan.metadata.owner_references is None
        jobs = await client.call(client.batch.list_namespaced_job, NS)
        assert jobs.items == []

    play(test, tmp_path)


def test_evicted_and_oom_killed_pods_fail_with_their_reasons(
    http_server: HttpServer, tmp_path: Path
) -> None:
    """`evict` fails the pod with reason Evicted; `oom_kill` ends its container with 137
    OOMKilled; with backoffLimit 0 each fails its Job."""

    async def test(cluster: EmulatedCluster, client: Client) -> None:
        await client.call(
            client.core.create_namespaced_config_map, NS, config_map(scenario(seconds=30))
        )
        for name in ("evicted", "oom"):
            await client.call(client.batch.create_namespaced_job, NS, job(name, http_server.url))
        await eventually(lambda: len(cluster.server.state.logs) == 2)
        runs = {r.pod.split("-")[0]: r for r in cluster.kubelet.runs}
        cluster.kubelet.evict(NS, runs["evicted"].pod)
        cluster.kubelet.oom_kill(NS, runs["oom"].pod)
        for name in ("evicted", "oom"):
            assert condition(await client.finished(name)) == ("Failed", "BackoffLimitExceeded")
        (evicted,) = await client.pods("job-name=evicted")
        assert (evicted.status.phase, evicted.status.reason) == ("Failed", "Evicted")
        (oom,) = await client.pods("job-name=oom")
        terminated = oom.status.container_statuses[0].state.terminated
        assert (oom.status.phase, terminated.exit_code, terminated.reason) == (
            "Failed",
            137,
            "OOMKilled",
        )

    play(test, tmp_path)


def test_config_maps_are_immutable_and_created_once(tmp_path: Path) -> None:
    """A second create is 409 AlreadyExists; changing an immutable ConfigMap's data is 422."""

    async def test(cluster: EmulatedCluster, client: Client) -> None:
        await client.call(client.core.create_namespaced_config_map, NS, config_map("a"))
        with pytest.raises(ApiException) as again:
            await client.call(client.core.create_namespaced_config_map, NS, config_map("b"))
        assert (again.value.status, json.loads(again.value.body)["reason"]) == (
            409,
            "AlreadyExists",
        )
        changed = config_map("c")
        for method in (
            client.core.patch_namespaced_config_map,
            client.core.replace_namespaced_config_map,
        ):
            with pytest.raises(ApiException) as refused:
                await client.call(method, SCENARIOS, NS, changed)
            assert refused.value.status == 422
        stored = await client.call(client.core.read_namespaced_config_map, SCENARIOS, NS)
        assert stored.data == {"tiny.scn": "a"}

    play(test, tmp_path)


def test_active_deadline_fails_the_job_and_ends_its_pod(
    http_server: HttpServer, tmp_path: Path
) -> None:
    """activeDeadlineSeconds passing first fails the Job (DeadlineExceeded) and deletes its pod."""

    async def test(cluster: EmulatedCluster, client: Client) -> None:
        body = job("late", http_server.url)
        body["spec"]["activeDeadlineSeconds"] = 1
        await client.setup(scenario(seconds=30), body)
        assert condition(await client.finished("late")) == ("Failed", "DeadlineExceeded")
        assert await client.pods("job-name=late") == []
        await eventually(lambda: cluster.kubelet.runs[0].returncode is not None)

    play(test, tmp_path)


def test_threaded_cluster_serves_a_kubeconfig_client(
    kube_cluster: ClusterThread, tmp_path: Path
) -> None:
    """The `kube_cluster` fixture runs on its own thread: blocking client code (as `submit`)
    reaches it through a kubeconfig, and denials reach its access reviews."""
    from nimbus_scenarios.kube.api import KubeConfig

    config = KubeConfig.load(str(kube_cluster.kubeconfig(tmp_path, NS)), environ={})
    assert config.namespace == NS
    api = k8s.ApiClient(config.configuration)
    core = k8s.CoreV1Api(api)
    core.create_namespaced_config_map(NS, config_map("a"))
    kube_cluster.deny("get", "", "pods/log")
    review = k8s.V1SelfSubjectAccessReview(
        spec=k8s.V1SelfSubjectAccessReviewSpec(
            resource_attributes=k8s.V1ResourceAttributes(
                verb="get", resource="pods", subresource="log", namespace=NS
            )
        )
    )
    answer = k8s.AuthorizationV1Api(api).create_self_subject_access_review(review)
    assert answer.status.allowed is False
    api.close()
    assert [c["metadata"]["name"] for c in kube_cluster.objects("", "configmaps")] == [SCENARIOS]
    assert kube_cluster.creates("configmaps") == 1

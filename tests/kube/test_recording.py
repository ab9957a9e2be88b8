"""Tests for `kube.recording` through `ClusterReplicaSource` (its `ScalingRecorder` half): the
autoscaler's status recorded when it changes (an HPA's metrics against their targets and its
conditions; a KEDA ScaledObject's conditions and trigger activity), each pod's record from the
pod watch (creation, scheduling, start, Ready, restarts, terminations, deletion), a pod watch
that drops and resumes without losing a transition, and the pods' permissions at pre-flight.

Against the emulated API server of `apiserver.py`, with HPA, ScaledObject and pod status
written by the test as their controllers and the kubelet would.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from nimbus_scenarios.errors import ClusterForbidden
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.kube.replicas import ClusterReplicaSource
from nimbus_scenarios.scaling import Condition, MetricStatus, ScalingRecorder, TargetKind
from tests.kube.support import (
    DEPLOYMENTS,
    FAST,
    HPAS,
    NS,
    PODS,
    SCALEDOBJECTS,
    Cluster,
    deployment,
    hpa,
    hpa_with_metrics,
    pod,
    pod_status,
    run,
    started,
)
from tests.support.wait import eventually

EXTERNAL = MetricStatus("s0-prometheus", TargetKind.AVERAGE_VALUE, 5.0, 7.2)
CPU = MetricStatus("cpu", TargetKind.UTILIZATION, 60.0, 45.0)


def test_hpa_status_is_sampled_when_it_changes() -> None:
    """Desired and current replicas, each metric against its target, and the three conditions;
    a new sample only when something changed."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        await cluster.create(HPAS, hpa_with_metrics("consumer", "consumer", 2, 1))
        async with started(cluster) as source:
            assert isinstance(source, ScalingRecorder)
            (first,) = source.autoscaler_samples
            assert (first.desired, first.current) == (2, 1)
            assert first.metrics == (EXTERNAL, CPU)
            assert first.metrics[0].above
            assert not first.metrics[1].above
            assert first.conditions == (
                Condition("AbleToScale", "True", "SucceededRescale"),
                Condition("ScalingActive", "True", "ValidMetricFound"),
                Condition("ScalingLimited", "False", "DesiredWithinRange"),
            )
            await asyncio.sleep(FAST.autoscaler_interval_s * 4)  # unchanged: no new sample
            assert len(source.autoscaler_samples) == 1
            limited = {"type": "ScalingLimited", "status": "True", "reason": "TooManyReplicas"}
            status = hpa_with_metrics("consumer", "consumer", 10, 2)["status"]
            status["currentMetrics"][1]["external"]["current"] = {"averageValue": "11"}
            status["conditions"][2] = limited
            await cluster.patch(f"{HPAS}/consumer/status", {"status": status})
            await eventually(lambda: len(source.autoscaler_samples) == 2)
            second = source.autoscaler_samples[1]
            assert (second.desired, second.current) == (10, 2)
            assert second.metrics[0].current == 11.0
            assert second.conditions[2] == Condition("ScalingLimited", "True", "TooManyReplicas")
            assert first.at < second.at
            assert source.samples[-1].autoscaler == 10  # the replica samples still see it

    run(test)


def test_scaled_object_adds_its_conditions_and_trigger_activity() -> None:
    """A ScaledObject's Ready/Active/Fallback follow its HPA's conditions; with one external
    metric, that metric's activity is the Active condition."""

    def scaled(active: str) -> dict[str, object]:
        return {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "consumer", "namespace": NS},
            "spec": {"scaleTargetRef": {"name": "consumer"}},
            "status": {
                "hpaName": "keda-hpa-consumer",
                "externalMetricNames": ["s0-prometheus"],
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "ScaledObjectReady"},
                    {"type": "Active", "status": active, "reason": "ScalerActive"},
                    {"type": "Fallback", "status": "False", "reason": "NoFallbackFound"},
                ],
            },
        }

    async def test(cluster: Cluster) -> None:
        cluster.server.state.crds.add(("keda.sh", "scaledobjects"))
        await cluster.create(DEPLOYMENTS, deployment())
        await cluster.create(SCALEDOBJECTS, scaled("True"))
        await cluster.create(HPAS, hpa_with_metrics("keda-hpa-consumer", "consumer", 3, 1))
        async with started(cluster) as source:
            (first,) = source.autoscaler_samples
            assert first.desired == 3
            assert [c.type for c in first.conditions] == [
                "AbleToScale",
                "ScalingActive",
                "ScalingLimited",
                "Ready",
                "Active",
                "Fallback",
            ]
            assert first.metrics[0].active is True
            assert first.metrics[1].active is None  # cpu is no KEDA trigger
            await cluster.patch(f"{SCALEDOBJECTS}/consumer/status", scaled("False"))
            await eventually(lambda: len(source.autoscaler_samples) == 2)
            assert source.autoscaler_samples[1].metrics[0].active is False

    run(test)


def test_no_autoscaler_records_no_samples() -> None:
    """Without an HPA or ScaledObject there is nothing to sample."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        await cluster.create(HPAS, hpa("web", "web", 7))
        async with started(cluster) as source:
            await asyncio.sleep(FAST.autoscaler_interval_s * 2)
            assert source.autoscaler_samples == []

    run(test)


def test_pod_records_follow_the_selector_with_api_times() -> None:
    """Each selected pod's moments come from the API's times, on the run's clock; restarts,
    OOMKilled and deletion are recorded; a pod of another app is not."""

    async def test(cluster: Cluster) -> None:
        t0 = float(int(time.time()) - 30)  # the pods' story began half a minute ago
        await cluster.create(DEPLOYMENTS, deployment(replicas=2))
        old = pod("consumer-a", "consumer")
        old["metadata"]["creationTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0))
        old["status"] = pod_status(t0, scheduled=1, started=3, ready=5)
        await cluster.create(PODS, old)
        await cluster.create(PODS, pod("other-a", "other"))
        async with started(cluster) as source:
            await eventually(lambda: len(source.pods) == 1)
            (record,) = source.pods
            assert source.pods_watched
            assert source.scaling_notes == ()
            loop = asyncio.get_running_loop()
            expected = loop.time() - (time.time() - t0)
            assert record.created == pytest.approx(expected, abs=0.2)
            assert record.created is not None
            assert record.scheduled is not None
            assert record.started is not None
            assert record.scheduled - record.created == pytest.approx(1.0)
            assert record.started - record.created == pytest.approx(3.0)
            assert record.startup_s == pytest.approx(5.0)
            assert (record.restarts, record.terminations, record.deleted) == (0, (), None)
            oom = pod_status(
                t0, scheduled=1, started=20, ready=22, restarts=1, terminated="OOMKilled"
            )
            await cluster.patch(f"{PODS}/consumer-a/status", {"status": oom})
            await eventually(lambda: source.pods[0].restarts == 1)
            assert source.pods[0].terminations == ("OOMKilled",)
            assert source.pods[0].startup_s == pytest.approx(5.0)  # the first Ready is kept
            await cluster.create(PODS, pod("consumer-b", "consumer", ready=False))
            await eventually(lambda: len(source.pods) == 2)
            before = loop.time()
            async with cluster.http.client.delete(f"{PODS}/consumer-a") as response:
                assert response.status < 300
            await eventually(lambda: source.pods[0].deleted is not None)
            deleted = source.pods[0].deleted
            assert deleted is not None
            assert deleted >= before - 1.0
            assert [p.name for p in source.pods] == ["consumer-a", "consumer-b"]
            assert source.pods[1].ready is None

    run(test, watch_pods=True)


@pytest.mark.parametrize("abrupt", [True, False], ids=["cut", "closed"])
def test_dropped_pod_watch_resumes_without_losing_a_transition(abrupt: bool) -> None:
    """A pod that became Ready and unready again while the watch was away keeps its Ready: the
    watch resumes from the last resourceVersion and the server replays both changes (a relist
    would only show it unready)."""

    async def test(cluster: Cluster) -> None:
        t0 = float(int(time.time()) - 60)
        await cluster.create(DEPLOYMENTS, deployment(replicas=1))
        starting = pod("consumer-a", "consumer", ready=False)
        starting["status"] = pod_status(t0, scheduled=1)
        await cluster.create(PODS, starting)
        async with started(cluster) as source:
            await eventually(lambda: len(source.pods) == 1 and cluster.server.open_watches == 2)
            lists = len(cluster.server.state.list_params)
            watches = len(cluster.server.state.watch_params)
            cluster.server.watch_gate.clear()
            assert cluster.server.drop_watches(abrupt=abrupt) == 2  # the Deployment's and the pods'
            await eventually(lambda: len(cluster.server.state.watch_params) >= watches + 2)
            ready = pod_status(t0, scheduled=1, started=3, ready=7)
            await cluster.patch(f"{PODS}/consumer-a/status", {"status": ready})
            unready = pod_status(t0, scheduled=1, started=3)
            await cluster.patch(f"{PODS}/consumer-a/status", {"status": unready})
            cluster.server.watch_gate.set()
            await eventually(lambda: source.pods[0].ready is not None)
            record = source.pods[0]
            assert record.ready is not None
            assert record.scheduled is not None
            assert record.ready - record.scheduled == pytest.approx(6.0)
            resumed = [
                p for p in cluster.server.state.watch_params[watches:] if "labelSelector" in p
            ]
            assert resumed
            assert resumed[0]["resourceVersion"] not in ("", "0")
            assert len(cluster.server.state.list_params) == lists  # resumed, not relisted

    run(test, watch_pods=True)


def test_missing_watch_pods_is_a_note_unless_pods_are_required() -> None:
    """Without watch on pods the run goes on with no pod records and a note; a scenario that
    judges pods stops at pre-flight with the infrastructure exit code."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        await cluster.create(PODS, pod("consumer-a", "consumer"))
        async with started(cluster) as source:  # `serve` denies watch on pods
            assert source.pods_watched is False
            (note,) = source.scaling_notes
            assert "breakdown" in note
            assert "cannot watch pods in namespace nimbusguard" in note
            await asyncio.sleep(0.3)
            assert source.pods == []
            assert not any("labelSelector" in p for p in cluster.server.state.watch_params)
        strict = cluster.source(pods_required=True)
        with pytest.raises(ClusterForbidden, match="cannot watch pods in namespace") as caught:
            await strict.start()
        await strict.stop()
        assert caught.value.exit_code == ExitCode.INFRASTRUCTURE

    run(test)


def test_pods_forbidden_during_the_run_stop_the_pod_watch_with_a_note() -> None:
    """Unchecked at pre-flight, a pod watch and a pod list both forbidden end in a note."""

    async def test(cluster: Cluster) -> None:
        await cluster.create(DEPLOYMENTS, deployment())
        cluster.server.deny("list", "", "pods")
        source: ClusterReplicaSource = cluster.source(check_permissions=False)
        await source.start()
        try:
            await eventually(lambda: source.scaling_notes != ())
            assert source.pods_watched is False
            assert "forbidden to list or watch pods" in source.scaling_notes[0]
            assert source.lost_at is None  # the replica counts go on
        finally:
            await source.stop()

    run(test)

"""Tests for `kube.scaling`: finding the HPA or KEDA ScaledObject that targets the Deployment and
reading its decision, and killing Ready pods picked by the Deployment's selector.

Through ClusterReplicaSource and the official client, against the emulated API server of
`apiserver.py`.
"""

from __future__ import annotations

import pytest

from nimbus_scenarios.errors import ClusterForbidden
from nimbus_scenarios.kube.scaling import label_selector
from tests.kube.support import (
    DEPLOYMENTS,
    HPAS,
    NS,
    PODS,
    SCALEDOBJECTS,
    Cluster,
    deployment,
    hpa,
    pod,
    run,
    started,
)
from tests.support.wait import eventually


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

"""Tests for `kube.watch`: the watcher thread behind ClusterReplicaSource follows every change,
resumes a dropped stream, relists after 410 Gone and polls when watch is forbidden.

Through the source and the official client, against the emulated API server of `apiserver.py`.
"""

from __future__ import annotations

import pytest

from nimbus_scenarios.kube.watch import DeploymentCounts, deployment_counts
from tests.kube.support import (
    CONSUMER,
    DEPLOYMENTS,
    NS,
    Cluster,
    counts,
    deployment,
    readies,
    run,
    started,
)
from tests.support.wait import eventually


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


def test_deployment_counts_read_missing_fields_as_the_api_defaults_them() -> None:
    """A Deployment without spec.replicas wants 1 (the API's default); missing status counts 0."""
    assert deployment_counts({"spec": {}, "status": {}}) == DeploymentCounts(0, 1, 0)
    full = {"spec": {"replicas": 3}, "status": {"replicas": 2, "readyReplicas": 1}}
    assert deployment_counts(full) == DeploymentCounts(ready=1, desired=3, current=2)

"""Tests for `kube.replicas`: ClusterReplicaSource's pre-flight errors and how it loses the
Deployment (the API dying, the Deployment deleted).

Through the official client, against the emulated API server of `apiserver.py`.
"""

from __future__ import annotations

import asyncio

import pytest

from nimbus_scenarios.errors import ClusterForbidden, ClusterUnreachable, DeploymentNotFound
from nimbus_scenarios.kube.replicas import ClusterReplicaSource
from tests.kube.apiserver import api_client, close
from tests.kube.support import (
    CONSUMER,
    DEPLOYMENTS,
    FAST,
    NS,
    Cluster,
    deployment,
    readies,
    run,
    socket_port,
    started,
)
from tests.support.wait import eventually


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
            await eventually(lambda: source.lost_at is not None, timeout_s=5)
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

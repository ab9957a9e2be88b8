"""Tests for `kube.start`: the common start read from a ConfigMap through the official client,
against the emulated API server of `apiserver.py`."""

from __future__ import annotations

import pytest

from nimbus_scenarios.errors import ClusterForbidden
from nimbus_scenarios.kube.api import GET_CONFIGMAP, needed_permissions, required_rbac_rules
from nimbus_scenarios.kube.start import ConfigMapStart
from tests.kube.support import NS, Cluster, run

CONFIGMAPS = f"/api/v1/namespaces/{NS}/configmaps"


def config_map(name: str, data: dict[str, str]) -> dict[str, object]:
    """A ConfigMap as `submit` writes it."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS},
        "data": data,
    }


def test_the_start_is_none_until_the_config_map_holds_it() -> None:
    """Missing ConfigMap, then one without the key: None; then the value as written."""

    async def test(cluster: Cluster) -> None:
        source = ConfigMapStart(cluster.api, NS, "run-1")
        assert source.description == f"configmap {NS}/run-1"
        assert await source.read() is None
        await cluster.create(CONFIGMAPS, config_map("run-1", {"other": "x"}))
        assert await source.read() is None
        await cluster.create(CONFIGMAPS, config_map("run-2", {"start-at": "1767225600.5"}))
        assert await ConfigMapStart(cluster.api, NS, "run-2").read() == "1767225600.5"

    run(test)


def test_a_forbidden_get_configmaps_is_named() -> None:
    """Without `get configmaps` the first read says so (a SelfSubjectAccessReview)."""

    async def test(cluster: Cluster) -> None:
        cluster.server.deny("get", "", "configmaps")
        with pytest.raises(ClusterForbidden, match="cannot get configmaps in namespace"):
            await ConfigMapStart(cluster.api, NS, "run-1").read()

    run(test)


def test_get_configmaps_is_needed_only_with_start_at_from() -> None:
    """The permission table asks for `get configmaps` only for runs that read their start."""
    assert GET_CONFIGMAP not in needed_permissions(kills=True)
    assert GET_CONFIGMAP in needed_permissions(kills=False, start_from=True)
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}
    assert rule not in required_rbac_rules(kills=True)
    assert rule in required_rbac_rules(kills=False, start_from=True)

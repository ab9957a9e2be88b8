"""Tests for `kube.api`: configuration loading, the permission table (calls, the
SelfSubjectAccessReview pre-flight, RBAC rules), and the package staying free of `kubernetes`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client as k8s

from nimbus_scenarios.errors import ClusterForbidden
from nimbus_scenarios.kube.access import check_access, forbidden_at_preflight
from nimbus_scenarios.kube.api import (
    PERMISSIONS,
    RUN_SERVICE_ACCOUNT,
    KubeConfig,
    needed_permissions,
    required_rbac_rules,
)
from tests.kube.apiserver import close
from tests.kube.support import DEPLOYMENTS, NS, Cluster, deployment, run


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


def test_required_rbac_rules_are_the_calls_the_module_makes() -> None:
    """The Role rules come from the permission table, one rule per resource."""
    assert required_rbac_rules(kills=False) == [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
        {
            "apiGroups": ["autoscaling"],
            "resources": ["horizontalpodautoscalers"],
            "verbs": ["get", "list"],
        },
        {"apiGroups": ["keda.sh"], "resources": ["scaledobjects"], "verbs": ["get", "list"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]},
    ]
    with_kills = required_rbac_rules(kills=True)
    pods = {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch", "delete"]}
    assert pods in with_kills
    assert len(with_kills) == 5


def test_pod_permissions_are_required_only_when_the_scenario_judges_pods() -> None:
    """list and watch on pods are optional (a note) unless pods are required; the kill's list of
    pods stays required whenever pods are killed."""
    optional = {(p.verb, p.resource): p.required for p in needed_permissions(kills=False)}
    assert optional[("list", "pods")] is False
    assert optional[("watch", "pods")] is False
    required = needed_permissions(kills=False, pods_required=True)
    assert {(p.verb, p.resource) for p in required if p.for_pods and p.required} == {
        ("list", "pods"),
        ("watch", "pods"),
    }
    killing = [p for p in needed_permissions(kills=True) if p.resource == "pods" and p.required]
    assert {p.verb for p in killing} == {"list", "delete"}


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


def test_kubeconfig_variable_wins_over_in_cluster_config(tmp_path: Path) -> None:
    """In a pod, `$KUBECONFIG` is honoured as kubectl and the official clients do; an empty one
    still means the service account."""
    path = tmp_path / "config"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:6443'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u, namespace: shards}}]\n"
        "current-context: x\n",
        encoding="utf-8",
    )
    (tmp_path / "token").write_text("sa-token", encoding="utf-8")
    (tmp_path / "ca.crt").write_text("not read until a connection is made", encoding="utf-8")
    pod = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = KubeConfig.load(environ={**pod, "KUBECONFIG": str(path)}, service_account_dir=tmp_path)
    assert config.configuration.host == "http://127.0.0.1:6443"
    assert config.namespace == "shards"
    assert config.service_account is None
    empty = KubeConfig.load(environ={**pod, "KUBECONFIG": ""}, service_account_dir=tmp_path)
    assert empty.configuration.host == "https://10.96.0.1:443"


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


def token_for(subject: str) -> str:
    """An unsigned JWT whose `sub` claim is `subject` (the runner never verifies it)."""

    def part(data: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'sub': subject})}.signature"


def test_in_cluster_config_names_the_service_account_from_its_token(tmp_path: Path) -> None:
    """The token's `sub` names the ServiceAccount; a token that does not say leaves it unknown."""
    (tmp_path / "ca.crt").write_text("not checked", encoding="utf-8")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    (tmp_path / "token").write_text(token_for("system:serviceaccount:nimbusguard:default"))
    config = KubeConfig.load(environ=env, service_account_dir=tmp_path)
    assert config.service_account == ("nimbusguard", "default")
    assert config.origin == "in-cluster service account nimbusguard/default"
    for token in ("sa-token", token_for("alice@example.com"), "a.!!!.c"):
        (tmp_path / "token").write_text(token, encoding="utf-8")
        assert KubeConfig.load(environ=env, service_account_dir=tmp_path).service_account is None


def test_preflight_under_the_default_service_account_says_how_to_fix_it() -> None:
    """A run as `default` that may not watch the Deployment: exit 4 naming what is missing, who
    the run is, and the fix (the nimbus-scenarios ServiceAccount, the component, --from=cronjob)."""

    async def test(cluster: Cluster) -> None:
        cluster.server.deny("watch", "apps", "deployments")
        cluster.server.deny("list", "apps", "deployments")
        await cluster.create(DEPLOYMENTS, deployment())
        source = cluster.source(service_account=(NS, "default"))
        with pytest.raises(ClusterForbidden) as caught:
            await source.start()
        await source.stop()
        message = str(caught.value)
        assert caught.value.exit_code == 4
        assert "cannot list deployments.apps in namespace nimbusguard" in message
        assert "cannot watch deployments.apps in namespace nimbusguard" in message
        assert "ServiceAccount nimbusguard/default" in message
        assert f"`{RUN_SERVICE_ACCOUNT}` ServiceAccount" in message
        assert "apply the load-generator component" in message
        assert f"--from=cronjob/load-test-<scenario> -n {NS}" in message
        assert "nimbus-scenarios submit" in message

    run(test)


def test_preflight_fix_depends_on_who_the_run_is() -> None:
    """As nimbus-scenarios: apply the component's Role; unknown (a kubeconfig user): grant or run
    in the cluster; every message keeps each missing permission."""
    problems = ["forbidden: cannot get deployments.apps in namespace load"]
    own = str(forbidden_at_preflight(problems, "load", ("load", RUN_SERVICE_ACCOUNT)))
    assert own.startswith(problems[0])
    assert "lacks them: apply the load-generator component in namespace load" in own
    assert "--from=cronjob" not in own
    user = str(forbidden_at_preflight(problems, "load", None))
    assert user.startswith(problems[0])
    assert "grant them to your identity" in user
    assert "--from=cronjob/load-test-<scenario> -n load" in user
    other = str(forbidden_at_preflight(problems, "load", ("load", "ci-runner")))
    assert "ServiceAccount load/ci-runner;" in other
    assert "raw `kubectl create job`" not in other


def test_kube_package_does_not_import_kubernetes() -> None:
    """validate and plan stay fast: importing the kube package loads no kubernetes client."""
    code = (
        "import sys, nimbus_scenarios.kube, nimbus_scenarios.replicas, nimbus_scenarios.errors;"
        "assert 'kubernetes' not in sys.modules, 'kubernetes imported';"
        "loaded = [m for m in sys.modules if m.startswith('nimbus_scenarios.kube.')];"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)

"""`kube.runs`: submit's permission table, which verbs each kind of submit reviews, and the Role
rules it turns into (pods/log as its own resource)."""

from __future__ import annotations

from kubernetes import client as k8s

from nimbus_scenarios.kube.api import rbac_rules
from nimbus_scenarios.kube.runs import SUBMIT_PERMISSIONS, submit_permissions
from tests.kube.apiserver import close


def names(permissions: tuple[object, ...]) -> set[str]:
    return {f"{p.verb} {p.qualified}" for p in permissions}  # type: ignore[attr-defined]


def test_each_submit_reviews_only_the_calls_it_makes() -> None:
    """One pod writes no start; attaching creates nothing; all are in the one table."""
    everything = names(SUBMIT_PERMISSIONS)
    assert names(submit_permissions(sharded=True)) == everything
    assert names(submit_permissions(sharded=False)) == everything - {"patch configmaps"}
    assert names(submit_permissions(sharded=True, attach=True)) == everything - {
        "create configmaps",
        "create jobs.batch",
    }
    assert names(submit_permissions(sharded=False, attach=True)) == {
        "list jobs.batch",
        "delete jobs.batch",
        "list pods",
        "get pods/log",
    }


def test_the_submitters_role_rules_come_from_the_table() -> None:
    """pods/log is a rule of its own, as RBAC names it."""
    assert rbac_rules(SUBMIT_PERMISSIONS) == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "patch"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "list", "delete"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]


def test_submit_table_names_real_client_methods() -> None:
    """Every entry's client method exists."""
    api = k8s.ApiClient(k8s.Configuration(host="http://127.0.0.1:1"))
    for permission in SUBMIT_PERMISSIONS:
        assert callable(permission.method(api))
    close(api)

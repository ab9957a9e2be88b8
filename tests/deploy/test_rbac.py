"""RBAC: the Roles grant exactly the API calls the runner makes, pod kill only when opted in; the
submitter Role grants what `submit` does."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from nimbus_scenarios.kube.api import required_rbac_rules
from tests.deploy.support import (
    CHAOS,
    COMPONENT,
    SERVICE_ACCOUNT,
    SUBMITTER,
    Manifest,
    load_documents,
)

Triple = tuple[str, str, str]  # (apiGroup, resource, verb)

# What Kubernetes' default ClusterRole `system:basic-user` grants every authenticated user (RBAC
# bootstrap policy); cluster-scoped, so no namespaced Role can grant it anyway.
BASIC_USER: frozenset[Triple] = frozenset(
    {
        ("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
        ("authorization.k8s.io", "selfsubjectrulesreviews", "create"),
    }
)
READ_VERBS = {"get", "list", "watch"}


def triples(rules: Iterable[dict[str, Any]]) -> set[Triple]:
    """RBAC rules as the set of single permissions they grant."""
    found: set[Triple] = set()
    for rule in rules:
        assert not rule.get("resourceNames"), "resourceNames are not expected"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    found.add((group, resource, verb))
    return found


def role(path: str, name: str) -> tuple[Manifest, Manifest]:
    """The Role `name` in a manifest file and the RoleBinding of the same name."""
    directory = {"base": COMPONENT, "chaos": CHAOS}[path]
    objects = load_documents(directory / "rbac.yaml")
    (found,) = [o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == name]
    (binding,) = [
        o for o in objects if o["kind"] == "RoleBinding" and o["metadata"]["name"] == name
    ]
    return found, binding


def required(kills: bool) -> set[Triple]:
    """What `required_rbac_rules(kills, start_from=True)`, the runner's permission table, asks a
    Role to grant: every pod of `submit --shards N` reads its common start from a ConfigMap."""
    return triples(required_rbac_rules(kills=kills, start_from=True))


def test_base_role_matches_required_rbac_rules() -> None:
    """The base Role grants exactly required_rbac_rules(kills=False, start_from=True), so a
    sharded `submit` works; SSAR comes from basic-user."""
    needed = required(kills=False)
    assert ("", "configmaps", "get") in needed
    granted = triples(role("base", "nimbus-scenarios")[0]["rules"])
    namespaced = needed - BASIC_USER
    assert granted == namespaced, (
        f"missing: {sorted(namespaced - granted)}; extra: {sorted(granted - namespaced)}"
    )


def test_chaos_role_adds_exactly_the_kill_permissions() -> None:
    """The opt-in chaos Role grants required(kills=True) minus required(kills=False), no more."""
    extra = required(kills=True) - required(kills=False)
    assert extra, "killing pods should need permissions of its own"
    granted = triples(role("chaos", "nimbus-scenarios-chaos")[0]["rules"])
    assert granted == extra, f"missing: {sorted(extra - granted)}; extra: {sorted(granted - extra)}"


def test_roles_are_read_only_except_pod_delete() -> None:
    """No wildcards, no secrets; the base Role only reads, the chaos Role only touches pods."""
    base = triples(role("base", "nimbus-scenarios")[0]["rules"])
    chaos = triples(role("chaos", "nimbus-scenarios-chaos")[0]["rules"])
    for group, resource, verb in base | chaos:
        assert "*" not in (group, resource, verb)
        assert resource != "secrets"
    assert {verb for _, _, verb in base} <= READ_VERBS
    assert {(group, resource) for group, resource, _ in chaos} == {("", "pods")}


@pytest.mark.parametrize(
    ("path", "name"), [("base", "nimbus-scenarios"), ("chaos", "nimbus-scenarios-chaos")]
)
def test_bindings_bind_the_jobs_service_account(path: str, name: str) -> None:
    """Each RoleBinding binds its own Role to the nimbus-scenarios ServiceAccount only."""
    found, binding = role(path, name)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": found["metadata"]["name"],
    }
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [
        ("ServiceAccount", SERVICE_ACCOUNT)
    ]


# What `nimbus-scenarios submit` does in the namespace (issue 13): upload the scenario ConfigMap
# (create; get when it exists), create the Job and delete it on Ctrl-C, find and follow it (get,
# list, watch), follow its pods and read their logs; and `kubectl create job --from=cronjob/...`
# reads the CronJob.
SUBMIT: frozenset[Triple] = frozenset(
    {
        ("", "configmaps", "create"),
        ("", "configmaps", "get"),
        ("batch", "jobs", "create"),
        ("batch", "jobs", "get"),
        ("batch", "jobs", "list"),
        ("batch", "jobs", "watch"),
        ("batch", "jobs", "delete"),
        ("batch", "cronjobs", "get"),
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "pods/log", "get"),
    }
)


def test_submitter_role_grants_what_submit_does_and_ships_no_binding() -> None:
    """The opt-in submitter Role: exactly submit's verbs, no pod delete or exec, no binding."""
    objects = load_documents(SUBMITTER / "rbac.yaml")
    (found,) = objects
    assert (found["kind"], found["metadata"]["name"]) == ("Role", "nimbus-scenarios-submitter")
    granted = triples(found["rules"])
    assert granted == SUBMIT, (
        f"missing: {sorted(SUBMIT - granted)}; extra: {sorted(granted - SUBMIT)}"
    )
    assert not {t for t in granted if t[1] in ("secrets", "pods/exec") or t[2] == "*"}

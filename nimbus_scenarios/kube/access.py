"""The access pre-flight of the `kube` layer: before a run (or `submit`, or a start read from a
ConfigMap) makes its calls, ask the API server with SelfSubjectAccessReviews whether each entry
of a permission table (`kube.api.PERMISSIONS`, `kube.runs`' own) is granted.

`review_access` sorts what is missing into the required permissions (the run cannot go on) and
the optional ones (the results lose something: the autoscaler's status, the pods' breakdown);
`check_access` keeps only the required ones, as messages, and `forbidden_at_preflight` turns them
into the pre-flight's error with how to fix it.

Blocking (the official client is synchronous): call these through `asyncio.to_thread` from async
code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from nimbus_scenarios.errors import ClusterForbidden
from nimbus_scenarios.kube.api import (
    RUN_SERVICE_ACCOUNT,
    TRANSPORT_ERRORS,
    UNAUTHORIZED,
    Permission,
    unreachable,
)

__all__ = [
    "AccessReview",
    "check_access",
    "forbidden_at_preflight",
    "preflight",
    "review_access",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AccessReview:
    """The permissions the API server said are not granted, required ones apart."""

    missing_required: tuple[Permission, ...] = ()
    missing_optional: tuple[Permission, ...] = ()

    def problems(self, namespace: str) -> list[str]:
        """One message per missing required permission."""
        return [p.forbidden(namespace) for p in self.missing_required]


def forbidden_at_preflight(
    problems: Sequence[str], namespace: str, service_account: tuple[str, str] | None = None
) -> ClusterForbidden:
    """The pre-flight's error for missing permissions: each one, then how to fix it.

    A Job made by a raw `kubectl create job` runs as the namespace's `default` ServiceAccount,
    which has none of them: the fix is to run as `nimbus-scenarios`, not to grant `default`.
    """
    fix_run = (
        f"run as the `{RUN_SERVICE_ACCOUNT}` ServiceAccount: apply the load-generator component "
        "(kubectl apply -k manifests/examples/overlay, or components/load-generator in your "
        "overlay), then start the run with `kubectl create job NAME "
        f"--from=cronjob/load-test-<scenario> -n {namespace}` or `nimbus-scenarios submit`, "
        "which set it (docs/cluster.md)"
    )
    if service_account is None:
        fix = (
            f"grant them to your identity (the component's Role `{RUN_SERVICE_ACCOUNT}` lists "
            f"them), or {fix_run}"
        )
    elif service_account[1] == RUN_SERVICE_ACCOUNT:
        fix = (
            f"the `{RUN_SERVICE_ACCOUNT}` ServiceAccount of namespace {service_account[0]} lacks "
            f"them: apply the load-generator component in namespace {namespace}, whose Role "
            "grants them (docs/cluster.md, Permissions)"
        )
    else:
        how = (
            " (what a raw `kubectl create job` gives a Job)"
            if service_account[1] == "default"
            else ""
        )
        fix = (
            f"this run is ServiceAccount {service_account[0]}/{service_account[1]}{how}; " + fix_run
        )
    return ClusterForbidden(f"{'; '.join(problems)}. To fix: {fix}")


def review_access(api: k8s.ApiClient, namespace: str, needs: Iterable[Permission]) -> AccessReview:
    """Which permissions of `needs` are not granted, required and optional apart.

    Asks with SelfSubjectAccessReviews (authorization.k8s.io/v1), once per verb and resource
    (an entry listed twice, for two purposes, is asked about once). Raises `ClusterUnreachable`
    when the API does not answer and `ClusterForbidden` when it rejects the credentials (401). A
    review the server refuses to evaluate (403, 404) leaves that permission unknown and
    unreported: the calls themselves then say what is forbidden.
    """
    authorization = k8s.AuthorizationV1Api(api)
    answers: dict[tuple[str, str, str, str], bool] = {}
    required: list[Permission] = []
    optional: list[Permission] = []
    for permission in needs:
        key = (permission.verb, permission.group, permission.resource, permission.subresource)
        if key not in answers:
            answers[key] = _allowed(authorization, api, namespace, permission)
        if answers[key]:
            continue
        if permission.required:
            required.append(permission)
        else:
            log.info("optional permission missing: %s", permission.forbidden(namespace))
            optional.append(permission)
    return AccessReview(tuple(required), tuple(optional))


def preflight(
    api: k8s.ApiClient,
    namespace: str,
    needs: Iterable[Permission],
    service_account: tuple[str, str] | None = None,
) -> list[str]:
    """The run's pre-flight: raises `forbidden_at_preflight`'s error when a required permission
    of `needs` is missing; else the messages of the missing optional ones that record pods (the
    run goes on without the pods' breakdown)."""
    review = review_access(api, namespace, needs)
    if review.missing_required:
        raise forbidden_at_preflight(review.problems(namespace), namespace, service_account)
    return [p.forbidden(namespace) for p in review.missing_optional if p.for_pods]


def check_access(api: k8s.ApiClient, namespace: str, needs: Iterable[Permission]) -> list[str]:
    """One message per missing required permission in `needs` (empty when all are granted);
    see `review_access`."""
    return review_access(api, namespace, needs).problems(namespace)


def _allowed(
    authorization: k8s.AuthorizationV1Api,
    api: k8s.ApiClient,
    namespace: str,
    permission: Permission,
) -> bool:
    """Whether the API server grants `permission` (True when it will not say)."""
    review = k8s.V1SelfSubjectAccessReview(
        spec=k8s.V1SelfSubjectAccessReviewSpec(
            resource_attributes=k8s.V1ResourceAttributes(
                namespace=namespace,
                verb=permission.verb,
                group=permission.group,
                resource=permission.resource,
                subresource=permission.subresource or None,
            )
        )
    )
    try:
        answer = authorization.create_self_subject_access_review(review, _request_timeout=10)
    except ApiException as exc:
        if exc.status == 401:
            raise ClusterForbidden(UNAUTHORIZED) from None
        log.warning("cannot review %s: %s", permission.forbidden(namespace), exc.status)
        return True
    except TRANSPORT_ERRORS as exc:
        raise unreachable(api, exc) from None
    return answer.status is not None and bool(answer.status.allowed)

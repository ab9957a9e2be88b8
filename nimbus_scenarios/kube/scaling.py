"""What the autoscaler and the pods around the watched Deployment are doing, read through the
Kubernetes API: the `kube` layer's view of scaling, beside `replicas` (the Deployment watch),
which calls these functions from its pre-flight, its autoscaler task and `kill_pods`.

`discover_autoscaler` finds the KEDA ScaledObject or HorizontalPodAutoscaler whose
scaleTargetRef is the Deployment, `read_status` reads its whole status (its HPA's decision,
count, metrics against targets and conditions; a ScaledObject's own conditions: see
`autoscaler_status`) and `read_decision` only the decision (the HPA's status.desiredReplicas; for a
ScaledObject, that of the HPA KEDA generates, `status.hpaName`). Both only enrich the
results: a missing CRD, a forbidden call or an API that does not answer means "no autoscaler
known", never an error. `delete_ready_pods` (`at T kill N pods`) picks pods with the Deployment's
selector (`label_selector`) and deletes Ready ones; its failures are `ClusterError`s.

Every function here blocks (the official client is synchronous): call it through
`asyncio.to_thread` from async code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from nimbus_scenarios.kube.api import (
    DELETE_PODS,
    GET_HPA,
    GET_SCALEDOBJECT,
    LIST_HPAS,
    LIST_PODS_TO_KILL,
    LIST_SCALEDOBJECTS,
    TRANSPORT_ERRORS,
    KubeObject,
    Permission,
    api_error,
    as_str,
    call_json,
    get_in,
    items_of,
    unreachable,
)
from nimbus_scenarios.kube.autoscaler_status import AutoscalerStatus, autoscaler_status

__all__ = [
    "Autoscaler",
    "AutoscalerKind",
    "delete_ready_pods",
    "discover_autoscaler",
    "label_selector",
    "read_decision",
    "read_status",
]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- autoscalers
class AutoscalerKind(StrEnum):
    """The autoscalers recognised, spelled as the API spells their kinds."""

    HORIZONTAL_POD_AUTOSCALER = "HorizontalPodAutoscaler"
    SCALED_OBJECT = "ScaledObject"  # KEDA: it scales through an HPA it generates


@dataclass(frozen=True, slots=True)
class Autoscaler:
    """An autoscaler whose scaleTargetRef is the watched Deployment."""

    kind: AutoscalerKind
    name: str
    hpa: str  # the HPA whose status.desiredReplicas is the decision


def discover_autoscaler(
    api: k8s.ApiClient, namespace: str, deployment: str, timeout: float
) -> tuple[Autoscaler | None, AutoscalerStatus | None]:
    """The ScaledObject or HPA targeting `deployment`, and its status; None for what is unknown.

    ScaledObjects are looked at first: the HPA KEDA generates targets the Deployment too, and the
    ScaledObject is what a person wrote.
    """
    found: Autoscaler | None = None
    scaled_objects = _optional_items(
        api, LIST_SCALEDOBJECTS, "keda.sh", "v1alpha1", namespace, "scaledobjects", timeout=timeout
    )
    for scaled in scaled_objects:
        if _targets(get_in(scaled, "spec", "scaleTargetRef"), deployment):
            name = str(get_in(scaled, "metadata", "name"))
            hpa = as_str(get_in(scaled, "status", "hpaName")) or f"keda-hpa-{name}"
            found = Autoscaler(AutoscalerKind.SCALED_OBJECT, name, hpa)
            break
    if found is None:
        for horizontal in _optional_items(api, LIST_HPAS, namespace, timeout=timeout):
            if _targets(get_in(horizontal, "spec", "scaleTargetRef"), deployment):
                name = str(get_in(horizontal, "metadata", "name"))
                found = Autoscaler(AutoscalerKind.HORIZONTAL_POD_AUTOSCALER, name, name)
                break
    if found is None:
        return None, None
    return found, read_status(api, namespace, found, timeout=timeout)


def read_decision(
    api: k8s.ApiClient, namespace: str, autoscaler: Autoscaler, timeout: float
) -> int | None:
    """The autoscaler's current decision; None when it cannot be read."""
    status = read_status(api, namespace, autoscaler, timeout)
    return None if status is None else status.desired


def read_status(
    api: k8s.ApiClient, namespace: str, autoscaler: Autoscaler, timeout: float
) -> AutoscalerStatus | None:
    """The autoscaler's status now (`kube.autoscaler_status`): its HPA's, with the ScaledObject's
    conditions for KEDA; None when the HPA cannot be read."""
    hpa_name = autoscaler.hpa
    scaled: KubeObject | None = None
    try:
        if autoscaler.kind == AutoscalerKind.SCALED_OBJECT:
            scaled = call_json(
                api,
                GET_SCALEDOBJECT,
                "keda.sh",
                "v1alpha1",
                namespace,
                "scaledobjects",
                autoscaler.name,
                _request_timeout=timeout,
            )
            hpa_name = as_str(get_in(scaled, "status", "hpaName")) or hpa_name
        hpa = call_json(api, GET_HPA, hpa_name, namespace, _request_timeout=timeout)
    except (ApiException, *TRANSPORT_ERRORS):
        return None
    return autoscaler_status(hpa, scaled)


def _optional_items(
    api: k8s.ApiClient, permission: Permission, *args: Any, timeout: float
) -> list[KubeObject]:
    """The items of an optional list call; none when it is missing (404) or forbidden."""
    try:
        listing = call_json(api, permission, *args, _request_timeout=timeout)
    except ApiException as exc:
        log.info("%s %s: %s", permission.verb, permission.qualified, exc.status)
        return []
    except TRANSPORT_ERRORS as exc:
        log.info("%s %s: %s", permission.verb, permission.qualified, exc)
        return []
    return items_of(listing)


def _targets(ref: object, deployment: str) -> bool:
    """Whether a scaleTargetRef names the Deployment `deployment`."""
    if get_in(ref, "name") != deployment:
        return False
    kind = get_in(ref, "kind") or "Deployment"  # KEDA defaults an empty kind to Deployment
    api_version = str(get_in(ref, "apiVersion") or "apps/v1")
    return bool(kind == "Deployment" and api_version.startswith("apps/"))


# ---------------------------------------------------------------- pods
def label_selector(selector: object) -> str:
    """A LabelSelector (`matchLabels`, `matchExpressions`) as a label selector string."""
    labels = get_in(selector, "matchLabels")
    parts = [f"{k}={v}" for k, v in sorted(labels.items())] if isinstance(labels, Mapping) else []
    expressions = get_in(selector, "matchExpressions")
    for expression in expressions if isinstance(expressions, list) else []:
        key, operator = get_in(expression, "key"), get_in(expression, "operator")
        listed = get_in(expression, "values")
        values = ",".join(str(v) for v in listed) if isinstance(listed, list) else ""
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _is_ready(pod: KubeObject) -> bool:
    """Condition Ready=True and not terminating."""
    if get_in(pod, "metadata", "deletionTimestamp"):
        return False
    conditions = get_in(pod, "status", "conditions")
    return isinstance(conditions, list) and any(
        get_in(c, "type") == "Ready" and get_in(c, "status") == "True" for c in conditions
    )


def delete_ready_pods(
    api: k8s.ApiClient, namespace: str, selector: str, count: int, timeout: float
) -> list[str]:
    """Delete `count` Ready, non-terminating pods matching `selector` (fewer if fewer are
    ready), in name order; their names.

    Raises `ClusterError` (with the forbidden verb, or the API's answer) on failure.
    """
    try:
        listing = call_json(
            api, LIST_PODS_TO_KILL, namespace, label_selector=selector, _request_timeout=timeout
        )
    except ApiException as exc:
        raise api_error(exc, LIST_PODS_TO_KILL, namespace) from None
    except TRANSPORT_ERRORS as exc:
        raise unreachable(api, exc) from None
    ready = sorted(str(get_in(p, "metadata", "name")) for p in items_of(listing) if _is_ready(p))
    killed: list[str] = []
    for name in ready:
        if len(killed) >= count:
            break
        try:
            call_json(api, DELETE_PODS, name, namespace, _request_timeout=timeout)
        except ApiException as exc:
            if exc.status == 404:  # gone meanwhile: kill the next one instead
                continue
            raise api_error(exc, DELETE_PODS, namespace) from None
        except TRANSPORT_ERRORS as exc:
            raise unreachable(api, exc) from None
        killed.append(name)
    return killed

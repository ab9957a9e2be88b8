"""The Kubernetes API boundary of the `kube` layer: where the API server is, what this tool may
ask it, and how its answers become our errors. `replicas` (the Deployment watch) and `scaling`
(autoscalers and pods) make their calls through the helpers here.

One table, `PERMISSIONS`, lists every API call the `kube` modules make (verb, group, resource).
The calls name their entry, `kube.access.check_access` asks the API server about each entry with
a SelfSubjectAccessReview, and `required_rbac_rules` turns the same table into the rules a Role
must grant, so the three cannot drift apart. `submit`'s calls have a table of their own, in
`kube.runs`, checked and turned into rules by the same functions.

The official client is synchronous: every function here that talks to the API blocks, so async
code calls it through `asyncio.to_thread`. Bodies are read as raw JSON (`call_json`) and picked
apart with `get_in`, `as_int`, `as_str` and `items_of`: the JSON stays at this boundary and never
becomes a domain object. API and transport failures become `ClusterError`s (from
`nimbus_scenarios.errors`) through `api_error` and `unreachable`.

This module imports `kubernetes`; keep it out of the `validate`/`plan` import path (import it
lazily where a run needs it).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import urllib3.exceptions
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader

from nimbus_scenarios.errors import (
    ClusterConfigError,
    ClusterError,
    ClusterForbidden,
    ClusterUnreachable,
)

__all__ = [
    "DELETE_PODS",
    "GET_CONFIGMAP",
    "GET_DEPLOYMENT",
    "GET_HPA",
    "GET_JOB",
    "GET_SCALEDOBJECT",
    "LIST_DEPLOYMENTS",
    "LIST_HPAS",
    "LIST_PODS",
    "LIST_PODS_TO_KILL",
    "LIST_SCALEDOBJECTS",
    "PERMISSIONS",
    "RUN_SERVICE_ACCOUNT",
    "SERVICE_ACCOUNT_DIR",
    "TRANSPORT_ERRORS",
    "UNAUTHORIZED",
    "WATCH_DEPLOYMENTS",
    "WATCH_PODS",
    "KubeConfig",
    "Permission",
    "api_error",
    "as_int",
    "as_str",
    "call_json",
    "describe_failure",
    "get_in",
    "items_of",
    "job_created_at",
    "needed_permissions",
    "rbac_rules",
    "required_rbac_rules",
    "service_account_of_token",
    "unreachable",
]

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_NAMESPACE: Final = "default"
RUN_SERVICE_ACCOUNT: Final = "nimbus-scenarios"
"""The ServiceAccount the shipped Jobs and CronJobs and `submit` run as (the component binds it)."""


# ---------------------------------------------------------------- the permission table
@dataclass(frozen=True, slots=True)
class Permission:
    """One API call the `kube` modules make: `verb` on `resource` in API `group` ("" is core).

    `required` permissions must be granted for a run; the optional ones only enrich the results
    (the autoscaler's status). `kills_only` permissions are needed when the scenario kills pods,
    `start_from_only` ones when the common start is read from a ConfigMap (`--start-at-from`).
    `for_pods` ones record the Deployment's pods: required when the scenario judges pods
    (`needed_permissions(pods_required=True)`), otherwise optional (the pods' breakdown is then
    missing, and the results say so).
    """

    verb: str
    group: str
    resource: str
    call: str  # the client method that makes the call: "AppsV1Api.list_namespaced_deployment"
    purpose: str
    required: bool = True
    kills_only: bool = False
    start_from_only: bool = False
    for_pods: bool = False
    subresource: str = ""  # "log" for pods/log

    @property
    def rbac_resource(self) -> str:
        """`pods`, `pods/log`: the resource as a Role's rule names it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    @property
    def qualified(self) -> str:
        """`deployments.apps`, `pods/log`: the resource as kubectl and RBAC errors name it."""
        return f"{self.rbac_resource}.{self.group}" if self.group else self.rbac_resource

    def forbidden(self, namespace: str) -> str:
        """The message for a missing permission."""
        return f"forbidden: cannot {self.verb} {self.qualified} in namespace {namespace}"

    def method(self, api: k8s.ApiClient) -> Callable[..., Any]:
        """The bound client method that makes this call."""
        api_class, name = self.call.split(".")
        bound: Callable[..., Any] = getattr(getattr(k8s, api_class)(api), name)
        return bound


_APPS = "AppsV1Api"
_CORE = "CoreV1Api"
_HPA = "AutoscalingV2Api"
_CUSTOM = "CustomObjectsApi"

GET_DEPLOYMENT: Final = Permission(
    "get", "apps", "deployments", f"{_APPS}.read_namespaced_deployment",
    "proving the watch fresh after 2 s of silence, and polling when watch is forbidden",
)  # fmt: skip
LIST_DEPLOYMENTS: Final = Permission(
    "list", "apps", "deployments", f"{_APPS}.list_namespaced_deployment",
    "the first sample, and the relist after 410 Gone",
)  # fmt: skip
WATCH_DEPLOYMENTS: Final = Permission(
    "watch", "apps", "deployments", f"{_APPS}.list_namespaced_deployment",
    "replica changes as they happen",
)  # fmt: skip
LIST_PODS: Final = Permission(
    "list", "", "pods", f"{_CORE}.list_namespaced_pod",
    "the Deployment's pods, and the relist after 410 Gone", required=False, for_pods=True,
)  # fmt: skip
WATCH_PODS: Final = Permission(
    "watch", "", "pods", f"{_CORE}.list_namespaced_pod",
    "each pod's creation, scheduling, start, Ready, restarts and deletion as they happen",
    required=False, for_pods=True,
)  # fmt: skip
LIST_PODS_TO_KILL: Final = Permission(
    "list", "", "pods", f"{_CORE}.list_namespaced_pod",
    "the ready pods to kill", kills_only=True,
)  # fmt: skip
DELETE_PODS: Final = Permission(
    "delete", "", "pods", f"{_CORE}.delete_namespaced_pod",
    "`at T kill N pods`", kills_only=True,
)  # fmt: skip
GET_HPA: Final = Permission(
    "get", "autoscaling", "horizontalpodautoscalers",
    f"{_HPA}.read_namespaced_horizontal_pod_autoscaler",
    "the autoscaler's status: decision, metrics against targets, conditions", required=False,
)  # fmt: skip
LIST_HPAS: Final = Permission(
    "list", "autoscaling", "horizontalpodautoscalers",
    f"{_HPA}.list_namespaced_horizontal_pod_autoscaler",
    "find the HPA targeting the Deployment", required=False,
)  # fmt: skip
GET_SCALEDOBJECT: Final = Permission(
    "get", "keda.sh", "scaledobjects", f"{_CUSTOM}.get_namespaced_custom_object",
    "the ScaledObject's HPA (status.hpaName) and conditions", required=False,
)  # fmt: skip
LIST_SCALEDOBJECTS: Final = Permission(
    "list", "keda.sh", "scaledobjects", f"{_CUSTOM}.list_namespaced_custom_object",
    "find the KEDA ScaledObject targeting the Deployment", required=False,
)  # fmt: skip
GET_JOB: Final = Permission(
    "get", "batch", "jobs", "BatchV1Api.read_namespaced_job",
    "the Job's creation time: the common start of a sharded run's phases", required=False,
)  # fmt: skip

GET_CONFIGMAP: Final = Permission(
    "get", "", "configmaps", f"{_CORE}.read_namespaced_config_map",
    "the common start `submit` writes once every shard runs (`--start-at-from configmap/NAME`)",
    start_from_only=True,
)  # fmt: skip

PERMISSIONS: Final[tuple[Permission, ...]] = (
    GET_DEPLOYMENT,
    LIST_DEPLOYMENTS,
    WATCH_DEPLOYMENTS,
    LIST_PODS,
    WATCH_PODS,
    LIST_PODS_TO_KILL,
    DELETE_PODS,
    GET_HPA,
    LIST_HPAS,
    GET_SCALEDOBJECT,
    LIST_SCALEDOBJECTS,
    GET_JOB,
    GET_CONFIGMAP,
)


def needed_permissions(
    kills: bool, start_from: bool = False, pods_required: bool = False
) -> tuple[Permission, ...]:
    """The permissions a run uses: all of the table, less the kill ones when nothing is killed
    and the ConfigMap one when the start is not read from a ConfigMap; the pods' ones required
    when the scenario judges pods (`pods_required`)."""
    return tuple(
        replace(p, required=True) if p.for_pods and pods_required else p
        for p in PERMISSIONS
        if (kills or not p.kills_only) and (start_from or not p.start_from_only)
    )


def required_rbac_rules(kills: bool, start_from: bool = False) -> list[dict[str, list[str]]]:
    """The namespaced Role rules covering exactly the calls the `kube` modules make.

    One rule per resource, in table order. The SelfSubjectAccessReviews of `check_access` need
    no rule: every authenticated user may create them (the `system:basic-user` ClusterRole).
    """
    return rbac_rules(needed_permissions(kills, start_from))


def rbac_rules(permissions: Iterable[Permission]) -> list[dict[str, list[str]]]:
    """Role rules granting `permissions`: one rule per resource (subresources apart), in order."""
    rules: dict[tuple[str, str], list[str]] = {}
    for p in permissions:
        verbs = rules.setdefault((p.group, p.rbac_resource), [])
        if p.verb not in verbs:
            verbs.append(p.verb)
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": verbs}
        for (group, resource), verbs in rules.items()
    ]


# ---------------------------------------------------------------- configuration
@dataclass(frozen=True, slots=True)
class KubeConfig:
    """Where the API server is, how to authenticate, and the namespace to default to."""

    configuration: k8s.Configuration
    namespace: str
    origin: str
    service_account: tuple[str, str] | None = None
    """(namespace, name) of the in-cluster ServiceAccount, when its token says so."""

    @classmethod
    def load(
        cls,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        service_account_dir: Path = SERVICE_ACCOUNT_DIR,
    ) -> KubeConfig:
        """In-cluster config when `KUBERNETES_SERVICE_HOST` is set, else a kubeconfig.

        An explicit `kubeconfig` or `context` (`--kubeconfig`, `--context`) or a non-empty
        `$KUBECONFIG` always means a kubeconfig, in a pod too, as for kubectl and the official
        clients; without `kubeconfig`, `$KUBECONFIG` or `~/.kube/config` is read. The namespace
        is the service account's (in-cluster), else the context's, else `default`.
        """
        env = os.environ if environ is None else environ
        configuration = k8s.Configuration()
        configuration.keep_alive = True  # long watches survive idle proxies and load balancers
        explicit = kubeconfig is not None or context is not None or bool(env.get("KUBECONFIG"))
        if not explicit and env.get("KUBERNETES_SERVICE_HOST"):
            # kubernetes.config is unannotated: hence the no-untyped-call ignores below.
            loader = InClusterConfigLoader(  # type: ignore[no-untyped-call]
                token_filename=str(service_account_dir / "token"),
                cert_filename=str(service_account_dir / "ca.crt"),
                environ=env,
            )
            try:
                loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
            except ConfigException as exc:
                raise ClusterConfigError(f"in-cluster configuration: {exc}") from None
            namespace_file = service_account_dir / "namespace"
            namespace = _read_text(namespace_file) or DEFAULT_NAMESPACE
            account = service_account_of_token(_read_text(service_account_dir / "token"))
            origin = "in-cluster service account"
            if account is not None:
                origin = f"in-cluster service account {account[0]}/{account[1]}"
            return cls(configuration, namespace, origin, account)
        path = kubeconfig or env.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
        try:
            contexts, current = k8s_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=path
            )
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (ConfigException, OSError) as exc:
            raise ClusterConfigError(f"kubeconfig {path}: {exc}") from None
        name = context or (current or {}).get("name")
        chosen = next((c for c in contexts or [] if c.get("name") == name), None)
        namespace = str(((chosen or {}).get("context") or {}).get("namespace") or "")
        origin = f"kubeconfig {path}, context {name}"
        return cls(configuration, namespace or DEFAULT_NAMESPACE, origin)

    def api_client(self) -> k8s.ApiClient:
        """A new client for this configuration (close it when the run ends)."""
        return k8s.ApiClient(self.configuration)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def service_account_of_token(token: str) -> tuple[str, str] | None:
    """(namespace, name) from a ServiceAccount token's claims, or None when it does not say.

    Only to name the identity in an error message: the token is decoded, never verified.
    """
    parts = token.strip().split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    prefix, _, rest = str(get_in(claims, "sub") or "").partition("system:serviceaccount:")
    namespace, _, name = rest.partition(":")
    if prefix or not namespace or not name or ":" in name:
        return None
    return namespace, name


# ---------------------------------------------------------------- calls, answers and errors
TRANSPORT_ERRORS: Final = (urllib3.exceptions.HTTPError, OSError)
"""What the client raises when the API server does not answer (as opposed to `ApiException`)."""
UNAUTHORIZED: Final = "unauthorized: the Kubernetes API rejected the credentials"
"""The message for a 401, whichever call got it."""


def describe_failure(exc: BaseException) -> str:
    """A transport error in a few words (urllib3 wraps the cause in MaxRetryError)."""
    cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    return f"{type(cause).__name__}: {cause}" if cause is not None else type(exc).__name__


def unreachable(api: k8s.ApiClient, exc: BaseException) -> ClusterUnreachable:
    """The error for a call that got no answer: the API's address and what went wrong."""
    host = api.configuration.host
    return ClusterUnreachable(f"Kubernetes API at {host} is unreachable: {describe_failure(exc)}")


def api_error(exc: ApiException, permission: Permission, namespace: str) -> ClusterError:
    """A clear message for an API error answered to `permission`'s call."""
    if exc.status == 403:
        return ClusterForbidden(permission.forbidden(namespace))
    if exc.status == 401:
        return ClusterForbidden(UNAUTHORIZED)
    answer = f"{exc.status} {exc.reason or ''}".strip()
    return ClusterError(
        f"Kubernetes API answered {answer} to {permission.verb} {permission.qualified}"
        f" in namespace {namespace}"
    )


KubeObject = Mapping[str, object]
"""An object as the API serves it (parsed JSON): read it with `get_in`, `as_int`, `as_str`."""


def call_json(api: k8s.ApiClient, permission: Permission, *args: Any, **kwargs: Any) -> KubeObject:
    """Make `permission`'s call (blocking); the JSON body. Errors raise `ApiException`.

    Bodies are read raw (`_preload_content=False`): only a few fields are needed, and a raw read
    does not depend on the client's models accepting every object the server sends.
    """
    response = permission.method(api)(*args, _preload_content=False, **kwargs)
    try:
        body = response.data
    finally:
        response.release_conn()
    data = json.loads(body) if body else {}
    return data if isinstance(data, dict) else {}


def get_in(obj: object, *path: str) -> object:
    """`obj[path[0]][path[1]]…`, or None where a step is missing."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def as_int(value: object) -> int | None:
    """A JSON integer, or None (JSON booleans are not counts)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_str(value: object) -> str | None:
    """A non-empty JSON string, or None."""
    return value if isinstance(value, str) and value else None


def items_of(listing: KubeObject) -> list[KubeObject]:
    """The objects of a list answer; none when `items` is missing or malformed."""
    items = listing.get("items")
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


# ---------------------------------------------------------------- the Job of a sharded run
def job_created_at(api: k8s.ApiClient, namespace: str, job: str) -> float:
    """The Unix time a Job was created (sharded runs start their phases relative to it)."""
    try:
        found = GET_JOB.method(api)(job, namespace, _request_timeout=10)
    except Exception as exc:
        raise ClusterError(f"cannot read Job {namespace}/{job}: {exc}") from None
    created = found.metadata.creation_timestamp
    if created is None:
        raise ClusterError(f"Job {namespace}/{job} has no creationTimestamp")
    return float(created.timestamp())

"""Replica counts from a live Kubernetes API: the `ReplicaSource` a real run uses.

The official `kubernetes` client is synchronous, so every call it makes runs off the event loop:
pre-flight calls go through `asyncio.to_thread`, and the long-lived watch (or the polling that
replaces it when watch is forbidden) runs in one background thread. That thread never touches
the source's state: it hands what it saw to the loop with `loop.call_soon_threadsafe`, and the
loop stamps each sample with its own clock (`loop.time()`) and decides when the source is lost.

One table, `PERMISSIONS`, lists every API call this module makes (verb, group, resource). The
calls name their entry, `check_access` asks the API server about each entry with a
SelfSubjectAccessReview, and `required_rbac_rules` turns the same table into the rules a Role
must grant, so the three cannot drift apart.

This module imports `kubernetes`; keep it out of the `validate`/`plan` import path (import it
lazily where a run needs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import urllib3.exceptions
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader

from nimbus_scenarios.errors import (
    ClusterConfigError,
    ClusterError,
    ClusterForbidden,
    ClusterUnreachable,
    DeploymentNotFound,
)
from nimbus_scenarios.replicas import ReplicaSample

__all__ = [
    "DELETE_PODS",
    "GET_DEPLOYMENT",
    "GET_HPA",
    "GET_JOB",
    "GET_SCALEDOBJECT",
    "LIST_DEPLOYMENTS",
    "LIST_HPAS",
    "LIST_PODS",
    "LIST_SCALEDOBJECTS",
    "PERMISSIONS",
    "SERVICE_ACCOUNT_DIR",
    "WATCH_DEPLOYMENTS",
    "ClusterReplicaSource",
    "KubeConfig",
    "Permission",
    "SourceTiming",
    "check_access",
    "job_created_at",
    "label_selector",
    "needed_permissions",
    "required_rbac_rules",
]

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_NAMESPACE: Final = "default"

Mode = Literal["watch", "poll"]


# ---------------------------------------------------------------- the permission table
@dataclass(frozen=True, slots=True)
class Permission:
    """One API call this module makes: `verb` on `resource` in API `group` ("" is core).

    `required` permissions must be granted for a run; the optional ones only enrich the results
    (the autoscaler's decision). `kills_only` permissions are needed when the scenario kills pods.
    """

    verb: str
    group: str
    resource: str
    call: str  # the client method that makes the call: "AppsV1Api.list_namespaced_deployment"
    purpose: str
    required: bool = True
    kills_only: bool = False

    @property
    def qualified(self) -> str:
        """`deployments.apps`, `pods`: the resource as kubectl and RBAC errors name it."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

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
    "polling when watch is forbidden",
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
    "the ready pods to kill", kills_only=True,
)  # fmt: skip
DELETE_PODS: Final = Permission(
    "delete", "", "pods", f"{_CORE}.delete_namespaced_pod",
    "`at T kill N pods`", kills_only=True,
)  # fmt: skip
GET_HPA: Final = Permission(
    "get", "autoscaling", "horizontalpodautoscalers",
    f"{_HPA}.read_namespaced_horizontal_pod_autoscaler",
    "the autoscaler's desiredReplicas", required=False,
)  # fmt: skip
LIST_HPAS: Final = Permission(
    "list", "autoscaling", "horizontalpodautoscalers",
    f"{_HPA}.list_namespaced_horizontal_pod_autoscaler",
    "find the HPA targeting the Deployment", required=False,
)  # fmt: skip
GET_SCALEDOBJECT: Final = Permission(
    "get", "keda.sh", "scaledobjects", f"{_CUSTOM}.get_namespaced_custom_object",
    "the ScaledObject's HPA name (status.hpaName)", required=False,
)  # fmt: skip
LIST_SCALEDOBJECTS: Final = Permission(
    "list", "keda.sh", "scaledobjects", f"{_CUSTOM}.list_namespaced_custom_object",
    "find the KEDA ScaledObject targeting the Deployment", required=False,
)  # fmt: skip
GET_JOB: Final = Permission(
    "get", "batch", "jobs", "BatchV1Api.read_namespaced_job",
    "the Job's creation time: the common start of a sharded run's phases", required=False,
)  # fmt: skip

PERMISSIONS: Final[tuple[Permission, ...]] = (
    GET_DEPLOYMENT,
    LIST_DEPLOYMENTS,
    WATCH_DEPLOYMENTS,
    LIST_PODS,
    DELETE_PODS,
    GET_HPA,
    LIST_HPAS,
    GET_SCALEDOBJECT,
    LIST_SCALEDOBJECTS,
    GET_JOB,
)


def needed_permissions(kills: bool) -> tuple[Permission, ...]:
    """The permissions a run uses: all of the table, less the kill ones when nothing is killed."""
    return tuple(p for p in PERMISSIONS if kills or not p.kills_only)


def required_rbac_rules(kills: bool) -> list[dict[str, list[str]]]:
    """The namespaced Role rules covering exactly the calls this module makes.

    One rule per resource, in table order. The SelfSubjectAccessReviews of `check_access` need
    no rule: every authenticated user may create them (the `system:basic-user` ClusterRole).
    """
    rules: dict[tuple[str, str], list[str]] = {}
    for p in needed_permissions(kills):
        verbs = rules.setdefault((p.group, p.resource), [])
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

        An explicit `kubeconfig` or `context` (`--kubeconfig`, `--context`) always means a
        kubeconfig; without `kubeconfig`, `$KUBECONFIG` or `~/.kube/config` is read. The
        namespace is the service account's (in-cluster), else the context's, else `default`.
        """
        env = os.environ if environ is None else environ
        configuration = k8s.Configuration()
        configuration.keep_alive = True  # long watches survive idle proxies and load balancers
        if kubeconfig is None and context is None and env.get("KUBERNETES_SERVICE_HOST"):
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
            return cls(configuration, namespace, "in-cluster service account")
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


# ---------------------------------------------------------------- API call helpers
_TRANSPORT_ERRORS: Final = (urllib3.exceptions.HTTPError, OSError)
UNAUTHORIZED: Final = "unauthorized: the Kubernetes API rejected the credentials"


def _describe(exc: BaseException) -> str:
    """A transport error in a few words (urllib3 wraps the cause in MaxRetryError)."""
    cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    return f"{type(cause).__name__}: {cause}" if cause is not None else type(exc).__name__


def _unreachable(api: k8s.ApiClient, exc: BaseException) -> ClusterUnreachable:
    host = api.configuration.host
    return ClusterUnreachable(f"Kubernetes API at {host} is unreachable: {_describe(exc)}")


def _api_error(exc: ApiException, permission: Permission, namespace: str) -> ClusterError:
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


def _call_json(
    api: k8s.ApiClient, permission: Permission, *args: Any, **kwargs: Any
) -> dict[str, Any]:
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


def _get(obj: Any, *path: str) -> Any:
    """`obj[path[0]][path[1]]…`, or None where a step is missing."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _items(listing: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = listing.get("items")
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


# ---------------------------------------------------------------- pre-flight access check
def check_access(api: k8s.ApiClient, namespace: str, needs: Iterable[Permission]) -> list[str]:
    """One message per missing required permission in `needs` (empty when all are granted).

    Asks with SelfSubjectAccessReviews (authorization.k8s.io/v1). Blocking: call it through
    `asyncio.to_thread` from async code. Raises `ClusterUnreachable` when the API does not answer
    and `ClusterForbidden` when it rejects the credentials (401). A review the server refuses to
    evaluate (403, 404) leaves that permission unknown and unreported: the calls themselves then
    say what is forbidden.
    """
    authorization = k8s.AuthorizationV1Api(api)
    problems: list[str] = []
    for permission in needs:
        review = k8s.V1SelfSubjectAccessReview(
            spec=k8s.V1SelfSubjectAccessReviewSpec(
                resource_attributes=k8s.V1ResourceAttributes(
                    namespace=namespace,
                    verb=permission.verb,
                    group=permission.group,
                    resource=permission.resource,
                )
            )
        )
        try:
            answer = authorization.create_self_subject_access_review(review, _request_timeout=10)
        except ApiException as exc:
            if exc.status == 401:
                raise ClusterForbidden(UNAUTHORIZED) from None
            log.warning("cannot review %s: %s", permission.forbidden(namespace), exc.status)
            continue
        except _TRANSPORT_ERRORS as exc:
            raise _unreachable(api, exc) from None
        allowed = answer.status is not None and bool(answer.status.allowed)
        if allowed:
            continue
        if permission.required:
            problems.append(permission.forbidden(namespace))
        else:
            log.info("optional permission missing: %s", permission.forbidden(namespace))
    return problems


# ---------------------------------------------------------------- the source
@dataclass(frozen=True, slots=True)
class SourceTiming:
    """How often and how patiently the source talks to the API server (seconds)."""

    poll_interval_s: float = 2.0
    autoscaler_interval_s: float = 5.0
    watch_timeout_s: int = 300
    request_timeout_s: float = 10.0
    retry_delay_s: float = 0.5
    retry_delay_max_s: float = 2.0
    lost_after_s: float = 10.0
    lost_after_failures: int = 3
    stop_timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class _Counts:
    ready: int
    desired: int
    current: int


@dataclass(frozen=True, slots=True)
class _Autoscaler:
    kind: str  # "HorizontalPodAutoscaler" or "ScaledObject"
    name: str
    hpa: str  # the HPA whose status.desiredReplicas is the decision


def _counts(deployment: Mapping[str, Any]) -> _Counts:
    desired = _as_int(_get(deployment, "spec", "replicas"))
    return _Counts(
        ready=_as_int(_get(deployment, "status", "readyReplicas")) or 0,
        desired=1 if desired is None else desired,  # the API defaults spec.replicas to 1
        current=_as_int(_get(deployment, "status", "replicas")) or 0,
    )


def label_selector(selector: Any) -> str:
    """A LabelSelector (`matchLabels`, `matchExpressions`) as a label selector string."""
    labels = _get(selector, "matchLabels")
    parts = [f"{k}={v}" for k, v in sorted(labels.items())] if isinstance(labels, Mapping) else []
    expressions = _get(selector, "matchExpressions")
    for expression in expressions if isinstance(expressions, list) else []:
        key, operator = _get(expression, "key"), _get(expression, "operator")
        values = ",".join(_get(expression, "values") or [])
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _is_ready(pod: Mapping[str, Any]) -> bool:
    """Condition Ready=True and not terminating."""
    if _get(pod, "metadata", "deletionTimestamp"):
        return False
    conditions = _get(pod, "status", "conditions")
    return isinstance(conditions, list) and any(
        _get(c, "type") == "Ready" and _get(c, "status") == "True" for c in conditions
    )


class _Gone(Exception):
    """The watched Deployment was deleted."""


@dataclass
class _Cursor:
    """The watcher thread's own state (never touched by the loop)."""

    version: str | None  # where the next watch resumes; None: relist first
    mode: Mode = "watch"
    delay: float = 0.0


class ClusterReplicaSource:
    """Watches one Deployment through the Kubernetes API and records its replica counts.

    `start()` checks access, lists the Deployment (the first sample), looks for an HPA or KEDA
    ScaledObject targeting it, then watches it from the list's resourceVersion in a background
    thread: a dropped stream resumes from the last resourceVersion seen (no change is lost), 410
    Gone relists and watches on, and a 403 on watch falls back to polling every
    `poll_interval_s` (`mode` says which is in use). When the API stays unreachable
    (`lost_after_failures` failed attempts, the first `lost_after_s` ago or more) or the
    Deployment is deleted, `lost_at` is set and the source stops.
    """

    def __init__(
        self,
        deployment: str,
        namespace: str,
        api_client: k8s.ApiClient,
        *,
        kills: bool = False,
        check_permissions: bool = True,
        timing: SourceTiming | None = None,
    ) -> None:
        self.deployment = deployment
        self.namespace = namespace
        self._api = api_client
        self._kills = kills
        self._check_permissions = check_permissions
        self._timing = timing or SourceTiming()
        # Loop-owned state: written only on the event loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._samples: list[ReplicaSample] = []
        self._counts: _Counts | None = None
        self._selector = ""
        self._autoscaler: _Autoscaler | None = None
        self._autoscaler_desired: int | None = None
        self._autoscaler_task: asyncio.Task[None] | None = None
        self._mode: Mode = "watch"
        self._relists = 0
        self._lost_at: float | None = None
        self._lost_reason: str | None = None
        self._last_contact: float | None = None
        self._failures = 0
        self._first_failure: float | None = None
        self._stopped = False
        # Shared with the watcher thread (thread-safe objects only).
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch_lock = threading.Lock()
        self._watch: k8s_watch.Watch | None = None

    # ------------------------------------------------------------ the ReplicaSource protocol
    @property
    def description(self) -> str:
        """What is watched (`deployment nimbusguard/consumer`)."""
        return f"deployment {self.namespace}/{self.deployment}"

    @property
    def samples(self) -> list[ReplicaSample]:
        """Every sample so far, in time order."""
        return self._samples

    @property
    def lost_at(self) -> float | None:
        """Loop time of the last good contact, once the source has given up; else None."""
        return self._lost_at

    @property
    def autoscaler(self) -> str | None:
        """`HorizontalPodAutoscaler ns/name` or `ScaledObject ns/name`, when one targets it."""
        if self._autoscaler is None:
            return None
        return f"{self._autoscaler.kind} {self.namespace}/{self._autoscaler.name}"

    @property
    def lost_reason(self) -> str | None:
        """Why the source was lost (the last error, or the Deployment's deletion)."""
        return self._lost_reason

    @property
    def mode(self) -> Mode:
        """`watch`, or `poll` after the API forbade watching."""
        return self._mode

    @property
    def relists(self) -> int:
        """How many times a 410 Gone made the source relist."""
        return self._relists

    async def start(self) -> None:
        """Check access, record the first sample and begin watching.

        Raises `ClusterForbidden`, `ClusterUnreachable`, `DeploymentNotFound` or `ClusterError`
        with a message naming what is wrong.
        """
        if self._loop is not None:
            raise RuntimeError(f"{self.description}: the source was already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        if self._check_permissions:
            needs = needed_permissions(self._kills)
            problems = await asyncio.to_thread(check_access, self._api, self.namespace, needs)
            if problems:
                raise ClusterForbidden("; ".join(problems))
        version, deployment = await asyncio.to_thread(self._first_list)
        autoscaler, desired = await asyncio.to_thread(self._discover_autoscaler)
        self._selector = label_selector(_get(deployment, "spec", "selector"))
        self._autoscaler = autoscaler
        self._autoscaler_desired = desired
        self._observe(_counts(deployment))
        cursor = _Cursor(version or None, delay=self._timing.retry_delay_s)
        self._thread = threading.Thread(
            target=self._run, args=(cursor,), name=f"kube-watch {self.description}", daemon=True
        )
        self._thread.start()
        if autoscaler is not None:
            self._autoscaler_task = loop.create_task(self._follow_autoscaler(autoscaler))

    async def stop(self) -> None:
        """Stop watching; waits up to `stop_timeout_s` for the watcher thread to end."""
        self._stopped = True
        self._halt.set()
        if self._autoscaler_task is not None:
            self._autoscaler_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._autoscaler_task
        thread = self._thread
        if thread is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timing.stop_timeout_s
        while thread.is_alive() and loop.time() < deadline:
            self._interrupt_watch()
            await asyncio.sleep(0.02)
        if thread.is_alive():
            log.warning("%s: the watcher thread did not stop in time", self.description)

    async def kill_pods(self, count: int) -> list[str]:
        """Delete `count` ready pods of the Deployment (fewer if fewer are ready); their names.

        Pods are chosen by the Deployment's selector, Ready=True and not terminating, in name
        order. Raises `ClusterError` (with the forbidden verb, or the API's answer) on failure.
        """
        if count <= 0:
            return []
        if not self._selector:
            raise ClusterError(f"{self.description} has an empty selector: refusing to kill pods")
        return await asyncio.to_thread(self._kill, count, self._selector)

    # ------------------------------------------------------------ loop side
    def _post(self, callback: Callable[..., object], *args: Any) -> None:
        """From the watcher thread: run `callback(*args)` on the loop."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
            loop.call_soon_threadsafe(callback, *args)

    @property
    def _closed(self) -> bool:
        return self._stopped or self._lost_at is not None

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _contact(self) -> float:
        """A good answer from the API has just arrived; the loop time."""
        now = self._now()
        if not self._closed:
            self._last_contact = now
            self._failures = 0
            self._first_failure = None
        return now

    def _observe(self, counts: _Counts) -> None:
        if self._closed:
            return
        now = self._contact()
        if counts != self._counts:
            self._counts = counts
            self._append(now)

    def _append(self, now: float) -> None:
        counts = self._counts
        assert counts is not None
        self._samples.append(
            ReplicaSample(
                at=now,
                ready=counts.ready,
                desired=counts.desired,
                current=counts.current,
                autoscaler=self._autoscaler_desired,
            )
        )

    def _set_mode(self, mode: Mode) -> None:
        if mode == "poll" and self._mode != "poll":
            interval = self._timing.poll_interval_s
            log.warning("%s: watch is forbidden; polling every %gs", self.description, interval)
        self._mode = mode

    def _relisted(self) -> None:
        self._relists += 1

    def _failed(self, reason: str) -> None:
        if self._closed:
            return
        now = self._now()
        if self._first_failure is None:
            self._first_failure = now
        self._failures += 1
        log.info("%s: %s (failure %d)", self.description, reason, self._failures)
        timing = self._timing
        if (
            self._failures >= timing.lost_after_failures
            and now - self._first_failure >= timing.lost_after_s
        ):
            self._lose(reason)

    def _gone(self) -> None:
        if self._closed:
            return
        self._contact()
        self._lose(f"{self.description} was deleted")

    def _lose(self, reason: str) -> None:
        self._lost_at = self._last_contact if self._last_contact is not None else self._now()
        self._lost_reason = reason
        log.warning("%s: lost (%s)", self.description, reason)
        self._halt.set()
        self._interrupt_watch()
        if self._autoscaler_task is not None:
            self._autoscaler_task.cancel()

    def _interrupt_watch(self) -> None:
        with self._watch_lock:
            watch = self._watch
        if watch is not None:
            watch.stop()  # type: ignore[no-untyped-call]  # kubernetes.watch is unannotated

    # ------------------------------------------------------------ autoscaler
    def _discover_autoscaler(self) -> tuple[_Autoscaler | None, int | None]:
        """The ScaledObject or HPA targeting the Deployment, and its decision (blocking)."""
        found: _Autoscaler | None = None
        scaled_objects = self._optional_items(
            LIST_SCALEDOBJECTS, "keda.sh", "v1alpha1", self.namespace, "scaledobjects"
        )
        for scaled in scaled_objects:
            if self._targets_deployment(_get(scaled, "spec", "scaleTargetRef")):
                name = str(_get(scaled, "metadata", "name"))
                hpa = _as_str(_get(scaled, "status", "hpaName")) or f"keda-hpa-{name}"
                found = _Autoscaler("ScaledObject", name, hpa)
                break
        if found is None:
            for horizontal in self._optional_items(LIST_HPAS, self.namespace):
                if self._targets_deployment(_get(horizontal, "spec", "scaleTargetRef")):
                    name = str(_get(horizontal, "metadata", "name"))
                    found = _Autoscaler("HorizontalPodAutoscaler", name, name)
                    break
        if found is None:
            return None, None
        return found, self._read_autoscaler(found)

    def _optional_items(self, permission: Permission, *args: Any) -> list[Mapping[str, Any]]:
        """The items of an optional list call; none when it is missing (404) or forbidden."""
        try:
            listing = _call_json(
                self._api, permission, *args, _request_timeout=self._timing.request_timeout_s
            )
        except ApiException as exc:
            log.info("%s %s: %s", permission.verb, permission.qualified, exc.status)
            return []
        except _TRANSPORT_ERRORS as exc:
            log.info("%s %s: %s", permission.verb, permission.qualified, exc)
            return []
        return _items(listing)

    def _targets_deployment(self, ref: Any) -> bool:
        if _get(ref, "name") != self.deployment:
            return False
        kind = _get(ref, "kind") or "Deployment"  # KEDA defaults an empty kind to Deployment
        api_version = str(_get(ref, "apiVersion") or "apps/v1")
        return bool(kind == "Deployment" and api_version.startswith("apps/"))

    def _read_autoscaler(self, autoscaler: _Autoscaler) -> int | None:
        """The autoscaler's current decision (blocking); None when it cannot be read."""
        timeout = self._timing.request_timeout_s
        hpa_name = autoscaler.hpa
        try:
            if autoscaler.kind == "ScaledObject":
                scaled = _call_json(
                    self._api,
                    GET_SCALEDOBJECT,
                    "keda.sh",
                    "v1alpha1",
                    self.namespace,
                    "scaledobjects",
                    autoscaler.name,
                    _request_timeout=timeout,
                )
                hpa_name = _as_str(_get(scaled, "status", "hpaName")) or hpa_name
            hpa = _call_json(self._api, GET_HPA, hpa_name, self.namespace, _request_timeout=timeout)
        except (ApiException, *_TRANSPORT_ERRORS):
            return None
        return _as_int(_get(hpa, "status", "desiredReplicas"))

    async def _follow_autoscaler(self, autoscaler: _Autoscaler) -> None:
        while not self._closed:
            await asyncio.sleep(self._timing.autoscaler_interval_s)
            desired = await asyncio.to_thread(self._read_autoscaler, autoscaler)
            if self._closed:
                return
            if desired != self._autoscaler_desired:
                self._autoscaler_desired = desired
                if self._counts is not None:
                    self._append(self._now())

    # ------------------------------------------------------------ kill
    def _kill(self, count: int, selector: str) -> list[str]:
        timeout = self._timing.request_timeout_s
        try:
            listing = _call_json(
                self._api,
                LIST_PODS,
                self.namespace,
                label_selector=selector,
                _request_timeout=timeout,
            )
        except ApiException as exc:
            raise _api_error(exc, LIST_PODS, self.namespace) from None
        except _TRANSPORT_ERRORS as exc:
            raise _unreachable(self._api, exc) from None
        ready = sorted(str(_get(p, "metadata", "name")) for p in _items(listing) if _is_ready(p))
        killed: list[str] = []
        for name in ready:
            if len(killed) >= count:
                break
            try:
                _call_json(self._api, DELETE_PODS, name, self.namespace, _request_timeout=timeout)
            except ApiException as exc:
                if exc.status == 404:  # gone meanwhile: kill the next one instead
                    continue
                raise _api_error(exc, DELETE_PODS, self.namespace) from None
            except _TRANSPORT_ERRORS as exc:
                raise _unreachable(self._api, exc) from None
            killed.append(name)
        return killed

    # ------------------------------------------------------------ watcher thread
    def _list(self) -> tuple[str, Mapping[str, Any] | None]:
        """The collection's resourceVersion and the Deployment (None if absent). Blocking."""
        listing = _call_json(
            self._api,
            LIST_DEPLOYMENTS,
            self.namespace,
            field_selector=f"metadata.name={self.deployment}",
            _request_timeout=self._timing.request_timeout_s,
        )
        version = str(_get(listing, "metadata", "resourceVersion") or "")
        items = _items(listing)
        return version, (items[0] if items else None)

    def _first_list(self) -> tuple[str, Mapping[str, Any]]:
        try:
            version, deployment = self._list()
        except ApiException as exc:
            raise _api_error(exc, LIST_DEPLOYMENTS, self.namespace) from None
        except _TRANSPORT_ERRORS as exc:
            raise _unreachable(self._api, exc) from None
        if deployment is None:
            raise DeploymentNotFound(f"{self.description} not found")
        return version, deployment

    def _run(self, cursor: _Cursor) -> None:
        """The watcher thread: watch (or poll) until halted, reporting to the loop."""
        timing = self._timing
        while not self._halt.is_set():
            try:
                self._step(cursor)
                cursor.delay = timing.retry_delay_s
                continue
            except _Gone:
                self._post(self._gone)
                return
            except ApiException as exc:
                if self._halt.is_set():
                    return
                if exc.status == 410:
                    log.info("%s: 410 Gone; relisting", self.description)
                    self._post(self._relisted)
                    cursor.version = None
                    continue
                if exc.status == 403 and cursor.mode == "watch":
                    cursor.mode = "poll"
                    self._post(self._set_mode, cursor.mode)
                    continue
                self._post(self._failed, f"API answered {exc.status} {exc.reason or ''}".strip())
            except Exception as exc:  # transport errors, and anything unexpected: retry
                if self._halt.is_set():
                    return
                self._post(self._failed, _describe(exc))
            self._halt.wait(cursor.delay)
            cursor.delay = min(cursor.delay * 2, timing.retry_delay_max_s)

    def _step(self, cursor: _Cursor) -> None:
        """One unit of work: a relist, a whole watch request, or one poll."""
        if cursor.mode == "poll":
            self._poll()
            self._halt.wait(self._timing.poll_interval_s)
            return
        if cursor.version is None:  # first start without a version, or after 410 Gone
            version, deployment = self._list()
            if deployment is None:
                raise _Gone
            self._post(self._observe, _counts(deployment))
            cursor.version = version or None
            if cursor.version is None:
                raise ClusterError("the list carried no resourceVersion to watch from")
        self._stream(cursor)

    def _stream(self, cursor: _Cursor) -> None:
        """One watch request from `cursor.version`, moving it along with every event."""
        timing = self._timing
        # return_type "object": events keep their raw dicts (kubernetes.watch is unannotated).
        watch = k8s_watch.Watch(return_type="object")  # type: ignore[no-untyped-call]
        with self._watch_lock:
            self._watch = watch
        try:
            if self._halt.is_set():
                return
            events = watch.stream(  # type: ignore[no-untyped-call]
                WATCH_DEPLOYMENTS.method(self._api),
                self.namespace,
                field_selector=f"metadata.name={self.deployment}",
                resource_version=cursor.version,
                allow_watch_bookmarks=True,
                timeout_seconds=timing.watch_timeout_s,
                _request_timeout=(timing.request_timeout_s, timing.watch_timeout_s + 30),
            )
            for event in events:
                if self._halt.is_set():
                    return
                kind = event.get("type")
                raw = event.get("raw_object")
                cursor.version = _as_str(_get(raw, "metadata", "resourceVersion")) or cursor.version
                if kind == "BOOKMARK":
                    self._post(self._contact)
                elif kind == "DELETED":
                    raise _Gone
                elif isinstance(raw, Mapping):
                    self._post(self._observe, _counts(raw))
        finally:
            with self._watch_lock:
                self._watch = None
        if not self._halt.is_set():
            self._post(self._contact)  # the server ended the stream cleanly: it is alive

    def _poll(self) -> None:
        try:
            deployment = _call_json(
                self._api,
                GET_DEPLOYMENT,
                self.deployment,
                self.namespace,
                _request_timeout=self._timing.request_timeout_s,
            )
        except ApiException as exc:
            if exc.status == 404:
                raise _Gone from None
            raise
        self._post(self._observe, _counts(deployment))


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

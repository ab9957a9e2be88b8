"""The calls `submit` makes to run, follow and collect a Job, and their permission table.

`SUBMIT_PERMISSIONS` lists every call here (as `api.PERMISSIONS` does for `run`): each call
names its entry, `RunCluster.check` asks a SelfSubjectAccessReview about each one before
anything is created, and `api.rbac_rules` turns the table into the Role a submitter needs.

Every method blocks (the official client is synchronous): `submit` calls them from its own
thread, never from an event loop. API and transport failures become `ClusterError`s naming the
call, as in `api`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from nimbus_scenarios.errors import ClusterError, ClusterForbidden
from nimbus_scenarios.kube.access import check_access
from nimbus_scenarios.kube.api import (
    TRANSPORT_ERRORS,
    KubeObject,
    Permission,
    api_error,
    call_json,
    get_in,
    items_of,
    unreachable,
)
from nimbus_scenarios.kube.pods import JobStatus, PodStatus, read_job, read_pod

__all__ = [
    "CREATE_CONFIGMAPS",
    "CREATE_JOBS",
    "DELETE_JOBS",
    "GET_CONFIGMAPS",
    "GET_POD_LOGS",
    "LIST_JOBS",
    "LIST_PODS",
    "PATCH_CONFIGMAPS",
    "SUBMIT_PERMISSIONS",
    "LogStream",
    "RunCluster",
    "configmap_body",
    "submit_permissions",
]

_CORE = "CoreV1Api"
_BATCH = "BatchV1Api"

CREATE_CONFIGMAPS: Final = Permission(
    "create", "", "configmaps", f"{_CORE}.create_namespaced_config_map",
    "the scenario file, and a sharded run's start",
)  # fmt: skip
GET_CONFIGMAPS: Final = Permission(
    "get", "", "configmaps", f"{_CORE}.read_namespaced_config_map",
    "compare a scenario ConfigMap that exists with the file; read a sharded run's start",
)  # fmt: skip
PATCH_CONFIGMAPS: Final = Permission(
    "patch", "", "configmaps", f"{_CORE}.patch_namespaced_config_map",
    "write a sharded run's start once every pod runs",
)  # fmt: skip
CREATE_JOBS: Final = Permission(
    "create", "batch", "jobs", f"{_BATCH}.create_namespaced_job", "the run's Job",
)  # fmt: skip
LIST_JOBS: Final = Permission(
    "list", "batch", "jobs", f"{_BATCH}.list_namespaced_job",
    "the Job's status, found by its run id (also for --attach)",
)  # fmt: skip
DELETE_JOBS: Final = Permission(
    "delete", "batch", "jobs", f"{_BATCH}.delete_namespaced_job",
    "delete the Job and its pods on Ctrl-C or an infrastructure failure",
)  # fmt: skip
LIST_PODS: Final = Permission(
    "list", "", "pods", f"{_CORE}.list_namespaced_pod", "the phases of the run's pods",
)  # fmt: skip
GET_POD_LOGS: Final = Permission(
    "get", "", "pods", f"{_CORE}.read_namespaced_pod_log",
    "the runner's status lines and results document", subresource="log",
)  # fmt: skip

SUBMIT_PERMISSIONS: Final[tuple[Permission, ...]] = (
    CREATE_CONFIGMAPS,
    GET_CONFIGMAPS,
    PATCH_CONFIGMAPS,
    CREATE_JOBS,
    LIST_JOBS,
    DELETE_JOBS,
    LIST_PODS,
    GET_POD_LOGS,
)

REQUEST_TIMEOUT_S: Final = 10.0
"""Every call but a followed log gives up after this long."""
FOLLOW_READ_TIMEOUT_S: Final = 24 * 3600.0
"""A followed log may be silent this long (the client refuses no read timeout at all); the
results are read again whole at the end anyway."""


def submit_permissions(*, sharded: bool, attach: bool = False) -> tuple[Permission, ...]:
    """The calls `submit` will make: the start written only for a sharded run, nothing created
    when it attaches to a run already submitted, and no ConfigMap read when it attaches to a
    run of one pod."""
    skip: set[Permission] = set()
    if not sharded:
        skip.add(PATCH_CONFIGMAPS)
    if attach:
        skip |= {CREATE_CONFIGMAPS, CREATE_JOBS}
        if not sharded:
            skip.add(GET_CONFIGMAPS)
    return tuple(p for p in SUBMIT_PERMISSIONS if p not in skip)


class LogStream:
    """A followed pod log: its lines as they come, until the container ends or `close()`."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def lines(self) -> Iterator[str]:
        """Each line (without its newline) as it arrives; a last unterminated line too."""
        pending = b""
        for chunk in self._response.stream(4096, decode_content=True):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode("utf-8", "replace")
        if pending:
            yield pending.decode("utf-8", "replace")

    def close(self) -> None:
        """End the stream (from any thread): a reader blocked in `lines()` returns or raises."""
        try:
            self._response.close()
        finally:
            self._response.release_conn()


@dataclass(frozen=True, slots=True)
class RunCluster:
    """The API client and namespace of one submitted run."""

    api: k8s.ApiClient
    namespace: str

    def _call(self, permission: Permission, *args: Any, **kwargs: Any) -> KubeObject:
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT_S)
        try:
            return call_json(self.api, permission, *args, **kwargs)
        except ApiException as exc:
            raise api_error(exc, permission, self.namespace) from None
        except TRANSPORT_ERRORS as exc:
            raise unreachable(self.api, exc) from None

    def check(self, permissions: tuple[Permission, ...]) -> None:
        """Raise `ClusterForbidden` naming every call this identity may not make."""
        problems = check_access(self.api, self.namespace, permissions)
        if problems:
            raise ClusterForbidden("; ".join(problems))

    def put_configmap(self, body: Mapping[str, Any]) -> bool:
        """Create a ConfigMap; False if one of that name holds the same data already.

        A content-addressed name holding other data is an error: the name promised the content.
        """
        try:
            self._call_raw(CREATE_CONFIGMAPS, self.namespace, body)
            return True
        except ApiException as exc:
            if exc.status != 409:
                raise api_error(exc, CREATE_CONFIGMAPS, self.namespace) from None
        name = str(get_in(body, "metadata", "name"))
        found = self._call(GET_CONFIGMAPS, name, self.namespace)
        if (get_in(found, "data") or {}) != (body.get("data") or {}):
            raise ClusterError(
                f"ConfigMap {self.namespace}/{name} exists with other content than the scenario"
                " it is named after; delete it and submit again"
            )
        return False

    def _call_raw(self, permission: Permission, *args: Any) -> KubeObject:
        """A call whose ApiException the caller handles (transport errors are mapped)."""
        try:
            return call_json(self.api, permission, *args, _request_timeout=REQUEST_TIMEOUT_S)
        except TRANSPORT_ERRORS as exc:
            raise unreachable(self.api, exc) from None

    def create_job(self, body: Mapping[str, Any]) -> str:
        """Create the Job; its uid (for the run's ConfigMap to be owned by it)."""
        created = self._call(CREATE_JOBS, self.namespace, body)
        return str(get_in(created, "metadata", "uid") or "")

    def own(self, configmap: str, job: str, uid: str) -> None:
        """Make the Job own a ConfigMap, so that it goes when the Job goes."""
        if not uid:
            return
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": uid}
        self._call(
            PATCH_CONFIGMAPS, configmap, self.namespace, {"metadata": {"ownerReferences": [owner]}}
        )

    def start_written(self, configmap: str) -> bool:
        """Whether a sharded run's start is in its ConfigMap already (`--attach` after it)."""
        found = self._call(GET_CONFIGMAPS, configmap, self.namespace)
        return bool(get_in(found, "data", "start-at"))

    def write_start(self, configmap: str, start_at: float) -> None:
        """Write the shards' common start (Unix seconds) into the run's ConfigMap."""
        self._call(
            PATCH_CONFIGMAPS, configmap, self.namespace, {"data": {"start-at": f"{start_at:.3f}"}}
        )

    def jobs(self, selector: str) -> list[JobStatus]:
        """The Jobs carrying `selector`'s labels."""
        listing = self._call(LIST_JOBS, self.namespace, label_selector=selector)
        return [read_job(item) for item in items_of(listing)]

    def pods(self, selector: str, container: str) -> list[PodStatus]:
        """The pods carrying `selector`'s labels."""
        listing = self._call(LIST_PODS, self.namespace, label_selector=selector)
        return [read_pod(item, container) for item in items_of(listing)]

    def follow_log(self, pod: str, container: str) -> LogStream:
        """A pod's log, followed from its start (connects within the request timeout)."""
        try:
            response = GET_POD_LOGS.method(self.api)(
                pod,
                self.namespace,
                container=container,
                follow=True,
                _preload_content=False,
                _request_timeout=(REQUEST_TIMEOUT_S, FOLLOW_READ_TIMEOUT_S),
            )
        except ApiException as exc:
            raise api_error(exc, GET_POD_LOGS, self.namespace) from None
        except TRANSPORT_ERRORS as exc:
            raise unreachable(self.api, exc) from None
        return LogStream(response)

    def read_log(self, pod: str, container: str) -> str:
        """A pod's whole log as it is now."""
        try:
            response = GET_POD_LOGS.method(self.api)(
                pod,
                self.namespace,
                container=container,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_S * 6,
            )
            try:
                data: bytes = response.data
            finally:
                response.release_conn()
        except ApiException as exc:
            raise api_error(exc, GET_POD_LOGS, self.namespace) from None
        except TRANSPORT_ERRORS as exc:
            raise unreachable(self.api, exc) from None
        return data.decode("utf-8", "replace")

    def delete_job(self, name: str) -> bool:
        """Delete the Job and, in the background, its pods; False if it was gone already."""
        try:
            self._call_raw_delete(name)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise api_error(exc, DELETE_JOBS, self.namespace) from None
        return True

    def _call_raw_delete(self, name: str) -> None:
        try:
            call_json(
                self.api,
                DELETE_JOBS,
                name,
                self.namespace,
                propagation_policy="Background",
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except TRANSPORT_ERRORS as exc:
            raise unreachable(self.api, exc) from None


def configmap_body(namespace: str, name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """A sharded run's ConfigMap, created empty: `submit` writes `start-at` into it later."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "data": {},
    }

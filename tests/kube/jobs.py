"""`JobController`: the emulated cluster's batch/v1 Job controller.

When a Job appears it creates its pods from the template: `parallelism` at a time until
`completions` have succeeded (both default to 1), and for `completionMode: Indexed` one pod per
index, named `JOB-INDEX-xxxxx`, with the index in the `batch.kubernetes.io/job-completion-index`
annotation and label and in the `JOB_COMPLETION_INDEX` variable of every container. Pods carry
the template's labels plus `job-name`, `controller-uid` (and their `batch.kubernetes.io/` forms)
and an `ownerReference` to the Job, so deleting the Job with a propagation policy deletes them.

As pods end, the Job's status follows: `active`, `ready`, `succeeded`, `failed`,
`completedIndexes` (Indexed: "0,2-3"), `startTime`, `completionTime` and one final condition:

- `Complete` once every completion (or index) has succeeded;
- `Failed` with reason `PodFailurePolicy` when a failed pod matches a `FailJob` rule of
  `podFailurePolicy` (`onExitCodes` with `In`/`NotIn`, or `onPodConditions`); a matching
  `Ignore` rule does not count the failure; otherwise the failure counts, and once more pods
  have failed than `backoffLimit` (default 6) the reason is `BackoffLimitExceeded`; below it a
  new pod replaces the failed one at once (no exponential delay);
- `Failed` with reason `DeadlineExceeded` when `activeDeadlineSeconds` pass first;
- with `backoffLimitPerIndex` (Indexed): a failed pod fails its index once the index has failed
  more often than that limit, or at once on a matching `FailIndex` rule; a failed index gets no
  new pod and is listed in `status.failedIndexes` ("1,3"). `backoffLimit` then defaults to
  2147483647. Once every index has succeeded or failed, a Job with failed indexes is `Failed`
  with reason `FailedIndexes`; more failed indexes than `maxFailedIndexes` fail it at once
  (`MaxFailedIndexesExceeded`).

A failed Job's running pods are deleted. `ttlSecondsAfterFinished` deletes a finished Job
(and, in the background, its pods). Not emulated: `suspend`, `successPolicy`, the
`job-index-failure-count` annotation, pod replacement of a pod deleted by someone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import secrets
from dataclasses import dataclass, field
from typing import Any

from tests.kube.apiserver import ApiServer
from tests.kube.store import now

INDEX = "batch.kubernetes.io/job-completion-index"
TERMINAL = frozenset({"Succeeded", "Failed"})
MAX_INT32 = 2147483647


@dataclass
class _Job:
    """What the controller keeps about one Job between syncs."""

    namespace: str
    name: str
    uid: str
    started: float
    succeeded: int = 0
    failed: int = 0
    indexes: set[int] = field(default_factory=set)
    failed_indexes: set[int] = field(default_factory=set)
    index_failures: dict[int, int] = field(default_factory=dict)
    counted: set[str] = field(default_factory=set)
    created: int = 0
    finished: bool = False


class JobController:
    """Creates and tracks every Job's pods on `server` (see the module docstring)."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self._jobs: dict[str, _Job] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._timers: list[asyncio.TimerHandle] = []
        self._worker = asyncio.get_running_loop().create_task(self._work())
        server.state.listeners.append(self._on_change)

    def pods_created(self, namespace: str, name: str) -> int:
        """How many pods the controller has created for a Job (0 for one it never saw)."""
        job = next(
            (j for j in self._jobs.values() if (j.namespace, j.name) == (namespace, name)), None
        )
        return 0 if job is None else job.created

    async def aclose(self) -> None:
        """Stop reacting."""
        with contextlib.suppress(ValueError):
            self.server.state.listeners.remove(self._on_change)
        for timer in self._timers:
            timer.cancel()
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker

    # ------------------------------------------------------------ events
    def _on_change(self, group: str, plural: str, kind: str, body: dict[str, Any]) -> None:
        metadata = body.get("metadata", {})
        if (group, plural) == ("batch", "jobs"):
            uid = metadata.get("uid", "")
            if kind == "DELETED":
                self._jobs.pop(uid, None)
            elif kind == "ADDED":
                job = _Job(metadata.get("namespace") or "", metadata["name"], uid, _clock())
                self._jobs[uid] = job
                deadline = body.get("spec", {}).get("activeDeadlineSeconds")
                if deadline is not None:
                    self._later(float(deadline), uid)
                self._queue.put_nowait(uid)
        elif (group, plural) == ("", "pods"):
            for owner in metadata.get("ownerReferences") or []:
                if owner.get("kind") == "Job" and owner.get("uid") in self._jobs:
                    self._queue.put_nowait(owner["uid"])

    def _later(self, delay_s: float, uid: str) -> None:
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(delay_s, self._queue.put_nowait, uid))

    async def _work(self) -> None:
        while True:
            uid = await self._queue.get()
            job = self._jobs.get(uid)
            if job is not None and not job.finished:
                await self._sync(job)

    # ------------------------------------------------------------ one sync
    async def _sync(self, job: _Job) -> None:
        body = self.server.store.get("batch", "jobs", job.namespace, job.name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        spec = body.get("spec", {})
        pods = self.server.store.list("", "pods", job.namespace, owner=job.uid)
        verdict = self._count(job, spec, pods)
        active = [p for p in pods if p.get("status", {}).get("phase") not in TERMINAL]
        deadline = spec.get("activeDeadlineSeconds")
        if verdict is None and deadline is not None and _clock() - job.started >= deadline:
            verdict = ("DeadlineExceeded", "Job was active longer than specified deadline")
        per_index = spec.get("backoffLimitPerIndex") is not None
        if verdict is None and job.failed > int(
            spec.get("backoffLimit", MAX_INT32 if per_index else 6)
        ):
            verdict = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        if verdict is None and per_index:
            verdict = _index_verdict(job, spec)
        complete = verdict is None and self._complete(job, spec)
        if verdict is None and not complete:
            active += await self._create(job, body, active)
        if verdict is not None:
            for pod in active:
                metadata = pod["metadata"]
                await self.server.store.delete("", "pods", job.namespace, metadata["name"])
            active = []
        await self._write_status(job, body, active, verdict, complete)

    def _count(
        self, job: _Job, spec: dict[str, Any], pods: list[dict[str, Any]]
    ) -> tuple[str, str] | None:
        """Count newly ended pods; a `FailJob` match gives the Job's failure."""
        verdict = None
        for pod in pods:
            name, phase = pod["metadata"]["name"], pod.get("status", {}).get("phase")
            if phase not in TERMINAL or name in job.counted:
                continue
            job.counted.add(name)
            if phase == "Succeeded":
                job.succeeded += 1
                index = pod["metadata"].get("annotations", {}).get(INDEX)
                if index is not None:
                    job.indexes.add(int(index))
                continue
            action, rule = _policy(spec.get("podFailurePolicy"), pod)
            if action == "Ignore":
                continue
            job.failed += 1
            if action == "FailJob" and verdict is None:
                verdict = ("PodFailurePolicy", _policy_message(pod, rule))
            index = pod["metadata"].get("annotations", {}).get(INDEX)
            limit = spec.get("backoffLimitPerIndex")
            if index is not None and limit is not None:
                failures = job.index_failures[int(index)] = (
                    job.index_failures.get(int(index), 0) + 1
                )
                if action == "FailIndex" or failures > int(limit):
                    job.failed_indexes.add(int(index))
        return verdict

    def _complete(self, job: _Job, spec: dict[str, Any]) -> bool:
        completions = int(spec.get("completions") or 1)
        if spec.get("completionMode") == "Indexed":
            return job.indexes >= set(range(completions))
        return job.succeeded >= completions

    async def _create(
        self, job: _Job, body: dict[str, Any], active: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        spec = body["spec"]
        completions = int(spec.get("completions") or 1)
        parallelism = int(spec.get("parallelism") or 1)
        room = min(parallelism, completions) - len(active)
        wanted: list[int | None]
        if spec.get("completionMode") == "Indexed":
            running = {int(p["metadata"].get("annotations", {}).get(INDEX, -1)) for p in active}
            done = job.indexes | job.failed_indexes | running
            free = [i for i in range(completions) if i not in done]
            wanted = list(free[: max(room, 0)])
        else:
            left = completions - job.succeeded - len(active)
            wanted = [None] * max(min(room, left), 0)
        created = []
        for index in wanted:
            pod = _pod(body, index)
            created.append(await self.server.store.create("", "pods", pod))
            job.created += 1
        return created

    async def _write_status(
        self,
        job: _Job,
        body: dict[str, Any],
        active: list[dict[str, Any]],
        verdict: tuple[str, str] | None,
        complete: bool,
    ) -> None:
        spec = body["spec"]
        old = body.get("status", {})
        status: dict[str, Any] = {
            "startTime": old.get("startTime") or now(),
            "active": len(active),
            "ready": sum(_ready(p) for p in active),
            "succeeded": job.succeeded,
            "failed": job.failed,
        }
        if spec.get("completionMode") == "Indexed":
            status["completedIndexes"] = _intervals(sorted(job.indexes))
        if spec.get("backoffLimitPerIndex") is not None:
            status["failedIndexes"] = _intervals(sorted(job.failed_indexes))
        if verdict is not None or complete:
            job.finished = True
            kind, reason, message = (
                ("Failed", *verdict) if verdict is not None else ("Complete", None, None)
            )
            condition: dict[str, Any] = {
                "type": kind,
                "status": "True",
                "lastTransitionTime": now(),
            }
            if reason is not None:
                condition.update(reason=reason, message=message)
            status["conditions"] = [condition]
            if complete:
                status["completionTime"] = now()
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None:
                loop = asyncio.get_running_loop()
                self._timers.append(loop.call_later(float(ttl), self._expire, job))
        if status == old:
            return
        body["status"] = status
        await self.server.store.replace("batch", "jobs", body)

    def _expire(self, job: _Job) -> None:
        delete = self.server.store.delete("batch", "jobs", job.namespace, job.name, "Background")
        task = asyncio.get_running_loop().create_task(delete)
        task.add_done_callback(lambda _: None)


def _index_verdict(job: _Job, spec: dict[str, Any]) -> tuple[str, str] | None:
    """With `backoffLimitPerIndex`: the Job's failure once its failed indexes decide it."""
    most = spec.get("maxFailedIndexes")
    if most is not None and len(job.failed_indexes) > int(most):
        return (
            "MaxFailedIndexesExceeded",
            "Job has exceeded the specified maximal number of failed indexes",
        )
    completions = int(spec.get("completions") or 1)
    if job.failed_indexes and job.indexes | job.failed_indexes >= set(range(completions)):
        return ("FailedIndexes", "Job has failed indexes")
    return None


def _clock() -> float:
    return asyncio.get_running_loop().time()


def _pod(job: dict[str, Any], index: int | None) -> dict[str, Any]:
    """A pod for `job` (and completion `index`) from its template."""
    metadata = job["metadata"]
    template = copy.deepcopy(job["spec"]["template"])
    name, uid = metadata["name"], metadata["uid"]
    labels = dict(template.get("metadata", {}).get("labels") or {})
    labels.update(
        {
            "job-name": name,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "batch.kubernetes.io/controller-uid": uid,
        }
    )
    annotations = dict(template.get("metadata", {}).get("annotations") or {})
    spec = template.get("spec", {})
    prefix = name
    if index is not None:
        labels[INDEX] = str(index)
        annotations[INDEX] = str(index)
        prefix = f"{name}-{index}"
        for container in spec.get("containers", []):
            env = container.setdefault("env", [])
            env.append(
                {
                    "name": "JOB_COMPLETION_INDEX",
                    "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX}']"}},
                }
            )
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{prefix}-{secrets.token_hex(3)[:5]}",
            "namespace": metadata.get("namespace"),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner],
        },
        "spec": spec,
        "status": {"phase": "Pending"},
    }


def _policy(policy: dict[str, Any] | None, pod: dict[str, Any]) -> tuple[str | None, int]:
    """The action of the first `podFailurePolicy` rule a failed pod matches, and its index."""
    for number, rule in enumerate((policy or {}).get("rules", [])):
        if _matches(rule, pod):
            return rule.get("action"), number
    return None, -1


def _matches(rule: dict[str, Any], pod: dict[str, Any]) -> bool:
    status = pod.get("status", {})
    codes = rule.get("onExitCodes")
    if codes is not None:
        values = set(codes.get("values", []))
        for container in status.get("containerStatuses", []):
            if codes.get("containerName") not in (None, container.get("name")):
                continue
            code = container.get("state", {}).get("terminated", {}).get("exitCode")
            if code is None or code == 0:
                continue
            if (code in values) == (codes.get("operator", "In") == "In"):
                return True
        return False
    wanted = rule.get("onPodConditions") or []
    conditions = {(c.get("type"), c.get("status")) for c in status.get("conditions", [])}
    return any((w.get("type"), w.get("status", "True")) in conditions for w in wanted)


def _policy_message(pod: dict[str, Any], rule: int) -> str:
    metadata = pod["metadata"]
    where = f"{metadata.get('namespace')}/{metadata['name']}"
    for container in pod.get("status", {}).get("containerStatuses", []):
        code = container.get("state", {}).get("terminated", {}).get("exitCode")
        if code:
            return (
                f"Container {container.get('name')} for pod {where} failed with exit code"
                f" {code} matching FailJob rule at index {rule}"
            )
    return f"Pod {where} has condition matching FailJob rule at index {rule}"


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _intervals(indexes: list[int]) -> str:
    """Sorted indexes as the Job writes them: "0,2-4"."""
    parts: list[str] = []
    start = previous = None
    for index in [*indexes, None]:
        if previous is not None and index == previous + 1:
            previous = index
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = index
    return ",".join(parts)

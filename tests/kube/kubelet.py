"""`FakeKubelet`: runs the emulated cluster's pods as real processes of this tool.

A pod that appears in the `ApiServer` is scheduled, its container "created" and then run as
`python -m nimbus_scenarios ARGS` (this interpreter, `sys.executable`), ARGS being the
container's `command[1:]` (when `command` is given, its first item stands for the image's
entrypoint) followed by its `args`:

- its environment is the test process's (without OTLP or cluster settings, as
  `tests/support/cli.py`'s `child_env`) plus the container's `env`: plain values, and
  downward-API `fieldRef`s (`metadata.name`, `metadata.namespace`, `metadata.uid`,
  `metadata.labels['k']`, `metadata.annotations['k']`, `spec.nodeName`, `status.podIP`);
- every volume mount becomes a directory under the kubelet's root: a `configMap` volume holds
  the ConfigMap's keys (or its `items`) as files, any other volume starts empty. A process cannot
  see `/scenarios`, so every argument and env value that is a mount path, starts with one
  followed by `/`, or holds one after `=` (`--results=/out/r.json`) is rewritten to the
  directory;
- its working directory is a fresh directory of its own; stdout and stderr together become the
  pod log (`pods/log`), line by line;
- it reaches the API server as a real pod does with its in-cluster config: when the kubelet
  knows the server's URL (`api_url`), it writes a kubeconfig for the pod (context `emulated`,
  namespace the pod's, `kubeconfig_file`) and sets `KUBECONFIG` to it.

On exit the pod becomes Succeeded (0) or Failed, with `state.terminated` (exit code, reason
Completed, Error or OOMKilled). Deleting the pod ends its process (SIGTERM to its process group,
then SIGKILL after the pod's grace period, at most `grace_s`).

Scripted outcomes, by image name: `missing/...` is never pulled (`ErrImagePull`, then
`ImagePullBackOff`, for ever); `unschedulable/...` is never scheduled (`PodScheduled=False`,
reason `Unschedulable`). On a running pod, `evict(ns, name)` ends it as the kubelet's eviction
does (phase Failed, reason Evicted, a `DisruptionTarget` condition) and `oom_kill(ns, name)`
kills its container as the kernel's OOM killer does (exit 137, reason OOMKilled).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.kube.apiserver import ApiServer
from tests.kube.podlog import PodLog
from tests.kube.store import now
from tests.support.cli import child_env

NODE = "emulated-node"
POD_IP = "127.0.0.1"
MISSING = "missing/"
UNSCHEDULABLE = "unschedulable/"
UNSCHEDULABLE_MESSAGE = "0/1 nodes are available: 1 Insufficient cpu."
CONTEXT = "emulated"


def kubeconfig_file(url: str, directory: Path, namespace: str = "default") -> Path:
    """A kubeconfig whose current context (`emulated`) points at `url` in `namespace`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": url}}],
        "users": [{"name": "runner", "user": {"token": "emulated-token"}}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": "emulator", "user": "runner", "namespace": namespace},
            }
        ],
        "current-context": CONTEXT,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "kubeconfig.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@dataclass
class PodRun:
    """One container process the kubelet started, and how it ended."""

    namespace: str
    pod: str
    pid: int
    args: list[str]
    env: dict[str, str]
    workdir: Path
    returncode: int | None = None
    oom: bool = False
    evicted: bool = False
    deleted: bool = False


@dataclass
class _Pod:
    task: asyncio.Task[None]
    run: PodRun | None = None
    process: asyncio.subprocess.Process | None = None
    grace_s: float = 2.0
    done: asyncio.Event = field(default_factory=asyncio.Event)


class FakeKubelet:
    """Runs every pod that appears on `server` (see the module docstring)."""

    def __init__(
        self,
        server: ApiServer,
        root: Path,
        *,
        api_url: str | None = None,
        start_delay_s: float = 0.05,
        pull_backoff_s: float = 0.3,
        grace_s: float = 5.0,
    ) -> None:
        self.server = server
        self.root = root
        self.api_url = api_url
        self.start_delay_s = start_delay_s
        self.pull_backoff_s = pull_backoff_s
        self.grace_s = grace_s
        self.runs: list[PodRun] = []
        self._pods: dict[tuple[str, str], _Pod] = {}
        server.state.listeners.append(self._on_change)

    # ------------------------------------------------------------ scripted faults
    def evict(self, namespace: str, name: str) -> None:
        """End a running pod as the kubelet's eviction does (phase Failed, reason Evicted)."""
        pod = self._running(namespace, name)
        assert pod.run is not None
        pod.run.evicted = True
        self._signal(pod, signal.SIGKILL)

    def oom_kill(self, namespace: str, name: str) -> None:
        """Kill a running pod's container as the OOM killer does (exit 137, OOMKilled)."""
        pod = self._running(namespace, name)
        assert pod.run is not None
        pod.run.oom = True
        self._signal(pod, signal.SIGKILL)

    def _running(self, namespace: str, name: str) -> _Pod:
        pod = self._pods.get((namespace, name))
        if pod is None or pod.process is None or pod.process.returncode is not None:
            raise LookupError(f"pod {namespace}/{name} has no running container")
        return pod

    # ------------------------------------------------------------ lifecycle
    def _on_change(self, group: str, plural: str, kind: str, body: dict[str, Any]) -> None:
        if (group, plural) != ("", "pods"):
            return
        metadata = body["metadata"]
        key = (metadata.get("namespace") or "", metadata["name"])
        if kind == "ADDED" and key not in self._pods:
            task = asyncio.get_running_loop().create_task(self._live(key, body))
            self._pods[key] = _Pod(task)
        elif kind == "DELETED" and key in self._pods:
            self._stop(self._pods[key])

    def _stop(self, pod: _Pod) -> None:
        """The pod was deleted: end its process, or stop waiting to start it."""
        if pod.run is not None:
            pod.run.deleted = True
        if pod.process is None or pod.process.returncode is not None:
            pod.task.cancel()
            return
        self._signal(pod, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        loop.call_later(pod.grace_s, self._signal, pod, signal.SIGKILL)

    def _signal(self, pod: _Pod, sig: signal.Signals) -> None:
        if pod.process is not None and pod.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pod.process.pid, sig)

    async def aclose(self) -> None:
        """Kill every container still running and wait for every pod task."""
        with contextlib.suppress(ValueError):
            self.server.state.listeners.remove(self._on_change)
        for pod in self._pods.values():
            self._signal(pod, signal.SIGKILL)
            if pod.process is None:
                pod.task.cancel()
        tasks = [pod.task for pod in self._pods.values()]
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)

    async def _live(self, key: tuple[str, str], body: dict[str, Any]) -> None:
        """A pod's life: scheduled, image pulled, container run, terminated."""
        container = body["spec"]["containers"][0]
        image: str = container.get("image", "")
        await asyncio.sleep(self.start_delay_s)
        if image.startswith(UNSCHEDULABLE):
            scheduled = _condition("PodScheduled", "False", "Unschedulable", UNSCHEDULABLE_MESSAGE)
            await self._status(key, {"phase": "Pending", "conditions": [scheduled]})
            return
        body["spec"]["nodeName"] = NODE
        conditions = [_condition("PodScheduled", "True")]
        waiting = _waiting(container, "ContainerCreating")
        await self._status(
            key,
            {"phase": "Pending", "conditions": conditions, "containerStatuses": [waiting]},
            node=True,
        )
        if image.startswith(MISSING):
            await self._never_pulled(key, container, conditions)
            return
        await asyncio.sleep(self.start_delay_s)
        try:
            await self._run(key, body, container, conditions)
        except ValueError as exc:  # a container this kubelet cannot start: say so, as a real one
            waiting = _waiting(container, "CreateContainerConfigError", str(exc))
            status = {"phase": "Pending", "conditions": conditions, "containerStatuses": [waiting]}
            await self._status(key, status)

    async def _never_pulled(
        self, key: tuple[str, str], container: dict[str, Any], conditions: list[dict[str, Any]]
    ) -> None:
        message = f'Failed to pull image "{container.get("image")}": not found'
        for reason in ("ErrImagePull", "ImagePullBackOff"):
            waiting = _waiting(container, reason, message)
            status = {"phase": "Pending", "conditions": conditions, "containerStatuses": [waiting]}
            await self._status(key, status)
            await asyncio.sleep(self.pull_backoff_s)

    async def _run(
        self,
        key: tuple[str, str],
        body: dict[str, Any],
        container: dict[str, Any],
        conditions: list[dict[str, Any]],
    ) -> None:
        namespace, name = key
        base = self.root / namespace / name
        mounts = await self._volumes(base, body, container)
        env = _environment(body, container, mounts)
        if self.api_url is not None:
            env["KUBECONFIG"] = str(kubeconfig_file(self.api_url, base / "kube", namespace))
        command = list(container.get("command") or ["nimbus-scenarios"])
        args = [_rewrite(arg, mounts) for arg in [*command[1:], *container.get("args", [])]]
        workdir = base / "cwd"
        workdir.mkdir(parents=True, exist_ok=True)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "nimbus_scenarios",
            *args,
            cwd=workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        pod = self._pods[key]
        pod.process = process
        pod.grace_s = min(
            float(body["spec"].get("terminationGracePeriodSeconds", 30)), self.grace_s
        )
        run = PodRun(namespace, name, process.pid, args, env, workdir)
        pod.run = run
        self.runs.append(run)
        log = PodLog()
        self.server.state.logs[key] = log
        started = now()
        ready = [*conditions, _condition("Initialized", "True"), _condition("Ready", "True")]
        running = _state(container, {"running": {"startedAt": started}}, ready=True)
        await self._status(
            key,
            {"phase": "Running", "conditions": ready, "containerStatuses": [running]},
            started=started,
        )
        assert process.stdout is not None
        await _pump(process.stdout, log)
        code = await process.wait()
        run.returncode = code
        log.end()
        if run.deleted:
            return
        await self._terminated(key, container, conditions, run, code, started)

    async def _terminated(
        self,
        key: tuple[str, str],
        container: dict[str, Any],
        conditions: list[dict[str, Any]],
        run: PodRun,
        code: int,
        started: str,
    ) -> None:
        exit_code = 128 - code if code < 0 else code  # killed by signal N: 128 + N
        reason = "Completed" if exit_code == 0 else "Error"
        if run.oom:
            reason = "OOMKilled"
        terminated = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": started,
            "finishedAt": now(),
        }
        if run.evicted:
            terminated["reason"] = "ContainerStatusUnknown"
        done = [*conditions, _condition("Ready", "False", "PodCompleted")]
        status: dict[str, Any] = {
            "phase": "Succeeded" if exit_code == 0 and not run.evicted else "Failed",
            "conditions": done,
            "containerStatuses": [_state(container, {"terminated": terminated})],
        }
        if run.evicted:
            message = "The node was low on resource: memory."
            status.update(reason="Evicted", message=message)
            status["conditions"] = [
                *done,
                _condition("DisruptionTarget", "True", "TerminationByKubelet", message),
            ]
        await self._status(key, status)

    async def _volumes(
        self, base: Path, body: dict[str, Any], container: dict[str, Any]
    ) -> dict[str, Path]:
        """Each mount path → its directory, with configMap volumes written out."""
        volumes = {v["name"]: v for v in body["spec"].get("volumes", [])}
        namespace = body["metadata"].get("namespace")
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts", []):
            directory = base / "volumes" / mount["name"]
            directory.mkdir(parents=True, exist_ok=True)
            source = volumes.get(mount["name"], {}).get("configMap")
            if source is not None:
                config = self.server.store.get("", "configmaps", namespace, source["name"])
                data: Mapping[str, str] = (config or {}).get("data") or {}
                items = source.get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    target = directory / item["path"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(data.get(item["key"], ""), encoding="utf-8")
            mounts[mount["mountPath"].rstrip("/")] = directory
        return mounts

    async def _status(
        self,
        key: tuple[str, str],
        status: dict[str, Any],
        *,
        node: bool = False,
        started: str | None = None,
    ) -> None:
        """Write the pod's status (and its node once scheduled), if it still exists."""
        namespace, name = key
        body = self.server.store.get("", "pods", namespace, name)
        if body is None:
            return
        old = body.get("status", {})
        status = {"startTime": old.get("startTime") or now(), **status}
        if node or "hostIP" in old:
            body["spec"]["nodeName"] = NODE
            status.update(hostIP=POD_IP, podIP=POD_IP)
        if started is not None:
            status["startTime"] = old.get("startTime") or started
        body["status"] = status
        await self.server.store.replace("", "pods", body)


async def _pump(stream: asyncio.StreamReader, log: PodLog) -> None:
    """Copy the process's output into the log, line by line, however long a line is."""
    partial = b""
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            break
        *lines, partial = (partial + chunk).split(b"\n")
        for line in lines:
            log.write(line.decode("utf-8", "replace"))
    if partial:
        log.write(partial.decode("utf-8", "replace"))


def _environment(
    body: dict[str, Any], container: dict[str, Any], mounts: Mapping[str, Path]
) -> dict[str, str]:
    env = child_env()
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = _rewrite(str(item["value"]), mounts)
        elif "fieldRef" in item.get("valueFrom", {}):
            env[item["name"]] = _field(body, item["valueFrom"]["fieldRef"]["fieldPath"])
    return env


_SUBSCRIPT = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]")


def _field(body: dict[str, Any], path: str) -> str:
    """A downward-API `fieldRef` value."""
    metadata = body["metadata"]
    match = _SUBSCRIPT.fullmatch(path)
    if match:
        return str((metadata.get(match[1]) or {}).get(match[2], ""))
    simple = {
        "metadata.name": metadata.get("name"),
        "metadata.namespace": metadata.get("namespace"),
        "metadata.uid": metadata.get("uid"),
        "spec.nodeName": NODE,
        "spec.serviceAccountName": body["spec"].get("serviceAccountName", "default"),
        "status.podIP": POD_IP,
        "status.hostIP": POD_IP,
    }
    if path not in simple:
        raise ValueError(f"fieldRef {path!r} is not emulated")
    return str(simple[path] or "")


def _rewrite(value: str, mounts: Mapping[str, Path]) -> str:
    """`value` with a leading mount path (alone, or after `=`) turned into its directory."""
    prefix, equals, rest = value.partition("=")
    if equals and rest.startswith("/"):
        return f"{prefix}={_rewrite(rest, mounts)}"
    for mount, directory in mounts.items():
        if value == mount or value.startswith(f"{mount}/"):
            return str(directory) + value[len(mount) :]
    return value


def _condition(
    kind: str, status: str, reason: str | None = None, message: str | None = None
) -> dict[str, Any]:
    condition = {"type": kind, "status": status, "lastTransitionTime": now()}
    if reason is not None:
        condition["reason"] = reason
    if message is not None:
        condition["message"] = message
    return condition


def _state(
    container: dict[str, Any], state: dict[str, Any], *, ready: bool = False
) -> dict[str, Any]:
    return {
        "name": container.get("name", ""),
        "image": container.get("image", ""),
        "imageID": "" if "waiting" in state else f"emulated://{container.get('image', '')}",
        "ready": ready,
        "started": "running" in state,
        "restartCount": 0,
        "state": state,
    }


def _waiting(container: dict[str, Any], reason: str, message: str | None = None) -> dict[str, Any]:
    waiting = {"reason": reason} if message is None else {"reason": reason, "message": message}
    return _state(container, {"waiting": waiting})

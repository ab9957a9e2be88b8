"""An emulated cluster that runs Jobs: `ApiServer` (kmock, `apiserver.py`) with the Job
controller (`jobs.py`) and the kubelet (`kubelet.py`) on its loop, so a Job's pods run this
tool for real (`python -m nimbus_scenarios ARGS`) and serve its output as their log.

Two ways to have one:

- `async with emulated_cluster(root) as cluster:` on the test's own loop (the official client
  must then be called off the loop, with `asyncio.to_thread`), for the emulator's own tests;
- `ClusterThread(root).start()` on a loop in a thread of its own, with `kubeconfig(dir)`
  pointing at it, for tests that drive blocking code or a child process (`submit`); the
  `kube_cluster` fixture of `tests/conftest.py` is one, stopped after the test.

The namespace is not checked: any namespace works. The run's target is whatever URL the Job's
arguments name, such as a loopback `tests/support/http.py` `HttpServer`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import kmock
from kubernetes import client as k8s

from tests.kube.apiserver import ApiServer, api_client, close
from tests.kube.jobs import JobController
from tests.kube.kubelet import FakeKubelet, PodRun, kubeconfig_file
from tests.support.http import LoopThread

T = TypeVar("T")


@dataclass
class EmulatedCluster:
    """A running emulated cluster: the API server, its controllers and a client to it."""

    server: ApiServer
    http: kmock.Server
    api: k8s.ApiClient
    jobs: JobController
    kubelet: FakeKubelet

    @property
    def url(self) -> str:
        """The API server's base URL (plain HTTP on 127.0.0.1)."""
        return str(self.http.url).rstrip("/")


@contextlib.asynccontextmanager
async def emulated_cluster(root: Path, **kubelet: Any) -> AsyncIterator[EmulatedCluster]:
    """A cluster on the running loop for the block; pods work under `root`. `kubelet` options
    go to `FakeKubelet` (`start_delay_s`, `pull_backoff_s`, `grace_s`)."""
    async with ApiServer() as server, kmock.Server(server) as http:
        jobs = JobController(server)
        pods = FakeKubelet(server, root, api_url=str(http.url).rstrip("/"), **kubelet)
        cluster = EmulatedCluster(server, http, api_client(str(http.url)), jobs, pods)
        try:
            yield cluster
        finally:
            await jobs.aclose()
            await pods.aclose()
            server.drop_watches(abrupt=False)
            close(cluster.api)


class ClusterThread:
    """An emulated cluster on its own loop in a thread; every method may be called from the
    test's thread."""

    def __init__(self, root: Path, **kubelet: Any) -> None:
        self._root = root
        self._kubelet = kubelet
        self._thread = LoopThread("kube-cluster")
        self._stack = contextlib.AsyncExitStack()
        self.cluster: EmulatedCluster | None = None
        self.url = ""

    async def _start(self) -> str:
        self.cluster = await self._stack.enter_async_context(
            emulated_cluster(self._root, **self._kubelet)
        )
        return self.cluster.url

    def start(self) -> ClusterThread:
        """Start serving; `url` is set."""
        self.url = self._thread.call(self._start())
        return self

    def stop(self) -> None:
        """Kill every pod still running, stop serving and end the thread; idempotent."""
        if self._thread.closed:
            return
        try:
            self._thread.call(self._stack.aclose(), 30)
        finally:
            self._thread.close()

    def kubeconfig(self, directory: Path, namespace: str = "default") -> Path:
        """A kubeconfig file pointing at this cluster (context `emulated`, in `namespace`)."""
        return kubeconfig_file(self.url, directory, namespace)

    def on_loop(self, action: Callable[[EmulatedCluster], T]) -> T:
        """Run `action(cluster)` on the cluster's loop; its result."""

        async def act() -> T:
            assert self.cluster is not None
            return action(self.cluster)

        return self._thread.call(act())

    # -- what tests script and read
    def deny(self, verb: str, group: str, resource: str) -> None:
        """403 for `verb` on `group`/`resource` (`pods/log` for logs); reviews agree."""
        self.on_loop(lambda c: c.server.deny(verb, group, resource))

    def evict(self, namespace: str, pod: str) -> None:
        """Evict a running pod (phase Failed, reason Evicted)."""
        self.on_loop(lambda c: c.kubelet.evict(namespace, pod))

    def oom_kill(self, namespace: str, pod: str) -> None:
        """OOM-kill a running pod's container (exit 137, reason OOMKilled)."""
        self.on_loop(lambda c: c.kubelet.oom_kill(namespace, pod))

    def objects(
        self, group: str, plural: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Copies of the live objects of a kind (`("batch", "jobs")`, `("", "pods")`, ...)."""
        return self.on_loop(lambda c: c.server.store.list(group, plural, namespace))

    def creates(self, plural: str) -> int:
        """How many create requests for `plural` came over HTTP (a second, refused one too)."""
        return self.on_loop(
            lambda c: sum(
                r.action == kmock.action.CREATE
                and r.resource is not None
                and r.resource.plural == plural
                for r in c.server  # kmock's Root iterates its requests
            )
        )

    def runs(self) -> list[PodRun]:
        """Every container process started so far, with how it ended (`returncode`)."""
        return self.on_loop(lambda c: list(c.kubelet.runs))

    def pods_created(self, namespace: str, job: str) -> int:
        """How many pods the Job controller has created for a Job."""
        return self.on_loop(lambda c: c.jobs.pods_created(namespace, job))

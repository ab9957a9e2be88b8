"""The fault matrix's fixtures: the recording target (`server`), and the Kubernetes API
emulator only these tests need (`kube`): `KubeApi` runs `tests/kube/apiserver.py`'s emulator on
its own loop in a thread, with one Deployment `default/consumer` whose status the test writes
the way a controller would, and writes a kubeconfig file pointing at it. The OTLP/HTTP sink is
`tests/support/otlp.py`'s.

Every case runs `python -m nimbus_scenarios run ...` end to end with `tests/support/cli.py`
(`run_cli`, or `Child` when the test acts while it runs) and makes the checks every case shares
with its `assert_outcome`: the exit code, the verdict, a results file that loads strictly as a
results document, counts that reconcile and no traceback. The targets that misbehave on cue are
`tests/support/http.py`'s `HttpServer` (slow, failing, or no longer listening) and
`ResetServer` (connections reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import kmock
import pytest

from tests.kube.apiserver import ApiServer
from tests.kube.support import deployment
from tests.support.http import HttpServer, LoopThread

T = TypeVar("T")


@pytest.fixture
def server() -> Iterator[HttpServer]:
    """A recording target server for one test."""
    target = HttpServer().start()
    yield target
    target.stop()


# ---------------------------------------------------------------- the Kubernetes API emulator
NAMESPACE = "default"
DEPLOYMENT = "consumer"
CONTEXT = "faults"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
CONSUMER = f"{DEPLOYMENTS}/{DEPLOYMENT}"


def deployment_object(replicas: int = 1, ready: int = 1) -> dict[str, Any]:
    """The watched Deployment as the API stores it, with status written by its controller."""
    return deployment(DEPLOYMENT, replicas=replicas, ready=ready, namespace=NAMESPACE)


class KubeApi:
    """`ApiServer` (kmock) on 127.0.0.1, on its own loop in a thread, serving one Deployment."""

    def __init__(self) -> None:
        self._thread = LoopThread("kube-api")
        self._stack = contextlib.AsyncExitStack()
        self.api: ApiServer | None = None
        self._http: kmock.Server | None = None
        self.url = ""
        self.down = False

    # -- lifecycle
    async def _start(self) -> str:
        self.api = await self._stack.enter_async_context(ApiServer())
        self._http = await self._stack.enter_async_context(kmock.Server(self.api))
        await self._write("post", DEPLOYMENTS, deployment_object())
        return str(self._http.url).rstrip("/")

    def start(self) -> KubeApi:
        """Start serving; `url` is the API server's base URL."""
        self.url = self._thread.call(self._start())
        return self

    async def _close(self, *, dead: bool) -> None:
        assert self.api is not None
        if dead:
            await self.api.go_down()
            await asyncio.sleep(0.05)
        else:
            self.api.drop_watches(abrupt=False)
        await self._stack.aclose()

    def go_down(self) -> None:
        """Die: cut every watch and stop listening (new connections are refused)."""
        if not self.down:
            self.down = True
            self._thread.call(self._close(dead=True))

    def stop(self) -> None:
        """Shut down (if still up) and end the thread."""
        if not self.down and not self._thread.loop.is_closed():
            self.down = True
            with contextlib.suppress(Exception):
                self._thread.call(self._close(dead=False))
        self._thread.close()

    def kubeconfig(self, directory: Path) -> Path:
        """A kubeconfig file whose context `faults` points at this server (namespace default)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "runner", "user": {"token": "faults-token"}}],
            "contexts": [
                {
                    "name": CONTEXT,
                    "context": {"cluster": "emulator", "user": "runner", "namespace": NAMESPACE},
                }
            ],
            "current-context": CONTEXT,
        }
        path = directory / "kubeconfig.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        return path

    # -- acting like the controllers
    async def _write(self, method: str, path: str, body: dict[str, Any]) -> None:
        assert self._http is not None
        async with self._http.client.request(method, path, json=body) as response:
            assert response.status < 300, await response.text()

    def scale(self, *, replicas: int | None = None, ready: int | None = None) -> None:
        """Write what the HPA (`spec.replicas`) and the Deployment controller (status) would."""
        if replicas is not None:
            self._thread.call(self._write("patch", CONSUMER, {"spec": {"replicas": replicas}}))
        status = {"replicas": replicas, "readyReplicas": ready}
        status = {k: v for k, v in status.items() if v is not None}
        if status:
            self._thread.call(self._write("patch", f"{CONSUMER}/status", {"status": status}))

    # -- faults
    def _on_loop(self, action: Callable[[ApiServer], T]) -> T:
        async def act() -> T:
            assert self.api is not None
            return action(self.api)

        return self._thread.call(act())

    def deny(self, verb: str, group: str, resource: str) -> None:
        """Answer 403 to `verb` on `group`/`resource` (and say so in access reviews)."""
        self._on_loop(lambda api: api.deny(verb, group, resource))

    def hold_watches(self) -> None:
        """Hold new watch requests until `release_watches`."""
        self._on_loop(lambda api: api.watch_gate.clear())

    def release_watches(self) -> None:
        """Let held watch requests through."""
        self._on_loop(lambda api: api.watch_gate.set())

    def drop_watches(self, *, abrupt: bool = True) -> int:
        """Cut (or cleanly end) every open watch stream; how many there were."""
        return self._on_loop(lambda api: api.drop_watches(abrupt=abrupt))

    def compact(self) -> None:
        """Forget history: a watch from an older resourceVersion gets 410 Gone."""
        self._on_loop(lambda api: api.compact())

    def silence_watches(self) -> int:
        """Hold every open watch open, sending nothing more; how many there were."""
        return self._on_loop(lambda api: api.silence_watches())

    @property
    def open_watches(self) -> int:
        """Watch streams open now."""
        return self._on_loop(lambda api: api.open_watches)

    def watches(self) -> list[dict[str, str]]:
        """The query parameters of every watch request so far."""
        return self._on_loop(lambda api: [dict(p) for p in api.state.watch_params])

    def deployment_gets(self) -> int:
        """How many times the Deployment was read by name (the run's freshness proofs)."""
        return self._on_loop(lambda api: api.state.fetches.count(("deployments", DEPLOYMENT)))

    def deployment_lists(self) -> int:
        """How many times the Deployment was listed (the first sample, and each relist)."""
        selector = f"metadata.name={DEPLOYMENT}"
        return self._on_loop(
            lambda api: sum(p.get("fieldSelector") == selector for p in api.state.list_params)
        )


@pytest.fixture
def kube() -> Iterator[KubeApi]:
    """A running emulated Kubernetes API with Deployment `default/consumer` (1 of 1 ready)."""
    api = KubeApi().start()
    yield api
    api.stop()

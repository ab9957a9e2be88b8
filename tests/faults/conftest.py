"""The fault matrix's tools: the CLI as a child process, loopback servers that misbehave on cue,
a Kubernetes API emulator in a thread, and the checks every case makes.

Every case runs `python -m nimbus_scenarios run ...` end to end (`run_cli`, or `Child` when the
test must signal it) against servers on 127.0.0.1 that this module starts and stops:

- `RecordingServer` (the shared recording server with request headers kept) answers by path
  (`/delay/MS`, `/status/CODE`, `/flaky/MS`, anything else 200) and can stop listening mid-run;
- `ResetServer` is a raw asyncio TCP server: it answers `GET /` (the pre-flight) and resets every
  other connection without a byte of answer;
- `OtlpSink` (from `tests.support.otlp`, re-exported here) accepts OTLP/HTTP exports and keeps
  their raw bodies;
- `KubeApi` runs `tests/kube/apiserver.py`'s emulator on its own loop in a thread, with one
  Deployment `default/consumer` whose status the test writes the way a controller would, and
  writes a kubeconfig file pointing at it.

`assert_outcome` makes the checks every case shares: the exit code, the verdict, a results file
that loads strictly as a results document, counts that reconcile (`assert_reconciles`) and no
traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import kmock
import pytest
from aiohttp import web

from tests.conftest import HttpServer
from tests.kube.apiserver import ApiServer
from tests.support.checks import read_results
from tests.support.otlp import OtlpSink  # noqa: F401 - re-exported: cases import tools from here

REPO = Path(__file__).resolve().parents[2]
TRACEBACK = "Traceback (most recent call last)"
COUNTERS = ("scheduled", "sent", "dropped", "succeeded", "failed")
T = TypeVar("T")


# ---------------------------------------------------------------- the CLI as a child
@dataclass(frozen=True, slots=True)
class Finished:
    """A finished CLI process: exit code, output and how long it ran."""

    code: int
    stdout: str
    stderr: str
    elapsed_s: float


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without OTLP or cluster settings, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k not in {"KUBERNETES_SERVICE_HOST", "KUBECONFIG"}
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def cli(*args: str) -> list[str]:
    """The command line of `python -m nimbus_scenarios ARGS`."""
    return [sys.executable, "-m", "nimbus_scenarios", *args]


def run_cli(*args: str, env: Mapping[str, str] | None = None, timeout_s: float = 90.0) -> Finished:
    """Run the CLI to its end (killed after `timeout_s`); its exit code and output."""
    with Child(*args, env=env) as child:
        return child.finish(timeout_s)


class Child:
    """The CLI as a running child process, for tests that signal it or act while it runs."""

    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            cli(*args),
            cwd=REPO,
            env=child_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()  # only this child, by its own handle
            self.process.communicate()

    def running(self) -> bool:
        """Whether the child has not exited yet."""
        return self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` to the child (only if it still runs)."""
        if self.running():
            self.process.send_signal(sig)

    def finish(self, timeout_s: float = 90.0) -> Finished:
        """Wait for the exit (kill the child after `timeout_s` and fail the test)."""
        try:
            stdout, stderr = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate()
            pytest.fail(f"the run did not end within {timeout_s:g}s; stderr:\n{stderr}")
        return Finished(self.process.returncode, stdout, stderr, time.monotonic() - self.started)

    def wait_for(self, what: str, condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
        """Poll `condition` every 20 ms while the child runs; fail after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if not self.running():
                _, err = self.process.communicate()
                pytest.fail(f"the run ended before {what}:\n{err}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout_s:g}s")
            time.sleep(0.02)


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll `condition` every 20 ms for at most `timeout_s`; whether it came true."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# ---------------------------------------------------------------- checks
def assert_no_traceback(text: str) -> None:
    """No Python traceback (nor an unhandled-exception report) in a process's output."""
    assert TRACEBACK not in text, text
    assert "Task exception was never retrieved" not in text, text
    assert "Exception ignored in" not in text, text


def assert_reconciles(document: Mapping[str, Any]) -> None:
    """scheduled = sent + dropped and sent = succeeded + failed, per phase and in total, and
    the phases add up to the totals."""
    phases = list(document["phases"])
    for where, item in [("totals", document["totals"])] + [(p["name"], p) for p in phases]:
        assert item["scheduled"] == item["sent"] + item["dropped"], (where, item)
        assert item["sent"] == item["succeeded"] + item["failed"], (where, item)
        assert all(item[name] >= 0 for name in COUNTERS), (where, item)
    for name in COUNTERS:
        assert sum(p[name] for p in phases) == document["totals"][name], name


def assert_outcome(finished: Finished, results: Path, *, code: int, verdict: str) -> dict[str, Any]:
    """The checks every case makes; returns the results document."""
    assert finished.code == code, finished.stderr
    assert_no_traceback(finished.stderr)
    assert_no_traceback(finished.stdout)
    assert results.is_file(), finished.stderr
    document = read_results(results)
    assert document["exit_code"] == code
    assert document["verdict"] == verdict, document.get("error") or document.get("abort")
    assert_reconciles(document)
    return document


def expectation(document: Mapping[str, Any], text: str) -> dict[str, Any]:
    """The results entry of the expectation written as `text`."""
    found = [e for e in document["expectations"] if e["text"] == text]
    assert len(found) == 1, document["expectations"]
    entry: dict[str, Any] = found[0]
    return entry


def write_scenario(directory: Path, text: str, name: str = "case.scn") -> Path:
    """`text` as a scenario file in `directory`."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def closed_port() -> int:
    """A loopback port with nothing listening on it (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# ---------------------------------------------------------------- servers in threads
class _LoopThread:
    """An event loop running in a daemon thread; coroutines are submitted to it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 15.0) -> T:
        """Run `coroutine` on the thread's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        """Stop the loop and join the thread."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class RecordingServer(HttpServer):
    """The shared recording server, keeping each request's headers too; `stop` may come early
    (to stop listening mid-run) and is idempotent."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[dict[str, str]] = []
        self._stopped = False

    async def _handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        return await super()._handle(request)

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            super().stop()


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    """A recording target server for one test."""
    target = RecordingServer()
    target.start()
    yield target
    target.stop()


class ResetServer:
    """A raw TCP server: `GET /` gets a 200 (pre-flight passes); any other request's connection
    is reset (RST) without a byte of answer."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._thread = _LoopThread("reset-server")
        self._server: asyncio.Server | None = None
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        parts = head.split(b" ", 2)
        path = parts[1].decode("latin-1") if len(parts) > 1 else ""
        self.paths.append(path)
        if path == "/":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> ResetServer:
        """Start listening; `url` is set."""
        self.url = self._thread.call(self._start())
        return self

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def stop(self) -> None:
        """Stop listening and end the thread."""
        if not self._thread.loop.is_closed():
            with contextlib.suppress(Exception):
                self._thread.call(self._stop(), 10)
            self._thread.close()


# ---------------------------------------------------------------- the Kubernetes API emulator
NAMESPACE = "default"
DEPLOYMENT = "consumer"
CONTEXT = "faults"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
CONSUMER = f"{DEPLOYMENTS}/{DEPLOYMENT}"


def deployment_object(replicas: int = 1, ready: int = 1) -> dict[str, Any]:
    """The watched Deployment as the API stores it, with status written by its controller."""
    labels = {"app": DEPLOYMENT}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "consumer:1"}]},
            },
        },
        "status": {"replicas": replicas, "readyReplicas": ready},
    }


class KubeApi:
    """`ApiServer` (kmock) on 127.0.0.1, on its own loop in a thread, serving one Deployment."""

    def __init__(self) -> None:
        self._thread = _LoopThread("kube-api")
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

    @property
    def open_watches(self) -> int:
        """Watch streams open now."""
        return self._on_loop(lambda api: api.open_watches)

    def watches(self) -> list[dict[str, str]]:
        """The query parameters of every watch request so far."""
        return self._on_loop(lambda api: [dict(p) for p in api.state.watch_params])

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

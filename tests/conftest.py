"""Shared fixtures: a recording HTTP server on 127.0.0.1 and a helper that runs scenario text.

The server runs on its own event loop in a background thread, so it serves both in-process runs
(`asyncio.run` in the test) and `python -m nimbus_scenarios` subprocesses. Paths choose the
answer: `/delay/MS` answers 200 after MS milliseconds, `/status/CODE` answers CODE,
`/flaky/MS` answers 503 until MS milliseconds after its first request and 200 then, anything else
answers 200 at once. Every request is recorded with its arrival time (`time.monotonic`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.runner import RunOptions, RunOutcome, run_scenario

MAX_DELAY_S = 30.0


@dataclass(frozen=True, slots=True)
class Hit:
    """One request the server saw."""

    at: float
    method: str
    path: str


class HttpServer:
    """An aiohttp server on 127.0.0.1 (port 0) in a background thread, recording every request."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self._first: dict[str, float] = {}
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        self.hits.append(Hit(time.monotonic(), request.method, request.path))
        kind, _, value = request.path.strip("/").partition("/")
        if kind == "delay":
            await asyncio.sleep(min(int(value) / 1000.0, MAX_DELAY_S))
        elif kind == "status":
            return web.Response(status=int(value), text="status")
        elif kind == "flaky":
            first = self._first.setdefault(request.path, time.monotonic())
            if time.monotonic() - first < int(value) / 1000.0:
                return web.Response(status=503, text="not yet")
        return web.Response(text="ok")

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert self._runner.addresses
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def start(self) -> HttpServer:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def paths(self, prefix: str = "/") -> list[Hit]:
        """The hits whose path starts with `prefix`, in arrival order."""
        return [h for h in list(self.hits) if h.path.startswith(prefix)]


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """A fresh recording server for one test."""
    server = HttpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_server() -> Iterator[HttpServer]:
    """A recording server shared by the tests of one module."""
    server = HttpServer().start()
    yield server
    server.stop()


def run_text(text: str, url: str, *, limit_s: float = 60.0, **options: Any) -> RunOutcome:
    """Compile scenario `text` and run it against `url` in a fresh event loop."""
    plan = compile_source(Source("test.scn", text))
    run_options = RunOptions(url=url, **options)
    return asyncio.run(
        asyncio.wait_for(run_scenario(plan, run_options, scenario_text=text), limit_s)
    )


@pytest.fixture
def run() -> Callable[..., RunOutcome]:
    """`run(text, url, **RunOptions fields)`: play scenario text, return its outcome."""
    return run_text

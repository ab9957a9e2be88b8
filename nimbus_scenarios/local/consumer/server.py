"""The reference consumer's aiohttp application, its listening site and its entry point.

Its place: the `local.consumer` package, binding `api` (routes and validation), `work` (what
POST /process does) and `metrics` (what `/metrics` shows) into one service on loopback.
`ReferenceConsumer` runs it in process (the tests); `main` runs it as
`python -m nimbus_scenarios.local.consumer`, which is how `local.launch` starts the fleet's
replicas: it prints one `listening on URL` line once bound and exits 0 on SIGTERM or SIGINT.

A middleware counts every request, keeps the last incoming W3C `traceparent` headers, observes
the request metrics and answers errors as FastAPI does (JSON `detail`). A site of its own counts
accepted TCP connections, so tests can tell new connections from keep-alive reuse.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from nimbus_scenarios.local.consumer.api import (
    error_answer,
    parse_process_query,
    routes,
    validation_answer,
)
from nimbus_scenarios.local.consumer.config import ConsumerConfig
from nimbus_scenarios.local.consumer.metrics import CONTENT_TYPE, ConsumerMetrics, handler_label
from nimbus_scenarios.local.consumer.work import Work

__all__ = ["TRACEPARENT_LIMIT", "ReferenceConsumer", "main"]

_log = logging.getLogger(__name__)

TRACEPARENT_LIMIT: Final = 100
"""How many recent incoming `traceparent` values /local/traceparents keeps."""
_SHUTDOWN_TIMEOUT_S: Final = 5.0
_THREAD_JOIN_S: Final = 3.0


class _CountingSite(web.BaseSite):
    """A TCP site that counts every accepted connection (one protocol per connection)."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, on_accept: Callable[[], None]
    ) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._on_accept = on_accept
        self.bound_port = port

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.bound_port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        if server is None:
            raise RuntimeError("the runner is not set up")

        def protocol() -> asyncio.BaseProtocol:
            self._on_accept()
            return server()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(protocol, self._host, self._port)
        self.bound_port = int(self._server.sockets[0].getsockname()[1])


class ReferenceConsumer:
    """The reference consumer: build its aiohttp app, start it on loopback, stop it."""

    def __init__(self, config: ConsumerConfig | None = None) -> None:
        self.config = config if config is not None else ConsumerConfig()
        self._app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._site: _CountingSite | None = None
        self._started_at: float | None = None
        self._stopped = False
        self._work = Work(self.config.cpu_scale)
        self._metrics = ConsumerMetrics()
        self._traceparents: deque[str] = deque(maxlen=TRACEPARENT_LIMIT)
        self._requests_total = 0
        self._connections_accepted = 0

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def app(self) -> web.Application:
        """The application this consumer serves (built on first use)."""
        if self._app is None:
            self._app = self.build_app()
        return self._app

    def build_app(self) -> web.Application:
        """A new aiohttp application bound to this consumer's state."""
        app = web.Application(middlewares=[self._observe])
        app.router.add_routes(routes(self))
        return app

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT` once started."""
        if self._site is None:
            raise RuntimeError("the consumer is not started")
        return self._site.name

    @property
    def requests_total(self) -> int:
        """Requests seen by the application since start (every path and status)."""
        return self._requests_total

    @property
    def connections_accepted(self) -> int:
        """Distinct TCP connections accepted since start (keep-alive reuse does not count)."""
        return self._connections_accepted

    @property
    def connections_open(self) -> int:
        """TCP connections open right now."""
        server = None if self._runner is None else self._runner.server
        return 0 if server is None else len(server.connections)

    async def start(self) -> str:
        """Bind (port 0 picks a free port), serve, and return the base URL."""
        if self._runner is not None:
            raise RuntimeError("a ReferenceConsumer starts once; make a new one")
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT_S
        )
        await runner.setup()
        self._runner = runner
        site = _CountingSite(
            runner, self.config.bind_host, self.config.port, self._count_connection
        )
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._site = site
        self._started_at = time.monotonic()
        return site.name

    async def stop(self) -> None:
        """Stop serving, tell running work to end, and wait (bounded) for its threads."""
        self._work.stop()
        if self._runner is not None and not self._stopped:
            self._stopped = True
            await self._runner.cleanup()
        await asyncio.to_thread(self._work.join, _THREAD_JOIN_S)

    async def __aenter__(self) -> ReferenceConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _count_connection(self) -> None:
        self._connections_accepted += 1

    # -- middleware ---------------------------------------------------------------------------

    @web.middleware
    async def _observe(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        self._requests_total += 1
        traceparent = request.headers.get("traceparent")
        if traceparent:
            self._traceparents.append(traceparent.strip())
        response = await self._respond(request, handler)
        elapsed = time.perf_counter() - started
        self._metrics.observe(handler_label(request), request.method, response.status, elapsed)
        return response

    @staticmethod
    async def _respond(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return error_answer(exc)
        except Exception:
            _log.exception("%s %s failed", request.method, request.path)
            return web.json_response({"detail": "Internal Server Error"}, status=500)

    # -- handlers (api.ConsumerHandlers) ------------------------------------------------------

    async def health(self, _request: web.Request) -> web.StreamResponse:
        """GET /health: liveness."""
        return web.json_response({"status": "healthy"})

    async def ready(self, _request: web.Request) -> web.StreamResponse:
        """GET /ready: 503 `starting` until the configured delay has passed."""
        started = self._started_at
        if started is None or time.monotonic() - started < self.config.ready_delay_s:
            return web.json_response({"status": "starting"}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics(self, _request: web.Request) -> web.StreamResponse:
        """GET /metrics: the Prometheus text exposition."""
        body = self._metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def process(self, request: web.Request) -> web.StreamResponse:
        """POST /process: validate, then start the work (async) or do it (sync)."""
        parsed = parse_process_query(request.query)
        if isinstance(parsed, tuple):
            return validation_answer(parsed)
        if parsed.async_mode:
            record = self._work.start_async(parsed)
            return web.json_response(
                {
                    "status": "started",
                    "task_id": record.task_id,
                    "message": f"Background processing started for {parsed.duration}s",
                    "cpu_intensity": parsed.cpu_intensity,
                    "memory_size_mb": parsed.memory_size,
                    "cleanup_mode": parsed.cleanup_mode,
                    "estimated_completion": round(time.time() + 2 * parsed.duration, 3),
                }
            )
        outcome = await self._work.run_sync(parsed)
        return web.json_response(
            {
                "status": "completed",
                "task_id": outcome.record.task_id,
                "processing_time_seconds": round(outcome.elapsed_seconds, 3),
                "cpu_result": outcome.cpu.to_json(),
                "memory_result": outcome.memory.to_json(),
                "memory_store_size": self._work.store.size()[0],
            }
        )

    async def status(self, _request: web.Request) -> web.StreamResponse:
        """GET /process/status: memory store, statistics, recent tasks, and the `local` view."""
        objects, megabytes = self._work.store.size()
        started = self._started_at
        return web.json_response(
            {
                "name": self.config.name,
                "memory_store": {"objects": objects, "size_mb": megabytes},
                "current_status": {
                    "memory_store_objects": objects,
                    "memory_store_size_estimate_mb": megabytes,
                },
                "statistics": self._work.tasks.statistics(),
                "recent_tasks": self._work.tasks.recent(),
                "local": {
                    "requests_total": self.requests_total,
                    "connections_accepted": self.connections_accepted,
                    "connections_open": self.connections_open,
                    "uptime_seconds": 0.0
                    if started is None
                    else round(time.monotonic() - started, 3),
                },
            }
        )

    async def cleanup(self, _request: web.Request) -> web.StreamResponse:
        """DELETE /process/cleanup: drop the kept allocations and collect them."""
        removed = self._work.store.clear()
        if removed:
            await asyncio.to_thread(gc.collect)
        return web.json_response({"status": "cleaned", "objects_removed": removed})

    async def traceparents(self, _request: web.Request) -> web.StreamResponse:
        """GET /local/traceparents: the last incoming `traceparent` values, oldest first."""
        return web.json_response(list(self._traceparents))


# --------------------------------------------------------------------------------------------
# Process entry point


def _parse_args(argv: Sequence[str] | None) -> ConsumerConfig:
    parser = argparse.ArgumentParser(
        prog="python -m nimbus_scenarios.local.consumer",
        description="Run the local reference consumer (loopback only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument(
        "--ready-delay", type=float, default=0.0, metavar="S", help="/ready 503 for S s"
    )
    parser.add_argument("--name", default="consumer", help="name shown in /process/status")
    parser.add_argument(
        "--cpu-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="spin F of each request's duration and sleep the rest (default 1.0: faithful)",
    )
    args = parser.parse_args(argv)
    try:
        return ConsumerConfig(args.host, args.port, args.ready_delay, args.name, args.cpu_scale)
    except ValueError as exc:
        parser.error(str(exc))


async def _serve(config: ConsumerConfig) -> None:
    """Serve until SIGTERM or SIGINT; announce the URL on stdout once bound."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    consumer = ReferenceConsumer(config)
    url = await consumer.start()
    try:
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.write(f"listening on {url}\n")
            sys.stdout.flush()
        await stopping.wait()
    finally:
        await consumer.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m nimbus_scenarios.local.consumer`: serve until SIGTERM/SIGINT, then exit 0."""
    config = _parse_args(argv)
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:  # a SIGINT that landed before the handler was installed
        return 0
    except OSError as exc:
        sys.stderr.write(f"cannot listen on {config.host}:{config.port}: {exc}\n")
        return 1
    return 0

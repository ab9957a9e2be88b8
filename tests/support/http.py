"""Loopback targets for tests, on 127.0.0.1 at ports the OS chooses.

- `HttpServer` is the one recording target: an aiohttp server on its own event loop in a
  background thread, so it serves in-process runs (`asyncio.run` in the test) and
  `python -m nimbus_scenarios` children alike. Paths choose the answer: `/delay/MS` answers 200
  after MS milliseconds, `/status/CODE` answers CODE, `/flaky/MS` answers 503 until MS
  milliseconds after its first request and 200 then, anything else answers 200 at once. Every
  request is recorded as a `Hit` (arrival time on `time.monotonic`, method, path, headers).
  `stop` may come early, to stop listening mid-run, and may be called again.
- `ResetServer` misbehaves at the TCP level: it answers the pre-flight `GET /` and resets every
  other connection without a byte of answer.
- `SilentServer` reads each request, records it, and answers only the paths it is told to,
  leaving every other request hanging (a pre-flight that never gets an answer, a cleanup that
  never ends).
- `EndlessBodyServer` answers the pre-flight `GET /`, then 200 with a body that never ends
  (chunked, or with no length, delimited by the close) to every other request, until the client
  goes or the server's own time and byte limits.
- `RawServer` answers every request with the same bytes, written as they are (a broken status
  line, a redirect) or trickled one byte at a time.
- `serving(app)` serves an aiohttp app on the test's own running loop, for tests that build
  their own handlers; `LoopThread` is the event loop in a thread that the threaded servers
  (and other servers tests drive from outside, such as the Kubernetes API emulator) run on.
- `free_port()` is a port with nothing listening: a target that is down, or a port for a child
  process to listen on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from aiohttp import web

__all__ = [
    "EndlessBodyServer",
    "Hit",
    "HttpServer",
    "LoopThread",
    "RawServer",
    "ResetServer",
    "SilentServer",
    "free_port",
    "serving",
]

MAX_DELAY_S = 30.0
"""The longest `/delay/MS` answer, whatever MS says."""

T = TypeVar("T")


def free_port() -> int:
    """A loopback port with nothing listening on it now (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def serving(app: web.Application, **runner_options: Any) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) on the running loop; yields the base URL.

    `runner_options` go to `web.AppRunner` (access logging is off unless given).
    """
    runner = web.AppRunner(app, **{"access_log": None, **runner_options})
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


class LoopThread:
    """An event loop running in a daemon thread; the test submits coroutines to it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 15.0) -> T:
        """Run `coroutine` on the thread's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    @property
    def closed(self) -> bool:
        """Whether the loop has been stopped and closed."""
        return self.loop.is_closed()

    def close(self) -> None:
        """Stop the loop, join the thread and close the loop; idempotent."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass(frozen=True, slots=True)
class Hit:
    """One request the server saw."""

    at: float
    method: str
    path: str
    headers: Mapping[str, str]


class HttpServer:
    """The recording loopback target (see the module docstring for its paths)."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.url = ""
        self._first: dict[str, float] = {}
        self._thread: LoopThread | None = None
        self._stack = contextlib.AsyncExitStack()

    async def _handle(self, request: web.Request) -> web.Response:
        self.hits.append(Hit(time.monotonic(), request.method, request.path, dict(request.headers)))
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
        # Handlers are cancelled when their client goes, so a stopped run leaves no delay behind.
        serve = serving(app, handler_cancellation=True, shutdown_timeout=1.0)
        return await self._stack.enter_async_context(serve)

    def start(self) -> HttpServer:
        """Start serving from a new thread; `url` is set."""
        self._thread = LoopThread("http-server")
        self.url = self._thread.call(self._start())
        return self

    def stop(self) -> None:
        """Stop listening and end the thread; early (mid-run) or again, it is harmless."""
        thread = self._thread
        if thread is None or thread.closed:
            return
        try:
            thread.call(self._stack.aclose(), 10)
        finally:
            thread.close()

    def paths(self, prefix: str = "/") -> list[Hit]:
        """The hits whose path starts with `prefix`, in arrival order."""
        return [h for h in list(self.hits) if h.path.startswith(prefix)]

    def paths_exactly(self, path: str) -> list[Hit]:
        """The hits on `path` itself (`/`: the runner's pre-flight), in arrival order."""
        return [h for h in list(self.hits) if h.path == path]


class _TcpServer:
    """What the raw TCP servers share: a loop in its own thread, a listener on a free loopback
    port, and every connection's handler task, cancelled when the server stops. A subclass
    answers one connection in `_handle`; the connection is closed after it."""

    THREAD_NAME = "tcp-server"

    def __init__(self) -> None:
        self.url = ""
        self._thread: LoopThread | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            await self._handle(reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # a request that never came whole
        except ConnectionError:
            pass  # the client went away
        finally:
            writer.close()

    async def _start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):  # connections still open end with the server
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def start(self) -> Self:
        """Start listening from a new thread; `url` is set."""
        self._thread = LoopThread(self.THREAD_NAME)
        self.url = self._thread.call(self._start())
        return self

    def stop(self) -> None:
        """Stop listening, cut open connections and end the thread; idempotent."""
        thread = self._thread
        if thread is None or thread.closed:
            return
        with contextlib.suppress(Exception):
            thread.call(self._stop(), 10)
        thread.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _request_path(reader: asyncio.StreamReader) -> str:
    """The path of the next request's head (read whole, within 10 s)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    parts = head.split(b" ", 2)
    return parts[1].decode("latin-1") if len(parts) > 1 else ""


_SHORT_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class ResetServer(_TcpServer):
    """A raw TCP server: `GET /` gets a 200 (the pre-flight passes); any other request's
    connection is reset (RST) without a byte of answer. `paths` lists every request's path."""

    THREAD_NAME = "reset-server"

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        path = await _request_path(reader)
        self.paths.append(path)
        if path == "/":
            writer.write(_SHORT_OK)
            await writer.drain()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


class SilentServer(_TcpServer):
    """A raw TCP server that records every request line and answers 200 only to the paths in
    `answered`; any other request is left hanging until the client gives up. `requests` lists
    (method, path) in arrival order."""

    THREAD_NAME = "silent-server"

    def __init__(self, answered: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.answered = answered
        self.requests: list[tuple[str, str]] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            method, path = [*head.split(b" ", 2), b"", b""][:2]
            self.requests.append((method.decode("latin-1"), path.decode("latin-1")))
            if path.decode("latin-1") not in self.answered:
                await reader.read()  # hang until the client closes
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    def paths(self, method: str) -> list[str]:
        """The paths of the requests of `method` seen so far."""
        return [path for m, path in list(self.requests) if m == method]


class EndlessBodyServer(_TcpServer):
    """A raw TCP server: `GET /` gets a short 200 (the pre-flight passes); any other request
    gets a 200 whose body never ends: chunked (`Transfer-Encoding: chunked`) for paths starting
    with `/chunked`, otherwise with neither a length nor chunking, so that only the close would
    end it. Each body is streamed in 64 KiB pieces until the client closes the connection, or
    for at most `limit_s` seconds and `limit_bytes` bytes (the test's bound). `bodies` holds
    the body bytes written per endless answer, appended when it ends; `connections` counts the
    connections accepted."""

    THREAD_NAME = "endless-body-server"
    PIECE = b"x" * 65_536

    def __init__(self, *, limit_s: float = 30.0, limit_bytes: int = 4 << 30) -> None:
        super().__init__()
        self.limit_s = limit_s
        self.limit_bytes = limit_bytes
        self.paths: list[str] = []
        self.bodies: list[int] = []
        self.connections = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        path = await _request_path(reader)
        self.paths.append(path)
        if path == "/":
            writer.write(_SHORT_OK)
        elif path.startswith("/chunked"):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            frame = b"%x\r\n%s\r\n" % (len(self.PIECE), self.PIECE)
            await self._stream(writer, frame, len(self.PIECE))
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
            await self._stream(writer, self.PIECE, len(self.PIECE))
        await writer.drain()

    async def _stream(self, writer: asyncio.StreamWriter, frame: bytes, size: int) -> None:
        """Write `frame` (carrying `size` body bytes) until the client goes or a limit is hit."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.limit_s
        written = 0
        try:
            while written < self.limit_bytes and loop.time() < end:
                writer.write(frame)
                await writer.drain()
                written += size
        finally:
            self.bodies.append(written)


class RawServer(_TcpServer):
    """A raw TCP server that answers every request with `answer`, at once or, with `every_s`,
    one byte every `every_s` seconds (a server that trickles, never quite silent). `paths`
    lists every request's path; connections still open are cut when it stops."""

    THREAD_NAME = "raw-server"

    def __init__(self, answer: bytes, *, every_s: float | None = None) -> None:
        super().__init__()
        self.answer = answer
        self.every_s = every_s
        self.paths: list[str] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.paths.append(await _request_path(reader))
        if self.every_s is None:
            writer.write(self.answer)
            await writer.drain()
            return
        for byte in self.answer:  # bounded by the answer's length
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(self.every_s)

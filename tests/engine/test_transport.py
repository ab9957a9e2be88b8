"""Tests for the LoadTransport seam and its clients against a real aiohttp.web server on
127.0.0.1: statuses, error kinds, the exception mapping, the body cap and connection
recycling."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from nimbus_scenarios.engine.clients import AiohttpTransport, HttpxTransport, classify_exception
from nimbus_scenarios.engine.factory import TRANSPORT_KINDS, make_transport
from nimbus_scenarios.engine.request import (
    ErrorKind,
    Outcome,
    PreparedRequest,
    prepare,
    status_outcome,
    truncated_outcome,
)
from nimbus_scenarios.engine.transport import MAX_BODY_BYTES, LoadTransport
from tests.support.http import free_port
from tests.support.wait import eventually

CLIENT_HEADER = "X-Test-Client"


@dataclass
class Server:
    """A running test server: its base URL and what it saw."""

    base_url: str
    runner: web.AppRunner
    connections: dict[str, set[int]] = field(default_factory=dict)
    """Client name (the X-Test-Client header) to the client ports it came from."""

    def open_connections(self) -> int:
        server = self.runner.server
        assert server is not None
        return len(server.connections)


@contextlib.asynccontextmanager
async def serve() -> AsyncIterator[Server]:
    """Run the test app on 127.0.0.1 with an OS-chosen port."""
    app = web.Application()
    server: Server | None = None

    async def status(request: web.Request) -> web.Response:
        assert server is not None
        peer = request.transport.get_extra_info("peername") if request.transport else None
        client = request.headers.get(CLIENT_HEADER, "")
        if peer is not None:
            server.connections.setdefault(client, set()).add(peer[1])
        delay = float(request.query.get("delay", "0"))
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=int(request.match_info["code"]), text="ok")

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        good = request.headers.get("X-Token") == "t1" and body == b"payload"
        good = good and request.query.get("q") == "a b" and request.method == "POST"
        return web.Response(status=200 if good else 400, text="x" * 100_000)

    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"partial")
        assert request.transport is not None
        request.transport.close()
        return response

    async def close(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.05)
        return web.Response(text="never sent")

    async def sized(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * int(request.match_info["size"]))

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(1024):  # 64 MiB at most: far past the cap, bounded all the same
                await response.write(b"x" * 65_536)
        return response

    app.router.add_route("*", "/status/{code}", status)
    app.router.add_get("/bytes/{size}", sized)
    app.router.add_get("/endless", endless)
    app.router.add_post("/echo", echo)
    app.router.add_get("/cut", cut)
    app.router.add_get("/close", close)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server = Server(f"http://{host}:{port}", runner)
    try:
        yield server
    finally:
        await runner.cleanup()


def run(test: Callable[[Server], Awaitable[None]]) -> None:
    """Run one async test body against a fresh server, bounded in time."""

    async def main() -> None:
        async with serve() as server:
            await asyncio.wait_for(test(server), timeout=15)

    asyncio.run(main())


def transport(kind: str, **overrides: Any) -> LoadTransport:
    settings: dict[str, Any] = {
        "timeout_s": 2.0,
        "connection_max_age_s": 60.0,
        "max_connections": 20,
    }
    settings.update(overrides)
    return make_transport(kind, **settings)


def get(server: Server, path: str, client: str = "") -> PreparedRequest:
    return prepare("GET", server.base_url, path, headers={CLIENT_HEADER: client})


# --------------------------------------------------------------------------------------------
# Sending


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
def test_status_codes_headers_and_body_pass_through(kind: str) -> None:
    """Every transport returns the server's status and delivers method, headers, query and body."""

    async def body(server: Server) -> None:
        t = transport(kind)
        try:
            for code in (200, 201, 204, 302, 404, 503):
                assert await t.send(get(server, f"/status/{code}")) == Outcome(code, None)
            echo = prepare(
                "POST",
                server.base_url,
                "/echo",
                [("q", "a b")],
                headers={"X-Token": "t1"},
                body=b"payload",
            )
            assert await t.send(echo) == Outcome(200, None)
            assert t.connections_opened == 1  # the 100 kB echo body was read: connection reused
        finally:
            await t.aclose()

    run(body)


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
def test_bodies_are_cut_at_the_cap_and_their_connection_closed(kind: str) -> None:
    """A body of exactly the cap is read whole (the connection reused); one byte more, or an
    endless one, is cut: its status kept, marked truncated, a half-read connection closed."""

    async def body(server: Server) -> None:
        t = transport(kind)
        try:
            assert await t.send(get(server, f"/bytes/{MAX_BODY_BYTES}")) == status_outcome(200)
            assert await t.send(get(server, "/status/200")) == status_outcome(200)
            assert t.connections_opened == 1
            over = await t.send(get(server, f"/bytes/{MAX_BODY_BYTES + 1}"))
            assert over == truncated_outcome(200)
            assert over.truncated
            assert await t.send(get(server, "/status/200")) == status_outcome(200)
            # An idle connection is pooled now; the endless answer takes it and leaves it half
            # read, so the next request needs a new one, and the server sees the old one close.
            before = t.connections_opened
            assert await t.send(get(server, "/endless")) == truncated_outcome(200)
            assert await t.send(get(server, "/status/200")) == status_outcome(200)
            assert t.connections_opened == before + 1
            await eventually(lambda: server.open_connections() == 1, timeout_s=5)
        finally:
            await t.aclose()

    run(body)


def test_make_transport_rejects_unknown_kind() -> None:
    """An unknown kind is a ValueError that lists the valid kinds."""
    with pytest.raises(ValueError, match="aiohttp, httpx-aiohttp, httpx"):
        make_transport("curl", timeout_s=1, connection_max_age_s=1, max_connections=1)
    assert isinstance(transport("aiohttp"), AiohttpTransport)
    assert isinstance(transport("httpx"), HttpxTransport)


# --------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
def test_slow_response_is_a_timeout_after_timeout_s(kind: str) -> None:
    """A response slower than timeout_s becomes ErrorKind.timeout after about timeout_s."""

    async def body(server: Server) -> None:
        t = transport(kind, timeout_s=0.3)
        try:
            started = time.monotonic()
            outcome = await t.send(get(server, "/status/200?delay=3"))
            elapsed = time.monotonic() - started
        finally:
            await t.aclose()
        assert outcome == Outcome(None, ErrorKind.timeout)
        assert 0.25 <= elapsed < 1.0

    run(body)


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
def test_refused_connection_is_connect(kind: str) -> None:
    """A refused connection becomes ErrorKind.connect and counts as a connection attempt."""

    async def body(server: Server) -> None:
        t = transport(kind)
        try:
            outcome = await t.send(prepare("GET", f"http://127.0.0.1:{free_port()}", "/"))
        finally:
            await t.aclose()
        assert outcome == Outcome(None, ErrorKind.connect)
        assert t.connections_opened >= 1

    run(body)


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
@pytest.mark.parametrize("path", ["/cut", "/close"])
def test_server_closing_the_socket_is_reset(kind: str, path: str) -> None:
    """A server closing the socket mid-body or before any response gives ErrorKind.reset."""

    async def body(server: Server) -> None:
        t = transport(kind)
        try:
            assert await t.send(get(server, path)) == Outcome(None, ErrorKind.reset)
            # the transport keeps working afterwards
            assert await t.send(get(server, "/status/200")) == Outcome(200, None)
        finally:
            await t.aclose()

    run(body)


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
def test_garbage_response_is_protocol(kind: str) -> None:
    """A reply that is not HTTP becomes ErrorKind.protocol."""

    async def reply_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HELLO WORLD\r\n\r\n")
        await writer.drain()
        writer.close()

    async def body(server: Server) -> None:
        garbage = await asyncio.start_server(reply_garbage, "127.0.0.1", 0)
        port = garbage.sockets[0].getsockname()[1]
        t = transport(kind)
        try:
            outcome = await t.send(prepare("GET", f"http://127.0.0.1:{port}", "/"))
        finally:
            await t.aclose()
            garbage.close()
            await garbage.wait_closed()
        assert outcome == Outcome(None, ErrorKind.protocol)

    run(body)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TimeoutError(), ErrorKind.timeout),
        (aiohttp.ServerTimeoutError("read"), ErrorKind.timeout),
        (httpx.PoolTimeout("pool"), ErrorKind.timeout),
        (httpx.ConnectError("refused"), ErrorKind.connect),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), ErrorKind.connect),
        (socket.gaierror(-2, "Name or service not known"), ErrorKind.connect),
        (aiohttp.ServerDisconnectedError(), ErrorKind.reset),
        (aiohttp.ClientOSError(errno.ECONNRESET, "reset"), ErrorKind.reset),
        (aiohttp.ClientOSError(errno.EPIPE, "broken pipe"), ErrorKind.reset),
        (BrokenPipeError(), ErrorKind.reset),
        (httpx.ReadError(""), ErrorKind.reset),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), "reset"),
        (httpx.RemoteProtocolError("illegal status line: bytearray(b'HELLO')"), "protocol"),
        (aiohttp.ClientPayloadError("Response payload is not completed"), ErrorKind.reset),
        (aiohttp.ClientPayloadError("bad chunk"), ErrorKind.protocol),
        (aiohttp.InvalidURL("x"), ErrorKind.other),
        (OSError(errno.ENOSPC, "no space"), ErrorKind.other),
        (ValueError("x"), ErrorKind.other),
    ],
)
def test_exception_mapping_table(exc: Exception, kind: str) -> None:
    """Foreign exceptions map to the ErrorKind in the module docstring's table."""
    assert classify_exception(exc) == kind


def test_httpx_wrapped_aiohttp_exception_is_classified_by_its_cause() -> None:
    """httpx-aiohttp's ConnectTimeout wrapping a refused aiohttp connect is connect, not timeout."""
    wrapped = httpx.ConnectTimeout("wrapped")
    wrapped.__cause__ = aiohttp.ClientOSError(errno.ECONNREFUSED, "Connect call failed")
    assert classify_exception(wrapped) == ErrorKind.connect
    wrapped.__cause__ = aiohttp.ServerDisconnectedError()
    assert classify_exception(wrapped) == ErrorKind.reset


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
def test_cancellation_propagates(kind: str) -> None:
    """Cancelling a send raises CancelledError in the caller instead of returning an outcome."""

    async def body(server: Server) -> None:
        t = transport(kind)
        try:
            task = asyncio.ensure_future(t.send(get(server, "/status/200?delay=3")))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await t.send(get(server, "/status/200")) == Outcome(200, None)
        finally:
            await t.aclose()

    run(body)


def test_send_after_aclose_is_an_error() -> None:
    """A closed transport refuses to send (a usage error, not a network outcome)."""

    async def body(server: Server) -> None:
        t = transport("aiohttp")
        assert await t.send(get(server, "/status/200")) == Outcome(200, None)
        await t.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await t.send(get(server, "/status/200"))

    run(body)


# --------------------------------------------------------------------------------------------
# Connection recycling


def test_connection_max_age_recycles_reuses_and_closes() -> None:
    """Max age 0.3 s recycles, 0 opens one per request, 1 h reuses one; retired ones close."""

    async def drive(
        server: Server, kind: str, max_age: float, requests: int, gap: float
    ) -> tuple[int, float]:
        name = f"{kind}/{max_age}"
        t = transport(kind, connection_max_age_s=max_age)
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            for _ in range(requests):
                assert await t.send(get(server, "/status/200", name)) == Outcome(200, None)
                await asyncio.sleep(gap)
            assert t.connections_opened == len(server.connections[name])
        finally:
            took = loop.time() - began
            await asyncio.sleep(0.3)  # let retired generations close
            opened = t.connections_opened
            await t.aclose()
        return opened, took

    async def body(server: Server) -> None:
        plans = []
        for kind in TRANSPORT_KINDS:
            plans += [(kind, 0.3, 16, 0.1), (kind, 0.0, 10, 0.0), (kind, 3600.0, 16, 0.1)]
        done = await asyncio.gather(*(drive(server, *plan) for plan in plans))
        for (kind, max_age, requests, _), (count, took) in zip(plans, done, strict=True):
            if max_age == 0.3:
                # one generation per 0.3 s of the loop's own time (about 1.6 s, longer on a
                # loaded machine): recycled, and still reused within a generation
                assert 2 <= count <= took / 0.3 + 1, (kind, count, took)
                assert count < requests, (kind, count)
            elif max_age == 0.0:
                assert count == requests, (kind, count)
            else:
                assert count == 1, (kind, count)
        await eventually(lambda: server.open_connections() == 0, timeout_s=5)

    run(body)


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
def test_in_flight_requests_survive_a_generation_switch(kind: str) -> None:
    """Requests in flight on a retired generation complete normally after the switch."""

    async def body(server: Server) -> None:
        t = transport(kind, connection_max_age_s=0.2)
        try:
            slow = [
                asyncio.ensure_future(t.send(get(server, "/status/200?delay=0.6", kind)))
                for _ in range(3)
            ]
            await asyncio.sleep(0.3)
            assert await t.send(get(server, "/status/201", kind)) == Outcome(201, None)
            assert await asyncio.gather(*slow) == [Outcome(200, None)] * 3
            assert isinstance(t, AiohttpTransport | HttpxTransport)
            assert t.generations_started == 2
            assert len(server.connections[kind]) == 4
            # the drained generation is closed
            await eventually(lambda: server.open_connections() == 1, timeout_s=5)
        finally:
            await t.aclose()

    run(body)

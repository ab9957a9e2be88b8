"""Tests of the per-connection TCP proxy (nimbus_scenarios.local.proxy).

Backends are small in-process servers on 127.0.0.1: raw asyncio servers that greet with their
name and echo (for connection-level behaviour), and aiohttp apps that answer with their name
(for keep-alive behaviour). Every test runs in its own `asyncio.run` with a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from nimbus_scenarios.local.proxy import BackendState, TcpProxy

T = TypeVar("T")


def run(test: Callable[[], Coroutine[Any, Any, T]], limit: float = 20.0) -> T:
    """Run one async test body with a time limit."""
    return asyncio.run(asyncio.wait_for(test(), limit))


class EchoBackend:
    """A raw TCP server that greets each connection with `NAME\\n`, then echoes until EOF.

    A chunk equal to b"RESET" makes it reset the connection instead (SO_LINGER 0).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.server: asyncio.Server | None = None
        self.port = 0
        self.open = 0
        self.accepted = 0

    async def start(self) -> EchoBackend:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.accepted += 1
        try:
            writer.write(f"{self.name}\n".encode())
            while data := await reader.read(65536):
                if data == b"RESET":
                    reset(writer)
                    return
                writer.write(data)
                await writer.drain()
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, OSError):
            writer.close()
        finally:
            self.open -= 1

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextlib.asynccontextmanager
async def echo_backends(*names: str) -> AsyncIterator[list[EchoBackend]]:
    """Start raw echo backends; stop them afterwards."""
    backends = [await EchoBackend(name).start() for name in names]
    try:
        yield backends
    finally:
        for backend in backends:
            await backend.stop()


async def greet(proxy: TcpProxy) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a fresh connection through the proxy; the backend's name and the streams."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    line = await asyncio.wait_for(reader.readline(), 5)
    return line.decode().strip(), reader, writer


async def close(writer: asyncio.StreamWriter) -> None:
    """Close a client connection, ignoring resets."""
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `check()` holds (polling every 20 ms), or fail."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


def other_tasks() -> set[asyncio.Task[Any]]:
    """Every task but the running one."""
    return asyncio.all_tasks() - {asyncio.current_task()}


def test_connections_spread_round_robin_over_ready_backends() -> None:
    """Nine fresh connections over three ready backends land three on each; pending gets none."""

    async def body() -> None:
        async with echo_backends("a", "b", "c", "pending") as backends, TcpProxy() as proxy:
            for backend in backends:
                proxy.add_backend(backend.name, "127.0.0.1", backend.port)
            for name in ("a", "b", "c"):
                proxy.set_ready(name)
            seen: Counter[str] = Counter()
            for _ in range(9):
                name, _reader, writer = await greet(proxy)
                seen[name] += 1
                await close(writer)
            assert seen == Counter({"a": 3, "b": 3, "c": 3})
            assert proxy.backend_stats("pending").connections_total == 0
            assert [s.connections_total for s in proxy.backends()] == [3, 3, 3, 0]

    run(body)


def test_random_balance_uses_only_ready_backends() -> None:
    """With random balancing, connections go to both ready backends and never to a pending one."""

    async def body() -> None:
        async with echo_backends("a", "b", "pending") as backends:
            proxy = TcpProxy(balance="random", rng=random.Random(7))
            async with proxy:
                for backend in backends:
                    proxy.add_backend(backend.name, "127.0.0.1", backend.port)
                proxy.set_ready("a")
                proxy.set_ready("b")
                seen: Counter[str] = Counter()
                for _ in range(30):
                    name, _reader, writer = await greet(proxy)
                    seen[name] += 1
                    await close(writer)
                assert set(seen) == {"a", "b"}
                assert seen["a"] >= 5
                assert seen["b"] >= 5

    run(body)


async def named_app(name: str) -> tuple[web.AppRunner, int]:
    """An aiohttp backend whose every GET answers its name."""

    async def whoami(_request: web.Request) -> web.Response:
        return web.Response(text=name)

    app = web.Application()
    app.router.add_get("/", whoami)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def get_text(session: aiohttp.ClientSession, url: str) -> str:
    """GET `url`; the body."""
    async with session.get(url) as response:
        assert response.status == 200
        return await response.text()


def test_added_backend_gets_new_connections_but_keepalive_stays() -> None:
    """A backend made ready mid-way gets new connections; a keep-alive connection stays put."""

    async def body() -> None:
        runner_a, port_a = await named_app("a")
        runner_b, port_b = await named_app("b")
        try:
            async with TcpProxy() as proxy:
                proxy.add_backend("a", "127.0.0.1", port_a, ready=True)
                proxy.add_backend("b", "127.0.0.1", port_b)
                keepalive = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
                async with keepalive:
                    assert await get_text(keepalive, proxy.url) == "a"
                    proxy.set_ready("b")
                    # The pinned connection keeps reaching "a" although "b" is ready now.
                    pinned = [await get_text(keepalive, proxy.url) for _ in range(6)]
                    assert pinned == ["a"] * 6
                    assert proxy.backend_stats("a").connections_total == 1
                    fresh: Counter[str] = Counter()
                    for _ in range(6):
                        connector = aiohttp.TCPConnector(force_close=True)
                        async with aiohttp.ClientSession(connector=connector) as session:
                            fresh[await get_text(session, proxy.url)] += 1
                    assert fresh == Counter({"a": 3, "b": 3})
        finally:
            await runner_a.cleanup()
            await runner_b.cleanup()

    run(body)


def test_draining_backend_gets_no_new_connections_and_existing_ones_finish() -> None:
    """While `a` drains, new connections go to `b` and the open one to `a` keeps working."""

    async def body() -> None:
        async with echo_backends("a", "b") as (a, b), TcpProxy() as proxy:
            proxy.add_backend("a", "127.0.0.1", a.port, ready=True)
            name, reader, writer = await greet(proxy)
            assert name == "a"
            proxy.add_backend("b", "127.0.0.1", b.port, ready=True)
            drain = asyncio.create_task(proxy.drain("a", timeout_s=10))
            await eventually(lambda: proxy.backend_stats("a").state is BackendState.DRAINING)
            assert proxy.ready_backends() == ["b"]
            for _ in range(4):
                other, _r, other_writer = await greet(proxy)
                assert other == "b"
                await close(other_writer)
            writer.write(b"still here")
            assert await reader.readexactly(10) == b"still here"
            assert not drain.done()
            await close(writer)
            assert await drain == 0  # nothing had to be cut
            stats = proxy.backend_stats("a")
            assert stats.state is BackendState.REMOVED
            assert stats.connections_open == 0
            assert stats.connections_total == 1

    run(body)


def test_drain_timeout_closes_lingering_connections() -> None:
    """A connection still open when the drain timeout passes is closed, and counted."""

    async def body() -> None:
        async with echo_backends("a") as (a,), TcpProxy() as proxy:
            proxy.add_backend("a", "127.0.0.1", a.port, ready=True)
            _name, reader, writer = await greet(proxy)
            assert await proxy.drain("a", timeout_s=0.3) == 1
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(reader.read(), 5) == b""
            await close(writer)
            assert proxy.backend_stats("a").connections_closed_by_drain == 1
            await eventually(lambda: proxy.connections_open == 0 and a.open == 0)

    run(body)


def test_no_ready_backend_refuses_the_connection() -> None:
    """With no ready backend the accepted connection is closed at once and counted as rejected."""

    async def body() -> None:
        async with echo_backends("a") as (a,), TcpProxy() as proxy:
            proxy.add_backend("a", "127.0.0.1", a.port)  # pending only
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(reader.read(), 5) == b""
            await close(writer)
            assert proxy.stats().rejected == 1
            assert proxy.connections_open == 0
            assert a.accepted == 0

    run(body)


def test_half_close_is_passed_on_both_ways() -> None:
    """A client's write EOF reaches the backend, whose echo and EOF then reach the client."""

    async def body() -> None:
        async with echo_backends("a") as (a,), TcpProxy() as proxy:
            proxy.add_backend("a", "127.0.0.1", a.port, ready=True)
            name, reader, writer = await greet(proxy)
            assert name == "a"
            writer.write(b"last words")
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 5) == b"last words"
            await close(writer)
            await eventually(lambda: proxy.connections_open == 0 and a.open == 0)
            stats = proxy.backend_stats("a")
            assert stats.bytes_to_backend == 10
            assert stats.bytes_from_backend == 2 + 10

    run(body)


def test_large_transfer_keeps_every_byte_under_back_pressure() -> None:
    """Eight MiB echoed through the proxy come back intact and are counted both ways."""

    async def body() -> None:
        payload = random.Random(1).randbytes(8 * 1024 * 1024)
        async with echo_backends("a") as (a,), TcpProxy() as proxy:
            proxy.add_backend("a", "127.0.0.1", a.port, ready=True)
            _name, reader, writer = await greet(proxy)

            async def send() -> None:
                for start in range(0, len(payload), 256 * 1024):
                    writer.write(payload[start : start + 256 * 1024])
                    await writer.drain()
                writer.write_eof()

            sender = asyncio.create_task(send())
            received = await asyncio.wait_for(reader.read(), 15)
            await sender
            assert received == payload
            await close(writer)
            await eventually(lambda: proxy.connections_open == 0)
            stats = proxy.backend_stats("a")
            assert stats.bytes_to_backend == len(payload)
            assert stats.bytes_from_backend == len(payload) + 2

    run(body, limit=40)


def test_slow_client_makes_the_proxy_stop_reading_from_the_backend() -> None:
    """While the client reads nothing the proxy buffers boundedly, then delivers every byte."""

    async def body() -> None:
        size = 48 * 1024 * 1024
        chunk = b"z" * (1024 * 1024)

        async def flood(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                for _ in range(size // len(chunk)):
                    writer.write(chunk)
                    await writer.drain()
                writer.close()
                await writer.wait_closed()

        server = await asyncio.start_server(flood, "127.0.0.1", 0)
        try:
            async with TcpProxy() as proxy:
                proxy.add_backend("flood", "127.0.0.1", int(server.sockets[0].getsockname()[1]))
                proxy.set_ready("flood")
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", proxy.port, limit=64 * 1024
                )
                await asyncio.sleep(1.0)  # the client reads nothing meanwhile
                buffered = proxy.backend_stats("flood").bytes_from_backend
                assert buffered < size // 2
                received = 0
                while data := await reader.read(1024 * 1024):
                    received += len(data)
                assert received == size
                assert proxy.backend_stats("flood").bytes_from_backend == size
                await close(writer)
        finally:
            server.close()
            await server.wait_closed()

    run(body, limit=40)


def test_client_reset_closes_the_backend_side_without_leaking_tasks() -> None:
    """A client RST mid-connection resets the backend side; no connection or task is left."""

    async def body() -> None:
        async with echo_backends("a") as (a,), TcpProxy() as proxy:
            proxy.add_backend("a", "127.0.0.1", a.port, ready=True)
            baseline = other_tasks()
            for _ in range(5):
                _name, _reader, writer = await greet(proxy)
                writer.write(b"x" * 1000)
                await writer.drain()
                reset(writer)
            await eventually(lambda: proxy.connections_open == 0 and a.open == 0)
            assert proxy.connecting == 0
            await eventually(lambda: other_tasks() <= baseline)

    run(body)


def test_backend_reset_resets_the_client_without_leaking_tasks() -> None:
    """A backend RST reaches the client as a reset or EOF; no connection or task is left."""

    async def body() -> None:
        async with echo_backends("a") as (a,), TcpProxy() as proxy:
            proxy.add_backend("a", "127.0.0.1", a.port, ready=True)
            baseline = other_tasks()
            for _ in range(5):
                _name, reader, writer = await greet(proxy)
                writer.write(b"RESET")
                await writer.drain()
                with contextlib.suppress(ConnectionError):
                    assert await asyncio.wait_for(reader.read(), 5) == b""
                await close(writer)
            await eventually(lambda: proxy.connections_open == 0 and a.open == 0)
            assert proxy.connecting == 0
            await eventually(lambda: other_tasks() <= baseline)

    run(body)


def test_unreachable_backend_counts_a_connect_error() -> None:
    """A ready backend that refuses connections closes the client and counts a connect error."""

    async def body() -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            dead_port = int(probe.getsockname()[1])
        async with TcpProxy() as proxy:
            proxy.add_backend("dead", "127.0.0.1", dead_port, ready=True)
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(reader.read(), 5) == b""
            await close(writer)
            await eventually(lambda: proxy.connections_open == 0)
            assert proxy.backend_stats("dead").connect_errors == 1
            assert proxy.connecting == 0

    run(body)


def test_remove_backend_resets_its_connections_at_once() -> None:
    """`remove_backend` (a dead process) cuts its open connections and takes it off rotation."""

    async def body() -> None:
        async with echo_backends("a", "b") as (a, b), TcpProxy() as proxy:
            proxy.add_backend("a", "127.0.0.1", a.port, ready=True)
            proxy.add_backend("b", "127.0.0.1", b.port, ready=True)
            name, reader, writer = await greet(proxy)
            assert name == "a"
            assert proxy.remove_backend("a") == 1
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(reader.read(), 5) == b""
            await close(writer)
            assert proxy.ready_backends() == ["b"]
            assert proxy.backend_stats("a").state is BackendState.REMOVED
            await eventually(lambda: proxy.connections_open == 0 and a.open == 0)

    run(body)


def test_stop_closes_open_connections_and_pending_connects() -> None:
    """Stopping the proxy resets open connections and ends connect attempts; no task is left."""

    async def body() -> None:
        baseline = other_tasks()
        async with echo_backends("a") as (a,):
            proxy = TcpProxy()
            await proxy.start()
            proxy.add_backend("a", "127.0.0.1", a.port, ready=True)
            opened = [await greet(proxy) for _ in range(3)]
            await proxy.stop()
            for _name, reader, writer in opened:
                with contextlib.suppress(ConnectionError):
                    assert await asyncio.wait_for(reader.read(), 5) == b""
                await close(writer)
            assert proxy.connections_open == 0
            await eventually(lambda: a.open == 0)
        await eventually(lambda: other_tasks() <= baseline)

    run(body)


def test_proxy_listens_only_on_loopback() -> None:
    """A non-loopback listen address is refused."""
    with pytest.raises(ValueError, match="loopback"):
        TcpProxy("0.0.0.0")

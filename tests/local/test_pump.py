"""Tests of the proxy's connection pump (nimbus_scenarios.local.pump): bytes, EOFs and resets.

Clients talk through a real `TcpProxy` to raw echo backends on 127.0.0.1 (`proxy_support`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random

from nimbus_scenarios.local.proxy import TcpProxy
from tests.local.proxy_support import close, echo_backends, greet, other_tasks, reset, run
from tests.support.http import free_port
from tests.support.wait import eventually


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
        dead_port = free_port()
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

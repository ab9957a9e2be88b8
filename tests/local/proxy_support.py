"""Helpers for the proxy's tests: echo backends on 127.0.0.1 and a client to talk through it.

Backends are small in-process servers: raw asyncio servers that greet with their name and echo.
Every test runs in its own `asyncio.run` with a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from nimbus_scenarios.local.proxy import TcpProxy

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


def other_tasks() -> set[asyncio.Task[Any]]:
    """Every task but the running one."""
    return asyncio.all_tasks() - {asyncio.current_task()}

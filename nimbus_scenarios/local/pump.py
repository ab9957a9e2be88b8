"""The connection pump of the local proxy: bytes both ways between a client and its backend.

Its place: the `local` stage, under `proxy.TcpProxy`, which accepts client connections and picks
their backend; from then on a `Connection` only pipes bytes until either side closes. It uses
asyncio protocols, with no task per connection except the short backend connect: received
chunks are handed to the peer transport as they come, the peer's write-buffer limits pause and
resume reading on this side (back-pressure), an EOF is passed on as a half-close (`write_eof`)
and the connection closes once both directions have ended; a reset or error on either side
aborts the other. What a client sends while its backend is still connecting is held and sent
first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from nimbus_scenarios.local.backends import Backend

__all__ = ["Connection", "Connections", "Side"]


@dataclass(eq=False)
class Connections:
    """One proxy's connections: those open, the backend connects in flight, the accept hook.

    `on_accept` is called with each new client connection; it pairs it with a backend
    (`Connection.connect`, after adding it to `open`) or resets it.
    """

    connect_timeout_s: float
    on_accept: Callable[[Connection], None]
    open: set[Connection] = field(default_factory=set)
    connecting: set[asyncio.Task[None]] = field(default_factory=set)

    def new_client(self) -> Side:
        """The protocol of a newly accepted client connection (the server's factory)."""
        return Connection(self).client


class Side(asyncio.Protocol):
    """One end of a proxied connection (the client's or the backend's)."""

    def __init__(self, connection: Connection, *, client: bool) -> None:
        self.connection = connection
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.eof = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream connection's transport; uvloop's are not registered as asyncio's ABCs, so
        # an isinstance check would refuse them.
        self.transport = cast("asyncio.Transport", transport)
        self.connection.side_made(self)

    def data_received(self, data: bytes) -> None:
        self.connection.forward(self, data)

    def eof_received(self) -> bool:
        return self.connection.side_eof(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.connection.side_lost(self, exc)

    def pause_writing(self) -> None:
        # This side's outgoing buffer is full: stop reading from the peer that fills it.
        self.connection.pause_reading(self.connection.peer_of(self))

    def resume_writing(self) -> None:
        self.connection.resume_reading(self.connection.peer_of(self))


class Connection:
    """A client connection and the backend connection it was paired with."""

    def __init__(self, book: Connections) -> None:
        self.book = book
        self.client = Side(self, client=True)
        self.upstream: Side | None = None
        self.backend: Backend | None = None
        self.connect_task: asyncio.Task[None] | None = None
        self.pending: list[bytes] = []
        self.finished = False

    # -- set-up -------------------------------------------------------------------------------

    def side_made(self, side: Side) -> None:
        if side.client:
            self.book.on_accept(self)
            return
        # The backend connection is up: send what the client sent meanwhile, then let it flow.
        self.upstream = side
        if self.client.lost:
            self._abort_side(side)
            return
        transport = side.transport
        assert transport is not None
        for chunk in self.pending:
            self._count(to_backend=True, size=len(chunk))
            transport.write(chunk)
        self.pending.clear()
        if self.client.eof:
            self._half_close(side)
        self.resume_reading(self.client)

    def connect(self, backend: Backend) -> None:
        """Pair with `backend`: open the backend connection (the only task per connection)."""
        self.backend = backend
        backend.attach(self)
        self.pause_reading(self.client)
        self.connect_task = asyncio.get_running_loop().create_task(
            self._open(backend), name=f"proxy-connect-{backend.name}"
        )
        self.book.connecting.add(self.connect_task)
        self.connect_task.add_done_callback(self._connect_done)

    def _connect_done(self, task: asyncio.Task[None]) -> None:
        self.book.connecting.discard(task)
        self._maybe_finish()

    async def _open(self, backend: Backend) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.book.connect_timeout_s):
                await loop.create_connection(
                    lambda: Side(self, client=False), backend.host, backend.port
                )
        except (OSError, TimeoutError):
            backend.connect_errors += 1
            self.abort()
        except asyncio.CancelledError:
            self.abort()
            raise

    # -- piping -------------------------------------------------------------------------------

    def peer_of(self, side: Side) -> Side | None:
        return self.upstream if side.client else self.client

    def forward(self, side: Side, data: bytes) -> None:
        peer = self.peer_of(side)
        if peer is None:  # the backend is still connecting
            self.pending.append(data)
            return
        transport = peer.transport
        if transport is None or transport.is_closing():
            return
        self._count(to_backend=side.client, size=len(data))
        transport.write(data)

    def _count(self, *, to_backend: bool, size: int) -> None:
        if self.backend is None:
            return
        if to_backend:
            self.backend.bytes_to_backend += size
        else:
            self.backend.bytes_from_backend += size

    def side_eof(self, side: Side) -> bool:
        """Pass a half-close on; close both once both directions have ended."""
        side.eof = True
        peer = self.peer_of(side)
        if peer is not None:
            self._half_close(peer)
            if peer.eof:
                self._close_both()
        return True  # keep this side open: the other direction may still carry data

    def _half_close(self, side: Side) -> None:
        transport = side.transport
        if transport is None or transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()

    def side_lost(self, side: Side, exc: Exception | None) -> None:
        peer = self.peer_of(side)
        if peer is None:
            if self.connect_task is not None and not self.connect_task.done():
                self.connect_task.cancel()
        elif peer.transport is not None and not peer.transport.is_closing():
            if exc is not None:
                peer.transport.abort()  # a reset on one side resets the other
            else:
                peer.transport.close()  # flushes what is buffered, then closes
        self._maybe_finish()

    def pause_reading(self, side: Side | None) -> None:
        if side is not None and side.transport is not None and not side.transport.is_closing():
            side.transport.pause_reading()

    def resume_reading(self, side: Side | None) -> None:
        if side is not None and side.transport is not None and not side.transport.is_closing():
            side.transport.resume_reading()

    # -- tear-down ----------------------------------------------------------------------------

    def _close_both(self) -> None:
        for side in (self.client, self.upstream):
            if side is not None and side.transport is not None:
                side.transport.close()

    @staticmethod
    def _abort_side(side: Side | None) -> None:
        if side is not None and side.transport is not None:
            side.transport.abort()

    def abort(self) -> None:
        """Close both sides at once (reset), whatever is buffered."""
        self._abort_side(self.client)
        self._abort_side(self.upstream)

    def _maybe_finish(self) -> None:
        """Finish once the client side is gone and the backend side is gone or never came."""
        if self.finished or not self.client.lost:
            return
        if self.upstream is not None:
            if not self.upstream.lost:
                return
        elif self.connect_task is not None and not self.connect_task.done():
            return
        self._finish()

    def _finish(self) -> None:
        self.finished = True
        self.pending.clear()
        if self.backend is not None:
            self.backend.detach(self)
        self.book.open.discard(self)

"""A loopback TCP proxy that balances per connection, as kube-proxy does for a Service.

Its place: the `local` stage. `local.fleet.Fleet` puts one `TcpProxy` in front of its reference
consumer processes; the load generator targets the proxy's URL as it would target the Service.
Like kube-proxy, the proxy picks a backend once, when a client connection is accepted (round robin
or random over the READY backends), and then only pipes bytes both ways until either side closes.
Requests on a keep-alive connection therefore all reach the backend chosen for that connection,
and a backend added later only receives *new* connections: that is why the load generator
recycles its connections.

Backends are added not ready (`add_backend`) and receive connections once `set_ready`; a backend
being removed `drain`s (no new connections, existing ones continue until they close or until the
drain timeout, after which they are closed); `remove_backend` drops one at once (its process
died). Connections and bytes are counted per backend (`BackendStats`).

Piping uses asyncio protocols, with no task per connection except the short backend connect:
received chunks are handed to the peer transport as they come, the peer's write-buffer limits
pause and resume reading on this side (back-pressure), an EOF is passed on as a half-close
(`write_eof`) and the connection closes once both directions have ended; a reset or error on
either side aborts the other. Only loopback addresses are ever bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

__all__ = ["BackendState", "BackendStats", "Balance", "ProxyStats", "TcpProxy"]

_DEFAULT_CONNECT_TIMEOUT_S: Final = 5.0
_DEFAULT_DRAIN_TIMEOUT_S: Final = 10.0

Balance = Literal["round_robin", "random"]
"""How a backend is picked for a new connection."""


class BackendState(StrEnum):
    """Where a backend is in its life behind the proxy."""

    PENDING = "pending"
    """Added, not ready: gets no connections yet."""
    READY = "ready"
    """Gets new connections."""
    DRAINING = "draining"
    """Being removed: no new connections; existing ones continue until closed or timed out."""
    REMOVED = "removed"
    """Gone: its connections are closed. Kept for its counters."""


@dataclass(frozen=True, slots=True)
class BackendStats:
    """One backend's counters at one moment."""

    name: str
    host: str
    port: int
    state: BackendState
    connections_total: int
    connections_open: int
    connect_errors: int
    bytes_to_backend: int
    bytes_from_backend: int
    connections_closed_by_drain: int


@dataclass(frozen=True, slots=True)
class ProxyStats:
    """The proxy's own counters: accepted connections and those refused for want of a backend."""

    accepted: int
    rejected: int
    connections_open: int


def _check_loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    address = ipaddress.ip_address(host)
    if not address.is_loopback:
        raise ValueError(f"the local proxy only listens on loopback, not {host!r}")
    return str(address)


class _Backend:
    """A backend's address, state, live connections and counters."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.state = BackendState.PENDING
        self.connections: set[_Connection] = set()
        self.idle = asyncio.Event()
        self.idle.set()
        self.connections_total = 0
        self.connect_errors = 0
        self.bytes_to_backend = 0
        self.bytes_from_backend = 0
        self.closed_by_drain = 0

    def attach(self, connection: _Connection) -> None:
        self.connections.add(connection)
        self.connections_total += 1
        self.idle.clear()

    def detach(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self.idle.set()

    def abort_all(self) -> int:
        connections = list(self.connections)
        for connection in connections:
            connection.abort()
        return len(connections)

    def stats(self) -> BackendStats:
        return BackendStats(
            self.name,
            self.host,
            self.port,
            self.state,
            self.connections_total,
            len(self.connections),
            self.connect_errors,
            self.bytes_to_backend,
            self.bytes_from_backend,
            self.closed_by_drain,
        )


class _Side(asyncio.Protocol):
    """One end of a proxied connection (the client's or the backend's)."""

    def __init__(self, connection: _Connection, *, client: bool) -> None:
        self.connection = connection
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.eof = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
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


class _Connection:
    """A client connection and the backend connection it was paired with."""

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        self.client = _Side(self, client=True)
        self.upstream: _Side | None = None
        self.backend: _Backend | None = None
        self.connect_task: asyncio.Task[None] | None = None
        self.pending: list[bytes] = []
        self.finished = False

    # -- set-up -------------------------------------------------------------------------------

    def side_made(self, side: _Side) -> None:
        if side.client:
            self.proxy._accepted(self)
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

    def connect(self, backend: _Backend) -> None:
        """Pair with `backend`: open the backend connection (the only task per connection)."""
        self.backend = backend
        backend.attach(self)
        self.pause_reading(self.client)
        self.connect_task = asyncio.get_running_loop().create_task(
            self._open(backend), name=f"proxy-connect-{backend.name}"
        )
        self.proxy._connecting.add(self.connect_task)
        self.connect_task.add_done_callback(self._connect_done)

    def _connect_done(self, task: asyncio.Task[None]) -> None:
        self.proxy._connecting.discard(task)
        self._maybe_finish()

    async def _open(self, backend: _Backend) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.proxy.connect_timeout_s):
                await loop.create_connection(
                    lambda: _Side(self, client=False), backend.host, backend.port
                )
        except (OSError, TimeoutError):
            backend.connect_errors += 1
            self.abort()
        except asyncio.CancelledError:
            self.abort()
            raise

    # -- piping -------------------------------------------------------------------------------

    def peer_of(self, side: _Side) -> _Side | None:
        return self.upstream if side.client else self.client

    def forward(self, side: _Side, data: bytes) -> None:
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

    def side_eof(self, side: _Side) -> bool:
        """Pass a half-close on; close both once both directions have ended."""
        side.eof = True
        peer = self.peer_of(side)
        if peer is not None:
            self._half_close(peer)
            if peer.eof:
                self._close_both()
        return True  # keep this side open: the other direction may still carry data

    def _half_close(self, side: _Side) -> None:
        transport = side.transport
        if transport is None or transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
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

    def pause_reading(self, side: _Side | None) -> None:
        if side is not None and side.transport is not None and not side.transport.is_closing():
            side.transport.pause_reading()

    def resume_reading(self, side: _Side | None) -> None:
        if side is not None and side.transport is not None and not side.transport.is_closing():
            side.transport.resume_reading()

    # -- tear-down ----------------------------------------------------------------------------

    def _close_both(self) -> None:
        for side in (self.client, self.upstream):
            if side is not None and side.transport is not None:
                side.transport.close()

    @staticmethod
    def _abort_side(side: _Side | None) -> None:
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
        self.proxy._finished(self)


class TcpProxy:
    """A per-connection load balancer on a loopback port (see the module docstring).

    Use as `async with TcpProxy() as proxy:` or `await proxy.start()` / `await proxy.stop()`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        balance: Balance = "round_robin",
        connect_timeout_s: float = _DEFAULT_CONNECT_TIMEOUT_S,
        rng: random.Random | None = None,
    ) -> None:
        self.host = _check_loopback(host)
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535 (0 picks a free port), not {port}")
        if balance not in ("round_robin", "random"):
            raise ValueError(f"balance must be round_robin or random, not {balance!r}")
        self.requested_port = port
        self.balance: Balance = balance
        self.connect_timeout_s = connect_timeout_s
        self._rng = rng if rng is not None else random.Random()
        self._backends: dict[str, _Backend] = {}
        self._connections: set[_Connection] = set()
        self._connecting: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._next = 0
        self._accepted_total = 0
        self._rejected = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> str:
        """Listen; return the proxy's `http://HOST:PORT` URL."""
        if self._server is not None:
            raise RuntimeError("the proxy is already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self).client,
            self.host,
            self.requested_port,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self.url

    async def stop(self) -> None:
        """Stop listening, reset every open connection and end every connect task."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for connection in list(self._connections):
            connection.abort()
        tasks = list(self._connecting)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        for backend in self._backends.values():
            backend.state = BackendState.REMOVED

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound port (once started)."""
        if self._port is None:
            raise RuntimeError("the proxy is not started")
        return self._port

    @property
    def url(self) -> str:
        """`http://HOST:PORT` (once started)."""
        return f"http://{self.host}:{self.port}"

    # -- backends -----------------------------------------------------------------------------

    def add_backend(self, name: str, host: str, port: int, *, ready: bool = False) -> None:
        """Add a backend (not ready unless `ready`); a removed backend's name may be reused."""
        existing = self._backends.get(name)
        if existing is not None and existing.state is not BackendState.REMOVED:
            raise ValueError(f"backend {name!r} already exists")
        backend = _Backend(name, _check_loopback(host), port)
        if ready:
            backend.state = BackendState.READY
        self._backends[name] = backend

    def set_ready(self, name: str, ready: bool = True) -> None:
        """Mark a pending backend ready (gets new connections), or a ready one not ready."""
        backend = self._backend(name)
        if backend.state in (BackendState.DRAINING, BackendState.REMOVED):
            raise ValueError(f"backend {name!r} is {backend.state}")
        backend.state = BackendState.READY if ready else BackendState.PENDING

    async def drain(self, name: str, timeout_s: float = _DEFAULT_DRAIN_TIMEOUT_S) -> int:
        """Stop giving `name` new connections, wait (bounded) for its connections to close.

        Connections still open after `timeout_s` are reset. Returns how many were; the backend
        is then removed (its counters stay readable).
        """
        backend = self._backend(name)
        if backend.state is BackendState.REMOVED:
            return 0
        backend.state = BackendState.DRAINING
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(backend.idle.wait(), timeout_s)
        closed = backend.abort_all()
        backend.closed_by_drain += closed
        backend.state = BackendState.REMOVED
        return closed

    def start_draining(self, name: str) -> None:
        """Stop giving `name` new connections (the first half of `drain`)."""
        backend = self._backend(name)
        if backend.state is not BackendState.REMOVED:
            backend.state = BackendState.DRAINING

    def remove_backend(self, name: str) -> int:
        """Remove `name` at once, resetting its connections; how many were open."""
        backend = self._backends.get(name)
        if backend is None or backend.state is BackendState.REMOVED:
            return 0
        backend.state = BackendState.REMOVED
        return backend.abort_all()

    def _backend(self, name: str) -> _Backend:
        try:
            return self._backends[name]
        except KeyError:
            raise KeyError(f"no backend {name!r}") from None

    def ready_backends(self) -> list[str]:
        """Names of the backends that get new connections, in rotation order."""
        return [b.name for b in self._backends.values() if b.state is BackendState.READY]

    def backend_stats(self, name: str) -> BackendStats:
        """One backend's counters."""
        return self._backend(name).stats()

    def backends(self) -> list[BackendStats]:
        """Every backend's counters, removed ones included, in the order they were added."""
        return [backend.stats() for backend in self._backends.values()]

    def stats(self) -> ProxyStats:
        """Accepted and rejected client connections, and how many are open."""
        return ProxyStats(self._accepted_total, self._rejected, len(self._connections))

    @property
    def connections_open(self) -> int:
        """Client connections open right now."""
        return len(self._connections)

    @property
    def connecting(self) -> int:
        """Backend connects in progress (each is a short task)."""
        return len(self._connecting)

    # -- connections --------------------------------------------------------------------------

    def _pick(self) -> _Backend | None:
        ready = [b for b in self._backends.values() if b.state is BackendState.READY]
        if not ready:
            return None
        if self.balance == "random":
            return self._rng.choice(ready)
        backend = ready[self._next % len(ready)]
        self._next += 1
        return backend

    def _accepted(self, connection: _Connection) -> None:
        transport = connection.client.transport
        assert transport is not None
        self._accepted_total += 1
        backend = self._pick() if self._server is not None else None
        if backend is None:
            # kube-proxy with no ready endpoint refuses the connection; here: reset it at once.
            self._rejected += 1
            connection.finished = True
            transport.abort()
            return
        self._connections.add(connection)
        connection.connect(backend)

    def _finished(self, connection: _Connection) -> None:
        self._connections.discard(connection)

"""A loopback TCP proxy that balances per connection, as kube-proxy does for a Service.

Its place: the `local` stage. `local.fleet.Fleet` puts one `TcpProxy` in front of its reference
consumer processes; the load generator targets the proxy's URL as it would target the Service.
Like kube-proxy, the proxy picks a backend once, when a client connection is accepted (round robin
or random over the READY backends), and then only pipes bytes both ways until either side closes
(`pump.Connection`). Requests on a keep-alive connection therefore all reach the backend chosen
for that connection, and a backend added later only receives *new* connections: that is why the
load generator recycles its connections.

Backends (`backends.Backend`) are added not ready (`add_backend`) and receive connections once
`set_ready`; a backend being removed `drain`s (no new connections, existing ones continue until
they close or until the drain timeout, after which they are closed); `remove_backend` drops one
at once (its process died). Connections and bytes are counted per backend (`BackendStats`).
Only loopback addresses are ever bound or connected to.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from typing import Final, Literal

from nimbus_scenarios.local.backends import Backend, BackendState, BackendStats
from nimbus_scenarios.local.loopback import check_loopback_host
from nimbus_scenarios.local.pump import Connection, Connections

# BackendState and BackendStats are re-exported: the proxy's methods answer in them.
__all__ = ["BackendState", "BackendStats", "Balance", "ProxyStats", "TcpProxy"]

_LISTENER: Final = "the local proxy"
_DEFAULT_CONNECT_TIMEOUT_S: Final = 5.0
_DEFAULT_DRAIN_TIMEOUT_S: Final = 10.0

Balance = Literal["round_robin", "random"]
"""How a backend is picked for a new connection."""


@dataclass(frozen=True, slots=True)
class ProxyStats:
    """The proxy's own counters: accepted connections and those refused for want of a backend."""

    accepted: int
    rejected: int
    connections_open: int


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
        self.host = check_loopback_host(host, _LISTENER)
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535 (0 picks a free port), not {port}")
        if balance not in ("round_robin", "random"):
            raise ValueError(f"balance must be round_robin or random, not {balance!r}")
        self.requested_port = port
        self.balance: Balance = balance
        self.connect_timeout_s = connect_timeout_s
        self._rng = rng if rng is not None else random.Random()
        self._backends: dict[str, Backend] = {}
        self._connections = Connections(connect_timeout_s, self._accepted)
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
            self._connections.new_client,
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
        for connection in list(self._connections.open):
            connection.abort()
        tasks = list(self._connections.connecting)
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
        backend = Backend(name, check_loopback_host(host, _LISTENER), port)
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

    def _backend(self, name: str) -> Backend:
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
        return ProxyStats(self._accepted_total, self._rejected, len(self._connections.open))

    @property
    def connections_open(self) -> int:
        """Client connections open right now."""
        return len(self._connections.open)

    @property
    def connecting(self) -> int:
        """Backend connects in progress (each is a short task)."""
        return len(self._connections.connecting)

    # -- connections --------------------------------------------------------------------------

    def _pick(self) -> Backend | None:
        ready = [b for b in self._backends.values() if b.state is BackendState.READY]
        if not ready:
            return None
        if self.balance == "random":
            return self._rng.choice(ready)
        backend = ready[self._next % len(ready)]
        self._next += 1
        return backend

    def _accepted(self, connection: Connection) -> None:
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
        self._connections.open.add(connection)
        connection.connect(backend)

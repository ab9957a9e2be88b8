"""The LoadTransport seam: how the load engine puts one HTTP request on the wire.

Its place: the `engine` stage. The pacer decides *when* a request goes out and the statistics
(`engine.stats`) record *what happened*; a transport only sends. It takes a `PreparedRequest`
(`engine.request`), sends it, reads and discards the response body (so the keep-alive
connection can be reused) and returns a tiny `Outcome`: the status code, or an `ErrorKind`. It
never raises for network problems and takes no times: the engine measures those itself.
Cancellation propagates.

Body cap (`MAX_BODY_BYTES`, 1 MiB)
----------------------------------
Every kind reads at most about `MAX_BODY_BYTES` of a body: the bytes as they come off the wire
(no decompression), each chunk discarded once counted. A body longer than that (an endless
stream, a runaway export) is cut: reading stops as soon as more than `MAX_BODY_BYTES` have
arrived, that connection is closed (never handed back to the pool half read), and the outcome
keeps its status, marked ``truncated`` (`engine.request.truncated_outcome`): it is a response
(timed, its status counted) and the engine counts it in ``truncated``. The answers a load test
needs (the consumer's small JSON) are far below the cap; without it the httpx kinds buffer a
whole body in memory (gigabytes for an endless one) and aiohttp reads until the timeout.

This module holds the seam itself (`LoadTransport`) and the connection recycling every transport
shares (`RecyclingTransport`); the clients live in `engine.clients` and `engine.lean`, and
`engine.factory` makes them, importing them only when a transport is made, so that importing the
engine does not load aiohttp, httpx or httptools.
The hot path is kept lean on purpose (thousands of calls per second on one event loop): no
logging, no exceptions in the normal path, and the recycling check is one monotonic-clock
comparison.

Transports (see `engine.factory.make_transport`):

=================  ==========================================================================
kind               implementation
=================  ==========================================================================
``aiohttp``        `AiohttpTransport`: an aiohttp ClientSession directly (the fast path).
``httpx-aiohttp``  `HttpxTransport(kind="aiohttp")`: httpx.AsyncClient over httpx-aiohttp.
``httpx``          `HttpxTransport(kind="default")`: httpx.AsyncClient with its own pool.
``lean``           `engine.lean.LeanTransport`: asyncio protocols and httptools (the default).
=================  ==========================================================================

Connection recycling (``connection_max_age_s``)
-----------------------------------------------
A per-connection load balancer (kube-proxy) picks a replica when a TCP connection is opened, so
keep-alive connections that live forever never reach replicas added later. Connections are
therefore recycled in *generations*: a generation is one client (session + pool) started at time
``S``. Every `send` compares the monotonic clock with ``S + connection_max_age_s``; the first
send at or after it starts a fresh generation and all later sends use it, while the retired one
keeps serving the requests already in flight and is closed (with its idle connections) as soon as
its last in-flight request finishes: in-flight requests are never aborted. Exact guarantee: every
request of a generation entered `send` before ``S + connection_max_age_s`` and every connection
of it was opened at or after ``S``, so a connection is never given a new request once its age is
``>= connection_max_age_s`` (plus, when ``max_connections`` are all busy, the time the request
waited in the pool for a free connection, itself bounded by ``timeout_s``). The check runs on the
send itself, so there is no check interval to add: an idle old generation carries no traffic and
is closed by the next send. A retired generation is closed at the latest ``timeout_s`` after its
retirement. ``connection_max_age_s == 0`` means one new connection per request (no keep-alive);
``math.inf`` means never recycle. All connections of a generation renew together, so expect a
burst of up to ``max_connections`` connection setups every ``connection_max_age_s``.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Final, Generic, Protocol, TypeVar

from nimbus_scenarios.engine.request import Outcome, PreparedRequest

__all__ = ["MAX_BODY_BYTES", "LoadTransport", "RecyclingTransport"]

MAX_BODY_BYTES: Final = 1 << 20
"""The most of a response body a transport reads (1 MiB); see "Body cap" above."""


class LoadTransport(Protocol):
    """Sends prepared requests for the load engine; see the module docstring."""

    @property
    def connections_opened(self) -> int:
        """TCP connections attempted so far (sockets opened, including failed connects)."""
        ...

    async def send(
        self,
        request: PreparedRequest,
        extra_headers: tuple[tuple[str, str], ...] | None = None,
    ) -> Outcome:
        """Send ``request``, read and discard the response (its body up to `MAX_BODY_BYTES`,
        then cut: ``Outcome.truncated``), return its outcome.

        ``extra_headers`` (per-request headers such as telemetry's ``traceparent``) are sent
        after the prepared ones; None (the default) costs nothing.
        Never raises for network problems (they become ``Outcome(None, ErrorKind...)``);
        cancellation propagates.
        """
        ...

    async def aclose(self) -> None:
        """Close every connection; call once no request is in flight any more."""
        ...


ClientT = TypeVar("ClientT")


class _Generation(Generic[ClientT]):
    """One client (session + connection pool) and the requests in flight on it."""

    __slots__ = ("client", "in_flight", "retired")

    def __init__(self, client: ClientT) -> None:
        self.client = client
        self.in_flight = 0
        self.retired = False


_monotonic: Final = time.monotonic


class RecyclingTransport(Generic[ClientT]):
    """The generation bookkeeping shared by every transport (see "Connection recycling").

    A client module subclasses it with `_new_client` and `_close_client`, and brackets every
    send with `_acquire` and `_finish`.
    """

    def __init__(
        self, *, timeout_s: float, connection_max_age_s: float, max_connections: int
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        if not connection_max_age_s >= 0:
            raise ValueError(f"connection_max_age_s must be >= 0, got {connection_max_age_s!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections!r}")
        self.timeout_s = float(timeout_s)
        self.connection_max_age_s = float(connection_max_age_s)
        self.max_connections = int(max_connections)
        self.generations_started = 0
        self.force_close = connection_max_age_s == 0
        """One connection per request (no keep-alive): what a max age of 0 means."""
        self._gen: _Generation[ClientT] | None = None
        self._rotate_at = -math.inf
        self._draining: set[_Generation[ClientT]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self._connections_opened = 0

    @property
    def connections_opened(self) -> int:
        """TCP connections attempted so far (sockets opened, including failed connects)."""
        return self._connections_opened

    def count_connection(self) -> None:
        """A client opened a socket (the clients' connection hooks call this)."""
        self._connections_opened += 1

    # Subclass hooks ------------------------------------------------------------------------

    def _new_client(self) -> ClientT:
        raise NotImplementedError

    async def _close_client(self, client: ClientT) -> None:
        raise NotImplementedError

    # Generations ---------------------------------------------------------------------------

    def _rotate(self, now: float) -> _Generation[ClientT]:
        """Start a new generation (the first one, or because the current one is too old)."""
        if self._closed:
            raise RuntimeError("send() on a closed transport")
        old = self._gen
        gen = _Generation(self._new_client())
        self._gen = gen
        self.generations_started += 1
        if self.force_close or math.isinf(self.connection_max_age_s):
            self._rotate_at = math.inf
        else:
            self._rotate_at = now + self.connection_max_age_s
        if old is not None:
            old.retired = True
            if old.in_flight:
                self._draining.add(old)
            else:
                self._close_later(old)
        return gen

    def _acquire(self) -> _Generation[ClientT]:
        """The generation a new request uses (starting a fresh one when its age is up)."""
        gen = self._gen
        if gen is None or _monotonic() >= self._rotate_at:
            gen = self._rotate(_monotonic())
        gen.in_flight += 1
        return gen

    def _finish(self, gen: _Generation[ClientT]) -> None:
        """A request of `gen` ended; a retired generation closes after its last one."""
        gen.in_flight -= 1
        if gen.retired and not gen.in_flight and gen in self._draining:
            self._close_later(gen)

    def _close_later(self, gen: _Generation[ClientT]) -> None:
        self._draining.discard(gen)
        task = asyncio.get_running_loop().create_task(self._close_quietly(gen.client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_quietly(self, client: ClientT) -> None:
        try:
            await self._close_client(client)
        except Exception:  # closing is best effort: the sockets are gone either way
            return

    async def aclose(self) -> None:
        """Close every generation (the current one and retired ones still draining)."""
        self._closed = True
        gens = list(self._draining)
        if self._gen is not None:
            gens.append(self._gen)
        self._gen = None
        self._rotate_at = -math.inf  # the next send goes to _rotate(), which refuses
        self._draining.clear()
        for gen in gens:
            await self._close_quietly(gen.client)
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

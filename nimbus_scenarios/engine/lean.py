"""The lean transport: HTTP/1.1 over asyncio protocols, responses parsed by httptools.

Its place: the `engine` stage, on top of `engine.transport` (the seam, generations),
`engine.wire` (the request bytes) and `engine.http11` (one connection's protocol and parser);
`engine.factory.make_transport` imports it on first use, so importing the engine loads neither
httptools nor this module. It runs on the running loop's own transports (uvloop's when uvloop
runs), with no HTTP client library: each connection is an `asyncio.Protocol` that writes the
encoded request and feeds what arrives to an `httptools.HttpResponseParser`, counting body bytes
and keeping none.

What it does, and no more (the scenarios express nothing else):

- One connection pool per generation (`engine.transport`, "Connection recycling"), with idle
  keep-alive connections kept per host, port and scheme, and at most ``max_connections``
  connections busy at once (connecting or carrying a request) across hosts, the bound aiohttp's
  ``TCPConnector(limit=...)`` sets; a request over it waits for one to come free (within
  ``timeout_s``). A connection goes back to the pool when its response ended and both sides
  keep it alive (``Connection: close``, HTTP/1.0 without keep-alive, a body delimited by the
  close, or ``connection_max_age_s == 0`` close it instead).
- Bodies framed by ``Content-Length``, chunked, or delimited by the close; none for HEAD, 1xx,
  204 and 304. Interim 1xx answers are skipped. The body cap: more than `MAX_BODY_BYTES` cuts
  the body, closes the connection and keeps the status, marked ``truncated``.
- ``https``: TLS with certificate and host name verification, the context aiohttp uses by
  default (``ssl.create_default_context()``, ALPN ``http/1.1``; the system's CA certificates,
  ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured), made once per process.
- ``timeout_s`` bounds the whole exchange (pool wait, DNS, connect, TLS handshake, request,
  response), like every kind. Host names are resolved on the loop's resolver and cached for
  10 s (aiohttp's default); addresses are tried in order. Redirects are not followed, cookies
  are not kept, no proxy is used (``HTTP_PROXY`` is ignored, as ``trust_env=False`` does for
  the other kinds).
- Like aiohttp, an idempotent request is sent once more, on a new connection, when a *reused*
  keep-alive connection turns out to have been closed by the server before a byte of the
  answer came (the server closed it idle just as the request went out).

Errors (no exception leaves `send` but cancellation and the closed-transport RuntimeError):

==========================================================================  ==============
what happened                                                               ErrorKind
==========================================================================  ==============
no complete response within ``timeout_s`` (whatever stage it was at)        ``timeout``
DNS failure, refused, unreachable, TLS handshake or certificate failure     ``connect``
the connection closed or reset before the response ended (a body cut        ``reset``
short, no answer at all), a write on a broken pipe
an answer httptools cannot parse (not HTTP/1.x, a bad chunk, an upgrade)    ``protocol``
anything else (a URL or header it cannot send, another OS error)            ``other``
==========================================================================  ==============
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
from collections import deque
from typing import Any, Final

from nimbus_scenarios.engine.http11 import Connection, Failure, Key
from nimbus_scenarios.engine.request import (
    ErrorKind,
    Outcome,
    PreparedRequest,
    error_outcome,
)
from nimbus_scenarios.engine.transport import RecyclingTransport
from nimbus_scenarios.engine.wire import WireRequest, encode

__all__ = ["LeanTransport"]

DNS_TTL_S: Final = 10.0
"""How long a resolved host name is reused (aiohttp's default ``ttl_dns_cache``)."""
CLOSE_WAIT_S: Final = 1.0
"""Closing a pool: how long closed connections get to finish (a TLS goodbye) before abort."""
_MAX_CACHED_REQUESTS: Final = 4096

_CONNECT_ERRNOS: Final = frozenset(
    {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN}
)
_RESET_ERRNOS: Final = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})

AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]
"""One address from getaddrinfo: family, type, protocol, canonical name, socket address."""


def _classify(exc: Exception) -> ErrorKind:
    """An exception that is not a `Failure`: its kind."""
    if isinstance(exc, TimeoutError):
        return ErrorKind.timeout
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return ErrorKind.reset
    if isinstance(exc, OSError):
        if exc.errno in _RESET_ERRNOS:
            return ErrorKind.reset
        if exc.errno in _CONNECT_ERRNOS:
            return ErrorKind.connect
    return ErrorKind.other


_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """The verifying TLS context, made on the first https connection (it reads the CAs)."""
    global _tls  # noqa: PLW0603 - one context per process, as aiohttp has
    if _tls is None:
        context = ssl.create_default_context()
        context.set_alpn_protocols(["http/1.1"])
        _tls = context
    return _tls


# --------------------------------------------------------------------------------------------
# The pool of one generation


class _Pool:
    """The connections of one generation: idle ones per key, at most ``limit`` busy."""

    def __init__(self, owner: LeanTransport) -> None:
        self.owner = owner
        self.loop = asyncio.get_running_loop()
        self.limit = owner.max_connections
        self.keep_alive = not owner.force_close
        self.busy = 0
        self.idle: dict[Key, list[Connection]] = {}
        self.connections: set[Connection] = set()
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    async def exchange(self, wire: WireRequest, data: bytes, timeout_s: float) -> Outcome:
        """Send ``data`` to ``wire``'s host and return the outcome (or raise a failure)."""
        loop = self.loop
        deadline = loop.time() + timeout_s
        retried = False
        while True:
            conn = self.checkout(wire.key)
            if conn is None:
                conn = await self.open(wire.key, deadline)
            waiter: asyncio.Future[Outcome] = loop.create_future()
            conn.begin(waiter, data, wire.is_head, loop.call_at(deadline, conn.expire))
            try:
                return await waiter
            except Failure as failure:
                if failure.retry and wire.idempotent and not retried:
                    retried = True
                    continue
                raise
            except BaseException:
                if conn.waiter is waiter:
                    conn.abandon()
                raise

    def checkout(self, key: Key) -> Connection | None:
        """An idle connection to ``key``, now busy; None when there is none."""
        idle = self.idle.get(key)
        while idle:
            conn = idle.pop()
            conn.idle = False
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            self.busy += 1
            return conn
        return None

    async def open(self, key: Key, deadline: float) -> Connection:
        """A connection to ``key``: an idle one that came free, or a new one, within the limit
        (waiting for a busy one to end) and ``deadline``."""
        async with asyncio.timeout_at(deadline):
            while self.busy >= self.limit:
                turn: asyncio.Future[None] = self.loop.create_future()
                self.waiters.append(turn)
                try:
                    await turn
                except BaseException:
                    if turn.done() and not turn.cancelled():
                        self._wake()  # woken, then cancelled: the turn passes on
                    else:
                        with contextlib.suppress(ValueError):
                            self.waiters.remove(turn)
                    raise
                conn = self.checkout(key)
                if conn is not None:
                    return conn
            self.busy += 1
            try:
                return await self._connect(key)
            except BaseException:
                self.busy -= 1
                self._wake()
                raise

    async def _connect(self, key: Key) -> Connection:
        host, port, tls = key
        try:
            infos = await self.owner.resolve(host, port)
        except OSError as exc:  # socket.gaierror: the name does not resolve
            raise Failure(ErrorKind.connect) from exc
        sock: socket.socket | None = None
        error: OSError | None = None
        for family, kind, proto, _, address in infos:
            self.owner.count_connection()
            candidate = socket.socket(family, kind, proto)
            try:
                candidate.setblocking(False)
                await self.loop.sock_connect(candidate, address)
            except OSError as exc:
                candidate.close()
                error = exc
                continue
            except BaseException:
                candidate.close()
                raise
            sock = candidate
            break
        if sock is None:
            raise Failure(ErrorKind.connect) from error
        conn = Connection(self, key)
        try:
            await self.loop.create_connection(
                lambda: conn,
                sock=sock,
                ssl=_tls_context() if tls else None,
                server_hostname=host if tls else None,
            )
        except OSError as exc:  # ssl.SSLError (a failed handshake or certificate) included
            raise Failure(ErrorKind.connect) from exc
        self.connections.add(conn)
        return conn

    def release(self, conn: Connection, *, keep: bool) -> None:
        """An exchange on ``conn`` ended: it goes idle (``keep``) or is closed."""
        self.busy -= 1
        transport = conn.transport
        if keep and self.keep_alive and not self.closed and not conn.closed:
            conn.idle = True
            conn.reused = True
            idle = self.idle.get(conn.key)
            if idle is None:
                self.idle[conn.key] = [conn]
            else:
                idle.append(conn)
        elif transport is not None:
            transport.close()
        if self.waiters:
            self._wake()

    def forget(self, conn: Connection) -> None:
        """``conn`` is closed: out of the pool."""
        self.connections.discard(conn)
        if conn.idle:
            conn.idle = False
            idle = self.idle.get(conn.key)
            if idle is not None:
                with contextlib.suppress(ValueError):
                    idle.remove(conn)

    def _wake(self) -> None:
        while self.waiters:
            turn = self.waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    async def close(self) -> None:
        """Close every connection, waiting up to `CLOSE_WAIT_S` for them to go."""
        self.closed = True
        for idle in self.idle.values():
            for conn in idle:
                conn.idle = False
        self.idle.clear()
        pending: list[asyncio.Future[None]] = []
        for conn in list(self.connections):
            if conn.closed or conn.transport is None:
                continue
            conn.lost = self.loop.create_future()
            pending.append(conn.lost)
            conn.transport.close()
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_WAIT_S)
        for conn in list(self.connections):
            if not conn.closed and conn.transport is not None:
                conn.transport.abort()
        for conn in list(self.connections):
            if conn.lost is not None and not conn.lost.done():
                await asyncio.wait([conn.lost], timeout=CLOSE_WAIT_S)


# --------------------------------------------------------------------------------------------
# The transport


class LeanTransport(RecyclingTransport[_Pool]):
    """HTTP/1.1 over asyncio protocols and httptools (see the module docstring)."""

    def __init__(
        self, *, timeout_s: float, connection_max_age_s: float, max_connections: int
    ) -> None:
        super().__init__(
            timeout_s=timeout_s,
            connection_max_age_s=connection_max_age_s,
            max_connections=max_connections,
        )
        self._wires: dict[int, tuple[PreparedRequest, WireRequest]] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[AddrInfo]]] = {}

    def _new_client(self) -> _Pool:
        return _Pool(self)

    async def _close_client(self, client: _Pool) -> None:
        await client.close()

    def _wire(self, request: PreparedRequest) -> WireRequest:
        """``request`` encoded, cached by identity (the engine sends the same objects)."""
        entry = self._wires.get(id(request))
        if entry is not None and entry[0] is request:
            return entry[1]
        wire = encode(request)
        if len(self._wires) >= _MAX_CACHED_REQUESTS:
            self._wires.clear()
        self._wires[id(request)] = (request, wire)
        return wire

    async def resolve(self, host: str, port: int) -> list[AddrInfo]:
        """The addresses of ``host``: numeric ones at once, names through the loop's resolver,
        cached for `DNS_TTL_S`."""
        try:
            return list(
                socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
            )
        except socket.gaierror:
            pass
        loop = asyncio.get_running_loop()
        now = loop.time()
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        infos: list[AddrInfo] = list(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        self._dns[(host, port)] = (now + DNS_TTL_S, infos)
        return infos

    async def send(
        self,
        request: PreparedRequest,
        extra_headers: tuple[tuple[str, str], ...] | None = None,
    ) -> Outcome:
        """Send ``request`` and return its outcome; see `LoadTransport.send`."""
        gen = self._acquire()
        try:
            wire = self._wire(request)
            return await gen.client.exchange(wire, wire.with_extra(extra_headers), self.timeout_s)
        except Failure as failure:
            return error_outcome(failure.kind)
        except Exception as exc:
            return error_outcome(_classify(exc))
        finally:
            self._finish(gen)

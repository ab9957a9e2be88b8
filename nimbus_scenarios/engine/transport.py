"""The LoadTransport seam: how the load engine puts one HTTP request on the wire.

Its place: the `engine` stage. The open-model pacer decides *when* a request goes out and the
statistics (`engine.stats`) record *what happened*; this module only sends. A transport takes a
`PreparedRequest` (built once, ahead of time, by `prepare`), sends it, reads and discards the
whole response body (so the keep-alive connection can be reused) and returns a tiny `Outcome`:
the status code, or an `ErrorKind`. It never raises for network problems and takes no times: the
engine measures those itself. Cancellation propagates.

The hot path is kept lean on purpose (thousands of calls per second on one event loop): no
logging, no exceptions in the normal path, outcomes for every status code and every error kind
are pre-built singletons, and the recycling check is one monotonic-clock comparison.

Transports (see `make_transport`):

=================  ==========================================================================
kind               implementation
=================  ==========================================================================
``aiohttp``        `AiohttpTransport`: an aiohttp ClientSession directly (the fast path).
``httpx-aiohttp``  `HttpxTransport(kind="aiohttp")`: httpx.AsyncClient over httpx-aiohttp.
``httpx``          `HttpxTransport(kind="default")`: httpx.AsyncClient with its own pool.
=================  ==========================================================================

``timeout_s`` bounds the whole exchange (pool wait, connect, request, response headers and body)
for every kind; the httpx kinds add an ``asyncio.timeout`` because httpx's own timeouts are per
operation. Redirects are never followed (a 3xx is an outcome). Note that aiohttp, like browsers,
silently retries an idempotent request once when a *reused* keep-alive connection turns out to
have been closed by the server before the request could be written.

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

Exception mapping (checked in this order, most specific first)
-------------------------------------------------------------
httpx exceptions raised by httpx-aiohttp wrap the aiohttp exception as ``__cause__``; the cause is
classified instead (httpx-aiohttp's own mapping turns every aiohttp connection error, even a
refused connection, into ``httpx.ConnectTimeout``).

==========================================================================  ==============
foreign exception                                                            ErrorKind
==========================================================================  ==============
``TimeoutError`` (= ``asyncio.TimeoutError``: aiohttp's total timeout and    ``timeout``
``asyncio.timeout``), ``aiohttp.ServerTimeoutError`` (connect / socket read
timeouts), ``httpx.TimeoutException`` (connect, read, write, pool)
``aiohttp.ClientConnectorError`` (refused, DNS, unreachable, TLS handshake),  ``connect``
``httpx.ConnectError``, ``ConnectionRefusedError``, ``socket.gaierror``,
``OSError`` with errno ECONNREFUSED / ENETUNREACH / EHOSTUNREACH
``aiohttp.ServerDisconnectedError``, ``aiohttp.ClientPayloadError`` "payload  ``reset``
is not completed" (body cut short), ``ConnectionResetError``,
``BrokenPipeError``, ``ConnectionAbortedError``, ``aiohttp.ClientOSError``
or ``OSError`` with errno ECONNRESET / EPIPE / ECONNABORTED,
``httpx.ReadError``, ``httpx.WriteError``, ``httpx.RemoteProtocolError``
saying the peer disconnected / closed the connection
``aiohttp.ClientResponseError`` (unparseable response), aiohttp                ``protocol``
``HttpProcessingError``, any other ``aiohttp.ClientPayloadError``, other
``httpx.ProtocolError`` (malformed response), ``httpx.DecodingError``
anything else that is an ``Exception`` (invalid URL, other ``OSError``, ...)  ``other``
==========================================================================  ==============
"""

from __future__ import annotations

import asyncio
import errno
import math
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Generic, Literal, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
import httpcore
import httpx
from aiohappyeyeballs import AddrInfoType
from aiohttp.http_exceptions import HttpProcessingError
from httpx_aiohttp import AiohttpTransport as _HttpxAiohttpTransport

__all__ = [
    "TRANSPORT_KINDS",
    "AiohttpTransport",
    "ErrorKind",
    "HttpxTransport",
    "LoadTransport",
    "Outcome",
    "PreparedRequest",
    "classify_exception",
    "error_outcome",
    "make_transport",
    "prepare",
    "status_outcome",
]


class ErrorKind(StrEnum):
    """Why a request got no (complete) response."""

    timeout = "timeout"
    """No complete response within ``timeout_s``."""
    connect = "connect"
    """The connection could not be opened: refused, DNS failure, unreachable, TLS handshake."""
    reset = "reset"
    """The server disconnected or reset the connection, or a write hit a broken pipe."""
    protocol = "protocol"
    """The server answered something that is not valid HTTP/1.1."""
    other = "other"
    """Anything else (invalid URL, an unexpected OS error, ...)."""


# --------------------------------------------------------------------------------------------
# Requests


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """One request, ready to send: built once and reused for every send of the same request.

    ``url`` is absolute with its query already percent-encoded (`prepare` builds it);
    ``headers`` are sent as given, after the client's defaults.
    """

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None


# Characters left as they are in a path: RFC 3986 pchar plus "/" and "%" (so that sequences that
# are already percent-encoded are kept).
_PATH_SAFE: Final = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE: Final = "/:@!$&'()*+,;=-._~%?"


def prepare(
    method: str,
    base_url: str,
    path: str,
    query: Sequence[tuple[str, str]] = (),
    *,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    body: bytes | None = None,
) -> PreparedRequest:
    """Build a `PreparedRequest` from a base URL, a path, query parameters and headers.

    ``base_url`` is ``http(s)://host[:port][/prefix]`` (no query, no fragment); ``path`` is
    appended to it with exactly one "/" between them (``prepare("GET", "http://h/api/",
    "users")`` gives ``http://h/api/users``), unless ``path`` is itself an absolute http(s) URL,
    which is then used as it is. Characters not allowed in a path are percent-encoded (existing
    ``%XX`` sequences are kept). A query already in ``path`` is kept and ``query`` is appended to
    it, each name and value fully percent-encoded (a space becomes ``%20``).

    Raises ValueError for a base URL (or absolute path) that is not an absolute http(s) URL.
    """
    if path.startswith(("http://", "https://")):
        url = _check_absolute(path, allow_query=True)
    else:
        base = _check_absolute(base_url, allow_query=False).rstrip("/")
        path_part, sep, path_query = path.partition("?")
        url = base + "/" + quote(path_part.lstrip("/"), safe=_PATH_SAFE)
        if sep:
            url += "?" + quote(path_query, safe=_QUERY_SAFE)
    if query:
        encoded = "&".join(
            f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in query
        )
        url += ("&" if "?" in url else "?") + encoded
    items = headers.items() if isinstance(headers, Mapping) else headers
    return PreparedRequest(
        method=method.upper(),
        url=url,
        headers=tuple((str(name), str(value)) for name, value in items),
        body=body,
    )


def _check_absolute(url: str, *, allow_query: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    if parts.fragment or (parts.query and not allow_query):
        raise ValueError(f"a base URL takes no query or fragment: {url!r}")
    return url


# --------------------------------------------------------------------------------------------
# Outcomes


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one send produced: a status code, or an error kind (never both)."""

    status: int | None
    """The response status, None when no complete response was received."""
    error: ErrorKind | None
    """Why there is no (complete) response; None when there is one."""


_STATUS_OUTCOMES: Final[tuple[Outcome, ...]] = tuple(Outcome(code, None) for code in range(600))
_ERROR_OUTCOMES: Final[dict[ErrorKind, Outcome]] = {kind: Outcome(None, kind) for kind in ErrorKind}


def status_outcome(status: int) -> Outcome:
    """The shared `Outcome` for a response status (pre-built for 0-599)."""
    if 0 <= status < 600:
        return _STATUS_OUTCOMES[status]
    return Outcome(status, None)


def error_outcome(kind: ErrorKind) -> Outcome:
    """The shared `Outcome` for an error kind."""
    return _ERROR_OUTCOMES[kind]


# --------------------------------------------------------------------------------------------
# Exception mapping (the table in the module docstring)

_CONNECT_ERRNOS: Final = frozenset(
    {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN}
)
_RESET_ERRNOS: Final = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})
_CAUSE_TYPES: Final = (aiohttp.ClientError, HttpProcessingError, OSError)


def classify_exception(exc: BaseException) -> ErrorKind:
    """Map an exception raised while sending a request to an `ErrorKind`."""
    if isinstance(exc, httpx.HTTPError):
        cause = exc.__cause__
        if isinstance(cause, _CAUSE_TYPES):  # httpx-aiohttp wraps aiohttp's exception
            return classify_exception(cause)
        return _classify_httpx(exc)
    if isinstance(exc, TimeoutError):  # includes aiohttp.ServerTimeoutError
        return ErrorKind.timeout
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ErrorKind.connect
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ErrorKind.reset
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ErrorKind.reset if "not completed" in str(exc) else ErrorKind.protocol
    if isinstance(exc, aiohttp.ClientResponseError | HttpProcessingError):
        return ErrorKind.protocol
    if isinstance(exc, ConnectionRefusedError | socket.gaierror):
        return ErrorKind.connect
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return ErrorKind.reset
    if isinstance(exc, OSError):  # aiohttp.ClientOSError is an OSError
        if exc.errno in _RESET_ERRNOS:
            return ErrorKind.reset
        if exc.errno in _CONNECT_ERRNOS:
            return ErrorKind.connect
    return ErrorKind.other


def _classify_httpx(exc: httpx.HTTPError) -> ErrorKind:
    if isinstance(exc, httpx.TimeoutException):
        return ErrorKind.timeout
    if isinstance(exc, httpx.ConnectError):
        return ErrorKind.connect
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return ErrorKind.reset
    if isinstance(exc, httpx.RemoteProtocolError):
        message = str(exc).lower()
        if "disconnected" in message or "peer closed" in message:
            return ErrorKind.reset
        return ErrorKind.protocol
    if isinstance(exc, httpx.ProtocolError | httpx.DecodingError):
        return ErrorKind.protocol
    return ErrorKind.other


# --------------------------------------------------------------------------------------------
# The seam


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
        """Send ``request``, read and discard the whole response, return its outcome.

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


class _RecyclingTransport(Generic[ClientT]):
    """The generation bookkeeping shared by every transport (see "Connection recycling")."""

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
        self._force_close = connection_max_age_s == 0
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
        if self._force_close or math.isinf(self.connection_max_age_s):
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

    def _socket_factory(self, addr_info: AddrInfoType) -> socket.socket:
        """aiohttp's connector opens its sockets here, which counts them."""
        self._connections_opened += 1
        family, type_, proto, _, _ = addr_info
        return socket.socket(family=family, type=type_, proto=proto)

    def _new_session(self, timeout: aiohttp.ClientTimeout | None) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            force_close=self._force_close,
            socket_factory=self._socket_factory,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=timeout if timeout is not None else aiohttp.ClientTimeout(),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
        )


# --------------------------------------------------------------------------------------------
# aiohttp directly


class AiohttpTransport(_RecyclingTransport[aiohttp.ClientSession]):
    """aiohttp.ClientSession directly: the fast path (see the module docstring)."""

    def __init__(
        self, *, timeout_s: float, connection_max_age_s: float, max_connections: int
    ) -> None:
        super().__init__(
            timeout_s=timeout_s,
            connection_max_age_s=connection_max_age_s,
            max_connections=max_connections,
        )
        self._timeout = aiohttp.ClientTimeout(total=self.timeout_s)

    def _new_client(self) -> aiohttp.ClientSession:
        return self._new_session(self._timeout)

    async def _close_client(self, client: aiohttp.ClientSession) -> None:
        await client.close()

    async def send(
        self,
        request: PreparedRequest,
        extra_headers: tuple[tuple[str, str], ...] | None = None,
    ) -> Outcome:
        """Send ``request`` and return its outcome; see `LoadTransport.send`."""
        headers = request.headers if extra_headers is None else request.headers + extra_headers
        gen = self._acquire()
        try:
            async with gen.client.request(
                request.method,
                request.url,
                headers=headers or None,
                data=request.body,
                allow_redirects=False,
            ) as response:
                content = response.content
                while await content.readany():
                    pass
                status = response.status
        except Exception as exc:
            return _ERROR_OUTCOMES[classify_exception(exc)]
        finally:
            self._finish(gen)
        return status_outcome(status)


# --------------------------------------------------------------------------------------------
# httpx, over httpx-aiohttp or over its own transport


class _CountingBackend(httpcore.AsyncNetworkBackend):
    """Wraps httpcore's network backend to count the TCP connections it opens."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, on_connect: Callable[[], None]):
        self._inner = inner
        self._on_connect = on_connect

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self._on_connect()
        return await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        self._on_connect()
        return await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class HttpxTransport(_RecyclingTransport[httpx.AsyncClient]):
    """httpx.AsyncClient over httpx-aiohttp (``kind="aiohttp"``) or httpx's own pool.

    httpx is the project's HTTP API everywhere else; this transport exists so the benchmark can
    show what it costs on the hot path. ``connections_opened`` for ``kind="default"`` hooks the
    network backend of httpx's connection pool (a private attribute); should a future httpcore
    rename it, the count stays 0 while sending keeps working.
    """

    def __init__(
        self,
        kind: Literal["aiohttp", "default"] = "aiohttp",
        *,
        timeout_s: float,
        connection_max_age_s: float,
        max_connections: int,
    ) -> None:
        if kind not in ("aiohttp", "default"):
            raise ValueError(f"HttpxTransport kind must be 'aiohttp' or 'default', got {kind!r}")
        super().__init__(
            timeout_s=timeout_s,
            connection_max_age_s=connection_max_age_s,
            max_connections=max_connections,
        )
        self.kind = kind

    def _count_connection(self) -> None:
        self._connections_opened += 1

    def _new_client(self) -> httpx.AsyncClient:
        common: dict[str, Any] = {
            "timeout": httpx.Timeout(self.timeout_s),
            "follow_redirects": False,
            "trust_env": False,
        }
        if self.kind == "aiohttp":
            # httpx-aiohttp passes per-operation timeouts that replace the session's: the total
            # deadline comes from asyncio.timeout in send().
            transport = _HttpxAiohttpTransport(client=self._new_session(None))
            return httpx.AsyncClient(transport=transport, **common)
        limits = httpx.Limits(
            max_connections=self.max_connections,
            max_keepalive_connections=0 if self._force_close else self.max_connections,
        )
        client = httpx.AsyncClient(limits=limits, **common)
        pool = getattr(client._transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.AsyncNetworkBackend):
            pool._network_backend = _CountingBackend(backend, self._count_connection)  # type: ignore[union-attr]
        return client

    async def _close_client(self, client: httpx.AsyncClient) -> None:
        await client.aclose()

    async def send(
        self,
        request: PreparedRequest,
        extra_headers: tuple[tuple[str, str], ...] | None = None,
    ) -> Outcome:
        """Send ``request`` and return its outcome; see `LoadTransport.send`."""
        headers = request.headers if extra_headers is None else request.headers + extra_headers
        gen = self._acquire()
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await gen.client.request(
                    request.method,
                    request.url,
                    headers=headers or None,
                    content=request.body,
                )
            status = response.status_code
        except Exception as exc:
            return _ERROR_OUTCOMES[classify_exception(exc)]
        finally:
            self._finish(gen)
        return status_outcome(status)


# --------------------------------------------------------------------------------------------
# Factory

TRANSPORT_KINDS: Final = ("aiohttp", "httpx-aiohttp", "httpx")


def make_transport(
    kind: str, *, timeout_s: float, connection_max_age_s: float, max_connections: int
) -> LoadTransport:
    """Build the transport named ``kind`` (one of `TRANSPORT_KINDS`)."""
    if kind == "aiohttp":
        return AiohttpTransport(
            timeout_s=timeout_s,
            connection_max_age_s=connection_max_age_s,
            max_connections=max_connections,
        )
    if kind in ("httpx-aiohttp", "httpx"):
        return HttpxTransport(
            "aiohttp" if kind == "httpx-aiohttp" else "default",
            timeout_s=timeout_s,
            connection_max_age_s=connection_max_age_s,
            max_connections=max_connections,
        )
    valid = ", ".join(TRANSPORT_KINDS)
    raise ValueError(f"unknown transport kind {kind!r}; valid kinds: {valid}")

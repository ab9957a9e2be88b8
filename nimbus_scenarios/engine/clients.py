"""The HTTP clients behind the `LoadTransport` seam, and their exceptions mapped to `ErrorKind`.

Its place: the `engine` stage, on top of `engine.transport`; `engine.factory.make_transport`
imports this module on first use (so that importing the engine loads no HTTP client). Every
transport here is a `RecyclingTransport`: connections are recycled by generations (see
`engine.transport`).

``timeout_s`` bounds the whole exchange (pool wait, connect, request, response headers and body)
for every kind, and every kind reads at most about `MAX_BODY_BYTES` (1 MiB) of a body, then cuts
it: that connection is closed and the outcome keeps its status, marked ``truncated`` (see
`engine.transport`, "Body cap"). aiohttp closes the response itself (`ClientResponse.close`
drops the connection); the httpx kinds leave the response's ``stream`` block half read, which
closes the connection in httpcore and, under httpx-aiohttp, in aiohttp (a connection whose body
was not read to its end is never put back in the pool). The httpx kinds add an
``asyncio.timeout`` because httpx's own timeouts are per operation. Redirects are never followed
(a 3xx is an outcome). Note that aiohttp, like browsers, silently retries an idempotent request
once when a *reused* keep-alive connection turns out to have been closed by the server before
the request could be written.

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
import contextlib
import errno
import socket
from collections.abc import AsyncGenerator, Callable
from typing import Any, Final, Literal, cast

import aiohttp
import httpcore
import httpx
from aiohappyeyeballs import AddrInfoType
from aiohttp.http_exceptions import HttpProcessingError
from httpx_aiohttp import AiohttpTransport as _HttpxAiohttpTransport

from nimbus_scenarios.engine.request import (
    ErrorKind,
    Outcome,
    PreparedRequest,
    error_outcome,
    status_outcome,
    truncated_outcome,
)
from nimbus_scenarios.engine.transport import MAX_BODY_BYTES, RecyclingTransport

__all__ = ["AiohttpTransport", "HttpxTransport", "classify_exception"]


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
# aiohttp directly


def _aiohttp_session(
    owner: RecyclingTransport[Any], timeout: aiohttp.ClientTimeout | None
) -> aiohttp.ClientSession:
    """A session for one generation of ``owner``, counting the sockets its connector opens."""

    def socket_factory(addr_info: AddrInfoType) -> socket.socket:
        owner.count_connection()
        family, type_, proto, _, _ = addr_info
        return socket.socket(family=family, type=type_, proto=proto)

    connector = aiohttp.TCPConnector(
        limit=owner.max_connections,
        force_close=owner.force_close,
        socket_factory=socket_factory,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout if timeout is not None else aiohttp.ClientTimeout(),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        trust_env=False,
    )


class AiohttpTransport(RecyclingTransport[aiohttp.ClientSession]):
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
        return _aiohttp_session(self, self._timeout)

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
        left = MAX_BODY_BYTES
        try:
            async with gen.client.request(
                request.method,
                request.url,
                headers=headers or None,
                data=request.body,
                allow_redirects=False,
            ) as response:
                content = response.content
                while chunk := await content.readany():
                    left -= len(chunk)
                    if left < 0:
                        response.close()  # half read: its connection is closed, not pooled
                        break
                status = response.status
        except Exception as exc:
            return error_outcome(classify_exception(exc))
        finally:
            self._finish(gen)
        return status_outcome(status) if left >= 0 else truncated_outcome(status)


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


class HttpxTransport(RecyclingTransport[httpx.AsyncClient]):
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

    def _new_client(self) -> httpx.AsyncClient:
        timeout = httpx.Timeout(self.timeout_s)
        if self.kind == "aiohttp":
            # httpx-aiohttp passes per-operation timeouts that replace the session's: the total
            # deadline comes from asyncio.timeout in send().
            transport = _HttpxAiohttpTransport(client=_aiohttp_session(self, None))
            return httpx.AsyncClient(
                transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
            )
        limits = httpx.Limits(
            max_connections=self.max_connections,
            max_keepalive_connections=0 if self.force_close else self.max_connections,
        )
        client = httpx.AsyncClient(
            limits=limits, timeout=timeout, follow_redirects=False, trust_env=False
        )
        pool = getattr(client._transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.AsyncNetworkBackend):
            pool._network_backend = _CountingBackend(backend, self.count_connection)  # type: ignore[union-attr]
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
        left = MAX_BODY_BYTES
        try:
            async with (
                asyncio.timeout(self.timeout_s),
                gen.client.stream(
                    request.method,
                    request.url,
                    headers=headers or None,
                    content=request.body,
                ) as response,
            ):
                # Leaving the block half read closes the connection (module docstring).
                raw = cast("AsyncGenerator[bytes, None]", response.aiter_raw())  # it is one
                async with contextlib.aclosing(raw) as chunks:
                    async for chunk in chunks:
                        left -= len(chunk)
                        if left < 0:
                            break
                status = response.status_code
        except Exception as exc:
            return error_outcome(classify_exception(exc))
        finally:
            self._finish(gen)
        return status_outcome(status) if left >= 0 else truncated_outcome(status)

"""One HTTP/1.1 connection of the lean transport: an `asyncio.Protocol` that writes a request
and feeds the answer to an `httptools.HttpResponseParser`.

Its place: the `engine` stage, under `engine.lean` (which owns the pool, the timeouts and the
retries) and imported only by it, so only a lean transport loads httptools. A `Connection`
carries one exchange at a time: `begin` writes the request's bytes; the parser's callbacks read
the status and whether a length frames the body, count the body against `MAX_BODY_BYTES` and keep
none of it; the exchange ends once (`Owner.release` gets the connection back, kept alive or
closed) with the outcome on the waiter, or a `Failure` (or TimeoutError from `expire`) on it.

How an answer ends: at its length, its last chunk, its headers (HEAD, 1xx skipped as interim,
204, 304), or the close when no length frames it; past the cap (cut: ``truncated``, the
connection aborted). A close or reset before that is ``reset`` (``retry`` when the connection was
reused and not a byte came: the server closed it idle just then); what httptools cannot parse
(an upgrade included) is ``protocol``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, cast

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from nimbus_scenarios.engine.request import (
    ErrorKind,
    Outcome,
    status_outcome,
    truncated_outcome,
)
from nimbus_scenarios.engine.transport import MAX_BODY_BYTES

__all__ = ["Connection", "Failure", "Key", "Owner"]

Key = tuple[str, int, bool]
"""Host, port and TLS: the connections that may carry a request."""


class Failure(Exception):
    """No (complete) response, and why; ``retry``: a reused connection closed before any
    byte of the answer (safe to send an idempotent request again)."""

    def __init__(self, kind: ErrorKind, *, retry: bool = False) -> None:
        super().__init__(kind.value)
        self.kind = kind
        self.retry = retry


class Owner(Protocol):
    """The pool a connection belongs to (`engine.lean`)."""

    def release(self, conn: Connection, *, keep: bool) -> None:
        """An exchange on ``conn`` ended: it goes idle (``keep``) or is closed."""
        ...

    def forget(self, conn: Connection) -> None:
        """``conn`` is closed: out of the pool."""
        ...


class Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: writes a request, parses its response, counts its body.

    Busy from the pool's checkout until its exchange ends (`_complete`, `_fail`, `abandon`),
    which hands it back to the pool (`Owner.release`) exactly once.
    """

    def __init__(self, pool: Owner, key: Key) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = HttpResponseParser(self)
        self.waiter: asyncio.Future[Outcome] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.status = 0
        self.left = MAX_BODY_BYTES
        self.headers_done = False
        self.framed = False
        """The answer has a Content-Length or Transfer-Encoding (else the close ends it)."""
        self.received = False
        self.is_head = False
        self.reused = False
        """It carried an exchange before this one (kept alive)."""
        self.idle = False
        self.closed = False
        self.lost: asyncio.Future[None] | None = None

    # -- the exchange

    def begin(
        self,
        waiter: asyncio.Future[Outcome],
        data: bytes,
        is_head: bool,
        timer: asyncio.TimerHandle,
    ) -> None:
        """Send ``data``; ``waiter`` gets the outcome (or a `_Failure`, or TimeoutError)."""
        self.waiter = waiter
        self.timer = timer
        self.status = 0
        self.left = MAX_BODY_BYTES
        self.headers_done = self.framed = self.received = False
        self.is_head = is_head
        assert self.transport is not None
        self.transport.write(data)

    def expire(self) -> None:
        """The deadline passed (the exchange's timer)."""
        self.timer = None
        if self.waiter is not None:
            self._fail(TimeoutError())

    def abandon(self) -> None:
        """The sender was cancelled mid-exchange: the connection is dropped."""
        self.waiter = None
        self._end(keep=False, abort=True)

    def _end(self, *, keep: bool, abort: bool = False) -> None:
        """Stop the timer and hand the connection back (kept idle, closed or aborted)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if abort and self.transport is not None:
            self.transport.abort()
        self.pool.release(self, keep=keep)

    def _complete(self, outcome: Outcome, *, keep: bool, abort: bool = False) -> None:
        waiter = self.waiter
        assert waiter is not None
        self.waiter = None
        self._end(keep=keep, abort=abort)
        if not waiter.done():
            waiter.set_result(outcome)

    def _fail(self, exc: Exception) -> None:
        waiter = self.waiter
        assert waiter is not None
        self.waiter = None
        self._end(keep=False, abort=True)
        if not waiter.done():
            waiter.set_exception(exc)

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for, on an idle connection: drop it
            if self.transport is not None:
                self.transport.abort()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except (HttpParserError, HttpParserUpgrade):
            if self.waiter is not None:
                self._fail(Failure(ErrorKind.protocol))
            elif self.transport is not None:  # garbage after a complete answer
                self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.waiter is not None:
            if self.headers_done and not self.framed and exc is None:
                self._complete(status_outcome(self.status), keep=False)  # the close ends it
            else:
                self._fail(Failure(ErrorKind.reset, retry=self.reused and not self.received))
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)

    # -- httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) in (14, 17) and name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        if self.waiter is None:
            return
        self.status = self.parser.get_status_code()
        self.headers_done = True
        if self.is_head and self.status >= 200:
            # The answer to a HEAD ends with its headers, whatever length they announce; the
            # parser would wait for that body, so the next exchange gets a fresh one.
            keep = self.parser.should_keep_alive()
            self.parser = HttpResponseParser(self)
            self._complete(status_outcome(self.status), keep=keep)

    def on_body(self, body: bytes) -> None:
        if self.waiter is None:
            return
        self.left -= len(body)
        if self.left < 0:
            self._complete(truncated_outcome(self.status), keep=False, abort=True)

    def on_message_complete(self) -> None:
        if self.waiter is None:
            return
        if self.status < 200:  # an interim answer (100 Continue, 103): the real one follows
            self.headers_done = self.framed = False
            return
        self._complete(status_outcome(self.status), keep=self.parser.should_keep_alive())

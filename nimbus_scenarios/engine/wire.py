"""A `PreparedRequest` as the bytes the lean transport writes: HTTP/1.1 on the wire.

Its place: the `engine` stage, under `engine.lean`, importing no HTTP client. `encode` turns a
request into a `WireRequest` once (the lean transport caches it per request), so a send only
joins the cached head with the per-request extra headers (`with_extra`).

What goes out: the request line (``METHOD /path?query HTTP/1.1``), then ``Host`` (the URL's
host and port as written, without user info), ``User-Agent`` and ``Accept: */*`` unless the
request sets them itself, then the request's own headers in their order, then the extra headers,
then ``Content-Length`` when there is a body or the method carries one (POST, PUT, PATCH: ``0``
without a body), then the body (a ``Content-Length`` or ``Transfer-Encoding`` of the request's
own is dropped: the transport frames the body itself). Nothing else: no ``Accept-Encoding``
(bodies are counted as they come, never decompressed), no cookies, no ``Expect: 100-continue``.
Credentials in the URL (``http://user:pass@host``) become ``Authorization: Basic`` of the
percent-decoded ``user:pass`` (Latin-1, else UTF-8), as aiohttp sends them, unless the request
sets its own ``Authorization``. Header names and values are sent as UTF-8; a CR,
LF or NUL in either is refused (ValueError: header injection), like a URL that is not absolute
http(s).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote, urlsplit

from nimbus_scenarios.engine.request import PreparedRequest

__all__ = ["USER_AGENT", "WireRequest", "encode"]

USER_AGENT: Final = "nimbus-scenarios"

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_RESERVED: Final = frozenset({"host", "content-length", "transfer-encoding"})
"""Names an extra header may not set: the head already has them, or they frame the message."""
_FRAMING: Final = frozenset({"content-length", "transfer-encoding"})
"""The request's own headers that are dropped: the transport frames the body itself."""
_FORBIDDEN_CHARS: Final = frozenset("\r\n\0")


@dataclass(frozen=True, slots=True)
class WireRequest:
    """One request, encoded: where it goes and its bytes around the extra headers."""

    host: str
    """The host to connect to (an IPv6 address without brackets)."""
    port: int
    tls: bool
    head: bytes
    """The request line and headers, without the closing empty line and ``Content-Length``."""
    tail: bytes
    """``Content-Length`` (when sent), the empty line and the body."""
    is_head: bool
    """A HEAD request: its response has no body whatever its headers say."""
    idempotent: bool
    """Safe to send again when a reused keep-alive connection turns out closed."""

    @property
    def key(self) -> tuple[str, int, bool]:
        """The connection pool's key: connections are shared by host, port and scheme."""
        return (self.host, self.port, self.tls)

    def with_extra(self, extra: tuple[tuple[str, str], ...] | None) -> bytes:
        """The whole request, with ``extra`` headers after the request's own ones."""
        if not extra:
            return self.head + self.tail
        for name, _ in extra:
            if name.lower() in _RESERVED:
                raise ValueError(f"an extra header may not set {name!r}")
        return self.head + _headers(extra) + self.tail


def _check(text: str) -> str:
    if not _FORBIDDEN_CHARS.isdisjoint(text):
        raise ValueError(f"CR, LF or NUL in a header: {text!r}")
    return text


def _headers(headers: tuple[tuple[str, str], ...]) -> bytes:
    return "".join(f"{_check(name)}: {_check(value)}\r\n" for name, value in headers).encode()


def _basic(user: str, password: str) -> str:
    """The ``Authorization`` value for the URL's percent-encoded credentials."""
    pair = f"{unquote(user)}:{unquote(password)}"
    try:
        raw = pair.encode("latin-1")
    except UnicodeEncodeError:
        raw = pair.encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def encode(request: PreparedRequest) -> WireRequest:
    """Encode ``request`` (see the module docstring); ValueError for a URL or header it cannot
    send."""
    parts = urlsplit(request.url)
    scheme = parts.scheme
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError(f"not an absolute http(s) URL: {request.url!r}")
    port = parts.port or _DEFAULT_PORTS[scheme]  # ValueError for a port out of range
    netloc = parts.netloc.rpartition("@")[2]
    if not netloc.isascii():
        netloc = netloc.encode("idna").decode("ascii")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    method = _check(request.method)
    if " " in method or " " in _check(target):
        raise ValueError(f"a space in the method or target: {method} {target}")
    names = {name.lower() for name, _ in request.headers}
    defaults: list[tuple[str, str]] = []
    if "host" not in names:
        defaults.append(("Host", netloc))
    if "user-agent" not in names:
        defaults.append(("User-Agent", USER_AGENT))
    if "accept" not in names:
        defaults.append(("Accept", "*/*"))
    if parts.username is not None and "authorization" not in names:
        defaults.append(("Authorization", _basic(parts.username, parts.password or "")))
    own = tuple(h for h in request.headers if h[0].lower() not in _FRAMING)
    head = f"{method} {target} HTTP/1.1\r\n".encode() + _headers((*defaults, *own))
    body = request.body or b""
    length = f"Content-Length: {len(body)}\r\n" if body or method in _BODY_METHODS else ""
    return WireRequest(
        host=host,
        port=port,
        tls=scheme == "https",
        head=head,
        tail=length.encode() + b"\r\n" + body,
        is_head=method == "HEAD",
        idempotent=method in _IDEMPOTENT,
    )

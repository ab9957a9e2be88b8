"""Requests and outcomes: what goes into the `LoadTransport` seam and what comes out of it.

Its place: the bottom of the `engine` stage, with no HTTP client imported, so that the stats,
the dispatcher, the runner and telemetry can build requests and read outcomes without loading
aiohttp or httpx. `prepare` builds a `PreparedRequest` once, ahead of time; a transport
(`engine.transport`, `engine.clients`) sends it and returns an `Outcome`: the status code, or an
`ErrorKind`, never both; a response whose body was cut at the transports' cap
(`engine.transport.MAX_BODY_BYTES`) keeps its status and is marked ``truncated``.

Outcomes for every status code (plain and truncated) and every error kind are pre-built
singletons, so the hot path allocates none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import quote, urlsplit

__all__ = [
    "ErrorKind",
    "Outcome",
    "PreparedRequest",
    "error_outcome",
    "prepare",
    "status_outcome",
    "truncated_outcome",
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
    truncated: bool = False
    """The body was longer than the transports' cap (`engine.transport.MAX_BODY_BYTES`):
    reading stopped there and the connection was closed. Still a response, with its status."""


_STATUS_OUTCOMES: Final[tuple[Outcome, ...]] = tuple(Outcome(code, None) for code in range(600))
_TRUNCATED_OUTCOMES: Final[tuple[Outcome, ...]] = tuple(
    Outcome(code, None, truncated=True) for code in range(600)
)
_ERROR_OUTCOMES: Final[dict[ErrorKind, Outcome]] = {kind: Outcome(None, kind) for kind in ErrorKind}


def status_outcome(status: int) -> Outcome:
    """The shared `Outcome` for a response status (pre-built for 0-599)."""
    if 0 <= status < 600:
        return _STATUS_OUTCOMES[status]
    return Outcome(status, None)


def truncated_outcome(status: int) -> Outcome:
    """The shared `Outcome` for a response whose body was cut at the cap (pre-built, 0-599)."""
    if 0 <= status < 600:
        return _TRUNCATED_OUTCOMES[status]
    return Outcome(status, None, truncated=True)


def error_outcome(kind: ErrorKind) -> Outcome:
    """The shared `Outcome` for an error kind."""
    return _ERROR_OUTCOMES[kind]

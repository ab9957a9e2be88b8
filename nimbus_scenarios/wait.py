"""`nimbus-scenarios wait URL`: poll a URL until it answers 2xx (the Jobs' init container).

Standard library only (`http.client`), so that the init container starts fast and the wait needs
nothing the load does not. Proxies from the environment are not used: the load itself (aiohttp)
connects directly, so readiness is checked by the same route. Exit codes: 0 once ready, 4 when
the timeout passes first, 2 for a URL that can never answer (bad scheme, no host, bad port).

What a server may do to it is bounded: each attempt has one deadline for everything it does
(resolving, connecting, every byte of the answer; a socket timeout alone restarts with each byte
a server trickles), and so has the whole wait; a redirect is followed only to the same scheme,
host and port (anywhere else it is reported, not followed); and any text from the server that
reaches the terminal has its control characters escaped.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urljoin, urlsplit

from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.secrets import mask_url

if TYPE_CHECKING:
    import argparse

__all__ = [
    "DEFAULT_INTERVAL_S",
    "DEFAULT_TIMEOUT_S",
    "MAX_REDIRECTS",
    "Probe",
    "check_url",
    "printable",
    "probe",
    "wait_command",
    "wait_until_ready",
]

DEFAULT_TIMEOUT_S = 300.0
DEFAULT_INTERVAL_S = 2.0
# One attempt never takes longer than this, so a silent or trickling peer cannot eat the whole
# timeout.
ATTEMPT_TIMEOUT_S = 5.0
# While the reason for not being ready stays the same, it is repeated at most this often.
REPEAT_EVERY_S = 30.0
MAX_REDIRECTS = 5
"""Redirects followed within one attempt (each to the same scheme, host and port)."""
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SHOWN_CHARS = 200


@dataclass(frozen=True, slots=True)
class Probe:
    """One GET: the HTTP status if the server answered, else why there was no answer; `detail`
    says more about an answer (a redirect not followed)."""

    status: int | None
    error: str | None = None
    detail: str | None = None

    @property
    def ready(self) -> bool:
        """True for a 2xx answer."""
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        """`HTTP 503`, `HTTP 302 (...)` or the connection error, for messages."""
        if self.status is None:
            return str(self.error)
        return f"HTTP {self.status}" + (f" ({self.detail})" if self.detail else "")


def printable(text: str, limit: int = _SHOWN_CHARS) -> str:
    """`text` safe to print on a terminal: control and other non-printing characters escaped
    (`\\x1b`), cut to `limit` characters."""
    shown = "".join(ch if ch.isprintable() else _escaped(ch) for ch in text[: limit + 1])
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _escaped(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _shown_url(url: str) -> str:
    return printable(mask_url(url))


def check_url(url: str) -> str | None:
    """Why `url` can never be polled (scheme, host, port), or None if it is usable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"invalid URL {_shown_url(url)!r}: {exc}"
    shown = _shown_url(url)
    if parts.scheme not in ("http", "https"):
        return (
            f"invalid URL {shown!r}: expected http:// or https://, e.g. http://consumer:8000/health"
        )
    if not parts.hostname:
        return f"invalid URL {shown!r}: no host"
    if port == 0:
        return f"invalid URL {shown!r}: port 0"
    return None


def probe(url: str, timeout_s: float) -> Probe:
    """GET `url` once, directly (no proxy), following redirects to the same scheme, host and
    port; whatever the server does, it returns within `timeout_s`."""
    return _Attempt(url, time.monotonic() + timeout_s).run()


def _origin(url: str) -> tuple[str, str, int]:
    """Scheme, host and port (the scheme's default when not written)."""
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


class _Attempt:
    """One probe on a thread of its own, so that its deadline holds whatever blocks (a name
    lookup, a connect, a server that sends a byte every few seconds). At the deadline its
    socket is shut down, which ends the thread's read, and the attempt has timed out."""

    def __init__(self, url: str, deadline: float) -> None:
        self.url = url
        self.deadline = deadline
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self._abandoned = False
        self._result: Probe | None = None

    def run(self) -> Probe:
        worker = threading.Thread(target=self._work, name="nimbus-wait-probe", daemon=True)
        worker.start()
        worker.join(max(self.deadline - time.monotonic(), 0.0))
        if worker.is_alive() or self._result is None:
            self._abandon()
            return Probe(None, "timed out")
        return self._result

    def _abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            connection = self._connection
        sock = None if connection is None else connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed by the thread
                sock.shutdown(socket.SHUT_RDWR)

    def _work(self) -> None:
        try:
            result = self._follow()
        except TimeoutError:
            result = Probe(None, "timed out")
        except (OSError, http.client.HTTPException, ValueError, UnicodeError) as exc:
            result = Probe(None, _reason(exc))
        except Exception as exc:  # the thread's end: its answer must reach run() all the same
            result = Probe(None, f"{type(exc).__name__}: {_reason(exc)}")
        self._result = result

    def _follow(self) -> Probe:
        url = self.url
        for _ in range(MAX_REDIRECTS + 1):
            status, location = self._get(url)
            if status not in _REDIRECTS or location is None:
                return Probe(status)
            try:
                target = urljoin(url, location)
                elsewhere = _origin(target) != _origin(self.url)
            except ValueError:
                return Probe(status, detail=f"a redirect to `{printable(location)}`, not a URL")
            if elsewhere:
                return Probe(
                    status, detail=f"a redirect to {_shown_url(target)}, not followed: another host"
                )
            url = target
        return Probe(status, detail=f"more than {MAX_REDIRECTS} redirects")

    def _get(self, url: str) -> tuple[int, str | None]:
        parts = urlsplit(url)
        remaining = max(self.deadline - time.monotonic(), 0.001)
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                parts.hostname or "",
                parts.port,
                timeout=remaining,
                context=ssl.create_default_context(),
            )
        else:
            connection = http.client.HTTPConnection(
                parts.hostname or "", parts.port, timeout=remaining
            )
        with self._lock:
            if self._abandoned:
                raise TimeoutError
            self._connection = connection
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.request(
                "GET",
                target,
                headers={"User-Agent": "nimbus-scenarios-wait", "Connection": "close"},
            )
            response = connection.getresponse()
            return int(response.status), response.getheader("Location")
        finally:
            connection.close()


def _reason(reason: BaseException) -> str:
    """Why there was no answer, as a phrase; text the server sent (a bad status line) escaped."""
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror[:1].lower() + reason.strerror[1:]
    if isinstance(reason, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(reason, http.client.BadStatusLine):
        return f"not an HTTP answer: `{printable(str(reason).strip())}`"
    return printable(str(reason)) or type(reason).__name__


def _seconds(value: float) -> str:
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g}m"
    return f"{value:g}s"


def wait_until_ready(
    url: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval_s: float = DEFAULT_INTERVAL_S,
    out: TextIO | None = None,
    err: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    attempt: Callable[[str, float], Probe] = probe,
) -> int:
    """Poll `url` every `interval_s` until it answers 2xx; the exit code (0, 2 or 4).

    At least one attempt is made however short the timeout; no attempt or sleep runs past it.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    problem = check_url(url)
    if problem is not None:
        print(f"nimbus-scenarios wait: {problem}", file=err)
        return ExitCode.USAGE
    shown = _shown_url(url)
    started = clock()
    deadline = started + timeout_s
    print(
        f"waiting for {shown} to answer 2xx (timeout {_seconds(timeout_s)}, "
        f"every {_seconds(interval_s)})",
        file=err,
        flush=True,
    )
    attempts = 0
    last: Probe | None = None
    last_said: tuple[str, float] | None = None
    while True:
        attempts += 1
        remaining = deadline - clock()
        last = attempt(url, min(ATTEMPT_TIMEOUT_S, max(remaining, 0.001)))
        now = clock()
        if last.ready:
            print(
                f"{shown} is ready: HTTP {last.status} after {now - started:.1f}s "
                f"({attempts} attempt{'s' if attempts > 1 else ''})",
                file=out,
                flush=True,
            )
            return ExitCode.OK
        reason = last.describe()
        if last_said is None or last_said[0] != reason or now - last_said[1] >= REPEAT_EVERY_S:
            print(f"not ready after {now - started:.1f}s: {reason}", file=err, flush=True)
            last_said = (reason, now)
        remaining = deadline - now
        if remaining <= 0:
            break
        sleep(min(interval_s, remaining))
        if deadline - clock() <= 0:
            break
    print(
        f"nimbus-scenarios wait: {shown} was not ready within {_seconds(timeout_s)} "
        f"({attempts} attempt{'s' if attempts > 1 else ''}; last: {last.describe()})",
        file=err,
        flush=True,
    )
    return ExitCode.INFRASTRUCTURE


def wait_command(args: argparse.Namespace) -> int:
    """The `wait` subcommand: `URL [--timeout D] [--interval D]`."""
    timeout_s: float | None = args.timeout
    interval_s: float | None = args.interval
    return wait_until_ready(
        args.url,
        timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s,
        interval_s=DEFAULT_INTERVAL_S if interval_s is None else interval_s,
    )

"""`nimbus-scenarios wait URL`: poll a URL until it answers 2xx (the Jobs' init container).

Standard library only (urllib), so that the init container starts fast and the wait needs nothing
the load does not. Proxies from the environment are ignored: the load itself (aiohttp) connects
directly, so readiness is checked by the same route. Exit codes: 0 once ready, 4 when the timeout
passes first, 2 for a URL that can never answer (bad scheme, no host, bad port).
"""

from __future__ import annotations

import http.client
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from nimbus_scenarios.exit_codes import ExitCode

if TYPE_CHECKING:
    import argparse

__all__ = [
    "DEFAULT_INTERVAL_S",
    "DEFAULT_TIMEOUT_S",
    "Probe",
    "check_url",
    "probe",
    "wait_command",
    "wait_until_ready",
]

DEFAULT_TIMEOUT_S = 300.0
DEFAULT_INTERVAL_S = 2.0
# One attempt never waits longer than this, so a silent peer cannot eat the whole timeout.
ATTEMPT_TIMEOUT_S = 5.0
# While the reason for not being ready stays the same, it is repeated at most this often.
REPEAT_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class Probe:
    """One GET: the HTTP status if the server answered, else why there was no answer."""

    status: int | None
    error: str | None = None

    @property
    def ready(self) -> bool:
        """True for a 2xx answer."""
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        """`HTTP 503` or the connection error, for messages."""
        return f"HTTP {self.status}" if self.status is not None else str(self.error)


def check_url(url: str) -> str | None:
    """Why `url` can never be polled (scheme, host, port), or None if it is usable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"invalid URL {url!r}: {exc}"
    if parts.scheme not in ("http", "https"):
        return (
            f"invalid URL {url!r}: expected http:// or https://, e.g. http://consumer:8000/health"
        )
    if not parts.hostname:
        return f"invalid URL {url!r}: no host"
    if port == 0:
        return f"invalid URL {url!r}: port 0"
    return None


def probe(url: str, timeout_s: float) -> Probe:
    """GET `url` once, directly (no proxy), following redirects."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        url, method="GET", headers={"User-Agent": "nimbus-scenarios-wait"}
    )
    try:
        with opener.open(request, timeout=timeout_s) as response:
            return Probe(int(response.status))
    except urllib.error.HTTPError as exc:  # 4xx/5xx: the server is up but not ready
        exc.close()
        return Probe(exc.code)
    except urllib.error.URLError as exc:
        return Probe(None, _reason(exc.reason))
    except (OSError, http.client.HTTPException) as exc:
        return Probe(None, _reason(exc))


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror[:1].lower() + reason.strerror[1:]
    return str(reason) or type(reason).__name__


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
    started = clock()
    deadline = started + timeout_s
    print(
        f"waiting for {url} to answer 2xx (timeout {_seconds(timeout_s)}, "
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
                f"{url} is ready: HTTP {last.status} after {now - started:.1f}s "
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
        f"nimbus-scenarios wait: {url} was not ready within {_seconds(timeout_s)} "
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

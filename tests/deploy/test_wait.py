"""`nimbus-scenarios wait`: the init container's readiness wait, against a local aiohttp server
and raw servers that trickle, redirect elsewhere or answer with escape sequences."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from nimbus_scenarios.cli import main
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.wait import MAX_REDIRECTS, Probe, check_url, probe, wait_until_ready
from tests.support.http import RawServer, free_port, serving


@asynccontextmanager
async def consumer(ready_after_s: float, *, early_status: int = 503) -> AsyncIterator[str]:
    """A /health that answers `early_status` until `ready_after_s` has passed, then 200."""
    started = time.monotonic()
    hits: list[int] = []

    async def health(_: web.Request) -> web.Response:
        status = 200 if time.monotonic() - started >= ready_after_s else early_status
        hits.append(status)
        return web.json_response(
            {"status": "healthy" if status == 200 else "starting"}, status=status
        )

    app = web.Application()
    app.router.add_get("/health", health)
    async with serving(app) as base:
        yield f"{base}/health"


def run_wait(ready_after_s: float, call: Callable[[str], Any], **server: Any) -> Any:
    """Start the server, run the blocking `call(url)` in a thread, return what it returned."""

    async def scenario() -> Any:
        async with consumer(ready_after_s, **server) as url:
            return await asyncio.to_thread(call, url)

    return asyncio.run(scenario())


def test_ready_after_a_delay_exits_0() -> None:
    """A server that answers 503 for a while and then 200 ends the wait with exit 0."""
    out, err = io.StringIO(), io.StringIO()
    code = run_wait(
        0.4,
        lambda url: wait_until_ready(url, timeout_s=10, interval_s=0.05, out=out, err=err),
    )
    assert code == ExitCode.OK
    assert "is ready: HTTP 200" in out.getvalue()
    assert "not ready after" in err.getvalue()
    assert "HTTP 503" in err.getvalue()


def test_cli_wait_subcommand_parses_durations_and_exits_0() -> None:
    """`nimbus-scenarios wait URL --timeout 10s --interval 50ms` runs through the real CLI."""
    code = run_wait(0.2, lambda url: main(["wait", url, "--timeout", "10s", "--interval=50ms"]))
    assert code == ExitCode.OK


def test_never_ready_times_out_with_exit_4(capsys: pytest.CaptureFixture[str]) -> None:
    """A server that keeps answering 503 makes the wait give up with exit 4 and say why."""
    started = time.monotonic()
    code = run_wait(3600, lambda url: main(["wait", url, "--timeout=600ms", "--interval=100ms"]))
    elapsed = time.monotonic() - started
    assert code == ExitCode.INFRASTRUCTURE
    assert 0.5 <= elapsed < 3.0
    message = capsys.readouterr().err
    assert "was not ready within 0.6s" in message
    assert "last: HTTP 503" in message


def test_not_found_is_not_ready() -> None:
    """A 404 (wrong path, or a proxy answering for a service not there yet) is not readiness."""
    err = io.StringIO()
    code = run_wait(
        0,
        lambda url: wait_until_ready(
            url.replace("/health", "/nope"), timeout_s=0.3, interval_s=0.05, err=err
        ),
    )
    assert code == ExitCode.INFRASTRUCTURE
    assert "last: HTTP 404" in err.getvalue()


def test_connection_refused_times_out_with_exit_4() -> None:
    """Nothing listening is retried until the timeout, then reported as connection refused."""
    err = io.StringIO()
    code = wait_until_ready(
        f"http://127.0.0.1:{free_port()}/health",
        timeout_s=0.3,
        interval_s=0.05,
        out=io.StringIO(),
        err=err,
    )
    assert code == ExitCode.INFRASTRUCTURE
    assert "connection refused" in err.getvalue()


@pytest.mark.parametrize(
    "url",
    ["consumer:8000/health", "ftp://consumer/health", "http:///health", "http://consumer:99999/"],
)
def test_bad_url_exits_2(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A URL that can never answer is a usage error (exit 2), without any attempt."""
    assert check_url(url) is not None
    assert main(["wait", url, "--timeout=1s"]) == ExitCode.USAGE
    assert "invalid URL" in capsys.readouterr().err


def test_bad_duration_is_a_usage_error() -> None:
    """A `--timeout` that is not a duration is rejected by the parser with exit 2."""
    with pytest.raises(SystemExit) as exc:
        main(["wait", "http://consumer:8000/health", "--timeout=soon"])
    assert exc.value.code == ExitCode.USAGE


def test_attempts_and_sleeps_never_run_past_the_timeout() -> None:
    """With a fake clock, each attempt's timeout and each sleep stay inside the deadline."""
    now = [0.0]
    attempts: list[float] = []
    sleeps: list[float] = []

    def attempt(_: str, timeout_s: float) -> Probe:
        attempts.append(timeout_s)
        now[0] += 1.0  # each attempt takes a second
        return Probe(None, "connection refused")

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    code = wait_until_ready(
        "http://consumer:8000/health",
        timeout_s=10,
        interval_s=2,
        out=io.StringIO(),
        err=io.StringIO(),
        clock=lambda: now[0],
        sleep=sleep,
        attempt=attempt,
    )
    assert code == ExitCode.INFRASTRUCTURE
    assert now[0] <= 10.0 + 1.0  # at most one attempt's own time past the deadline
    assert len(attempts) == 4  # at 0, 3, 6 and 9 s
    assert all(t <= 5.0 for t in attempts)
    assert sleeps == [2, 2, 2]


def test_repeated_reason_is_not_logged_every_attempt() -> None:
    """The same reason is printed once (and again only every 30 s), keeping init logs short."""
    now = [0.0]
    err = io.StringIO()

    def attempt(_: str, __: float) -> Probe:
        now[0] += 0.01
        return Probe(503)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    wait_until_ready(
        "http://consumer:8000/health",
        timeout_s=65,
        interval_s=1,
        out=io.StringIO(),
        err=err,
        clock=lambda: now[0],
        sleep=sleep,
        attempt=attempt,
    )
    assert err.getvalue().count("not ready after") == 3  # at 0 s, ~30 s, ~60 s


def test_probe_ignores_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy in the environment is not used: the wait connects directly, as the load does."""
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    result = run_wait(0, lambda url: probe(url, 5.0))
    assert result == Probe(200)


TRICKLE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Padding: " + b"x" * 200 + b"\r\n\r\nok"
"""A 200 whose head takes minutes to arrive at one byte every 0.1 s."""


def test_a_trickling_server_cannot_stretch_an_attempt() -> None:
    """A byte every 0.1 s keeps a per-socket-operation timeout from ever firing; the attempt's
    one deadline ends it at 0.5 s all the same."""
    with RawServer(TRICKLE, every_s=0.1) as server:
        started = time.monotonic()
        result = probe(f"{server.url}/health", 0.5)
        elapsed = time.monotonic() - started
    assert result == Probe(None, "timed out")
    assert 0.45 <= elapsed < 1.5
    assert server.paths == ["/health"]


def test_a_trickling_server_cannot_stretch_the_wait(capsys: pytest.CaptureFixture[str]) -> None:
    """`wait --timeout 1s` against the trickling server ends in about a second, exit 4."""
    with RawServer(TRICKLE, every_s=0.1) as server:
        started = time.monotonic()
        code = main(["wait", f"{server.url}/health", "--timeout=1s", "--interval=100ms"])
        elapsed = time.monotonic() - started
    assert code == ExitCode.INFRASTRUCTURE
    assert elapsed < 2.5
    assert "last: timed out" in capsys.readouterr().err


def test_a_redirect_to_another_host_is_reported_not_followed() -> None:
    """302 to another port (another origin that would answer 200): not ready, never asked."""
    with RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") as elsewhere:
        moved = f"HTTP/1.1 302 Found\r\nLocation: {elsewhere.url}/health\r\n"
        answer = (moved + "Content-Length: 0\r\n\r\n").encode()
        with RawServer(answer) as server:
            result = probe(f"{server.url}/health", 5.0)
        assert elsewhere.paths == []
    assert not result.ready
    assert result.status == 302
    assert result.describe() == (
        f"HTTP 302 (a redirect to {elsewhere.url}/health, not followed: another host)"
    )


def test_a_redirect_on_the_same_host_is_followed() -> None:
    """302 from /old to /health on the same scheme, host and port: followed, ready."""

    async def old(_: web.Request) -> web.Response:
        raise web.HTTPFound("/health")

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def scenario() -> Probe:
        app = web.Application()
        app.router.add_get("/old", old)
        app.router.add_get("/health", health)
        async with serving(app) as base:
            return await asyncio.to_thread(probe, f"{base}/old", 5.0)

    assert asyncio.run(scenario()) == Probe(200)


def test_redirects_are_followed_a_bounded_number_of_times() -> None:
    """A redirect to itself ends after `MAX_REDIRECTS` hops, not ready."""
    with RawServer(b"HTTP/1.1 307 Again\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n") as server:
        result = probe(f"{server.url}/loop", 5.0)
    assert result == Probe(307, detail=f"more than {MAX_REDIRECTS} redirects")
    assert len(server.paths) == MAX_REDIRECTS + 1


def test_text_from_the_server_reaches_the_terminal_escaped() -> None:
    """An answer that is no HTTP (escape sequences, a bell) and a redirect to a URL holding
    them are shown with every control character escaped."""
    err = io.StringIO()
    with RawServer(b"\x1b[2J\x1b]0;pwned\x07 HTTP/9\r\n\r\n") as server:
        code = wait_until_ready(f"{server.url}/h", timeout_s=0.3, interval_s=0.1, err=err)
    assert code == ExitCode.INFRASTRUCTURE
    text = err.getvalue()
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "not an HTTP answer: `\\x1b[2J\\x1b]0;pwned\\x07 HTTP/9`" in text
    for location, shown in (
        (b"http://elsewhere/\x1b[31m", "http://elsewhere/\\x1b[31m, not followed"),
        (b"http://x\x1b[31m/", "`http://x\\x1b[31m/`, not a URL"),
    ):
        with RawServer(b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\n\r\n") as server:
            described = probe(f"{server.url}/h", 5.0).describe()
        assert "\x1b" not in described
        assert shown in described


def test_a_password_in_the_url_is_not_printed(capsys: pytest.CaptureFixture[str]) -> None:
    """`wait http://user:pass@host/...` prints the URL with `***` for the password."""
    code = main(["wait", f"http://u:s3cret@127.0.0.1:{free_port()}/h", "--timeout=200ms"])
    assert code == ExitCode.INFRASTRUCTURE
    err = capsys.readouterr().err
    assert "s3cret" not in err
    assert "http://u:***@127.0.0.1" in err

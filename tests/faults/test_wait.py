"""`nimbus-scenarios wait URL` (the init container) against servers that misbehave, as a child
process: one that trickles its answer a byte at a time, one that redirects to another host, and
one whose answer is terminal escape sequences. The wait ends by its timeout (exit 4), follows no
redirect elsewhere, and prints nothing raw."""

from __future__ import annotations

from tests.support.cli import assert_no_traceback, run_cli
from tests.support.http import RawServer

TRICKLE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Padding: " + b"x" * 200 + b"\r\n\r\nok"
"""A 200 whose head arrives at one byte every 0.2 s: about 50 s in all."""


def test_wait_against_a_trickling_server_ends_at_its_timeout() -> None:
    """A byte every 0.2 s never lets a per-read timeout fire; `--timeout 2s` still ends the
    wait in about 2 s, exit 4, saying the attempts timed out."""
    with RawServer(TRICKLE, every_s=0.2) as server:
        finished = run_cli("wait", f"{server.url}/health", "--timeout=2s", "--interval=200ms")
    assert finished.code == 4, finished.stderr
    assert finished.elapsed_s < 8  # the interpreter's start, the 2 s wait and a margin
    assert "was not ready within 2s" in finished.stderr
    assert "last: timed out" in finished.stderr
    assert server.paths  # it was asked, and kept trickling
    assert_no_traceback(finished.stderr)


def test_wait_does_not_follow_a_redirect_to_another_host() -> None:
    """A 302 to another port (which would answer 200) is reported, not followed: exit 4, and
    the other server is never asked."""
    with RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") as elsewhere:
        answer = f"HTTP/1.1 302 Found\r\nLocation: {elsewhere.url}/health\r\n\r\n".encode()
        with RawServer(answer) as server:
            finished = run_cli("wait", f"{server.url}/health", "--timeout=1s", "--interval=200ms")
        assert elsewhere.paths == []
    assert finished.code == 4, finished.stderr
    assert f"HTTP 302 (a redirect to {elsewhere.url}/health, not followed: another host)" in (
        finished.stderr
    )
    assert len(server.paths) >= 2  # polled again, never followed
    assert_no_traceback(finished.stderr)


def test_wait_prints_no_escape_sequence_from_the_server() -> None:
    """An answer of escape sequences (clear the screen, set the title, a bell) reaches the
    terminal escaped: exit 4, not a raw control character on stderr or stdout."""
    with RawServer(b"\x1b[2J\x1b]0;pwned\x07\x9b31m\r\n\r\n") as server:
        finished = run_cli("wait", f"{server.url}/health", "--timeout=1s", "--interval=200ms")
    assert finished.code == 4, finished.stderr
    output = finished.stdout + finished.stderr
    for raw in ("\x1b", "\x07", "\x9b"):
        assert raw not in output
    assert "not an HTTP answer: `\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m`" in finished.stderr
    assert_no_traceback(finished.stderr)

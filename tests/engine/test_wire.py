"""Tests for `engine.wire`: the bytes the lean transport writes for a `PreparedRequest`."""

from __future__ import annotations

import pytest

from nimbus_scenarios.engine.request import PreparedRequest, prepare
from nimbus_scenarios.engine.wire import USER_AGENT, encode


def test_credentials_in_the_url_become_basic_auth_unless_the_request_has_its_own() -> None:
    """User info is never sent in Host; it becomes `Authorization: Basic` (percent-decoded,
    as aiohttp reads it), and a request's own Authorization header is kept instead."""
    wire = encode(prepare("GET", "http://us%3Aer:p%40ss@h.example:8080", "/x"))
    head = wire.with_extra(None)
    assert b"Host: h.example:8080\r\n" in head
    assert b"Authorization: Basic dXM6ZXI6cEBzcw==\r\n" in head  # base64 of "us:er:p@ss"
    own = encode(prepare("GET", "http://u:p@h.example", "/x", headers={"Authorization": "T"}))
    assert own.with_extra(None).count(b"Authorization") == 1
    assert b"Authorization: T\r\n" in own.with_extra(None)
    assert b"Authorization" not in encode(prepare("GET", "http://h.example", "/x")).head


def test_get_with_query_and_headers() -> None:
    """Request line with the encoded query, Host as written, defaults, own headers in order."""
    wire = encode(
        prepare(
            "GET",
            "http://h.example:8080/api",
            "/users",
            [("q", "a b")],
            headers={"X-Token": "t1", "Accept": "application/json"},
        )
    )
    assert (wire.host, wire.port, wire.tls, wire.is_head, wire.idempotent) == (
        "h.example",
        8080,
        False,
        False,
        True,
    )
    assert wire.with_extra(None) == (
        b"GET /api/users?q=a%20b HTTP/1.1\r\nHost: h.example:8080\r\n"
        b"User-Agent: " + USER_AGENT.encode() + b"\r\n"
        b"X-Token: t1\r\nAccept: application/json\r\n\r\n"
    )


def test_body_length_and_extra_headers() -> None:
    """A body gets its Content-Length after the extra headers; POST without one says 0; the
    request's own framing headers are dropped; an extra header may not reframe the message."""
    post = encode(
        PreparedRequest("POST", "https://u:p@[::1]/x", (("Content-Length", "99"),), b"payload")
    )
    assert (post.host, post.port, post.tls, post.idempotent) == ("::1", 443, True, False)
    data = post.with_extra((("traceparent", "00-1"),))
    assert data.startswith(b"POST /x HTTP/1.1\r\nHost: [::1]\r\n")
    assert data.endswith(b"traceparent: 00-1\r\nContent-Length: 7\r\n\r\npayload")
    assert b"99" not in data
    assert b"u:p" not in data
    empty = encode(PreparedRequest("POST", "http://h/")).with_extra(None)
    assert empty.endswith(b"Content-Length: 0\r\n\r\n")
    assert b"Content-Length" not in encode(PreparedRequest("GET", "http://h")).with_extra(None)
    with pytest.raises(ValueError, match="may not set"):
        post.with_extra((("Content-Length", "1"),))


@pytest.mark.parametrize(
    "request_",
    [
        PreparedRequest("GET", "ftp://h/"),
        PreparedRequest("GET", "http:///nohost"),
        PreparedRequest("GET", "http://h:99999/"),
        PreparedRequest("GET", "http://h/", (("X-A", "1\r\nX-Injected: 1"),)),
        PreparedRequest("GET", "http://h/", (("X-A\n", "1"),)),
        PreparedRequest("GE T", "http://h/"),
    ],
)
def test_what_cannot_be_sent_is_a_value_error(request_: PreparedRequest) -> None:
    """Not http(s), no host, a bad port, CR/LF in a header (injection), a space in the method."""
    with pytest.raises(ValueError, match=r"URL|[Pp]ort|CR, LF|space"):
        encode(request_)

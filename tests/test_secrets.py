"""Secrets: one mask, credential header names, passwords in URLs, values in texts."""

from __future__ import annotations

import time

from nimbus_scenarios.secrets import (
    MASK,
    is_secret_header,
    mask_url,
    mask_urls_in_text,
    mask_values,
    url_password_spans,
)


def test_passwords_in_urls_are_masked() -> None:
    """`http://user:pass@host` is shown as `http://user:***@host`; other URLs are unchanged."""
    assert mask_url("http://u:s3cret@example:8000/x") == "http://u:***@example:8000/x"
    assert mask_url("http://u:s3cret@[::1]/") == "http://u:***@[::1]/"
    assert mask_url("http://example:8000") == "http://example:8000"
    assert mask_url("http://u@example") == "http://u@example"
    assert mask_url("http://[::1") == "http://[::1"  # unparseable, and no password in it
    assert mask_url("http://u:s3cret@[::1") == "http://u:***@[::1"  # unparseable: as free text


def test_credential_headers_are_known_in_any_case() -> None:
    """Authorization, Proxy-Authorization and Cookie carry credentials; others do not."""
    assert all(map(is_secret_header, ["Authorization", "cookie", "PROXY-AUTHORIZATION"]))
    assert not is_secret_header("X-Request-Id")


def test_values_are_masked_as_written_and_as_escaped() -> None:
    """A value is masked wherever it appears, also escaped inside a string literal, longest
    first so that a value inside another is not left half shown."""
    text = 'header "Authorization" = "Bearer a\\"b" # Bearer a"b, token a'
    masked = mask_values(text, ['Bearer a"b', "a"])
    assert "Bearer" not in masked
    assert masked.count(MASK) >= 3
    assert mask_values("nothing here", []) == "nothing here"


def test_passwords_of_urls_in_free_text_are_masked() -> None:
    """Every URL written in a text has its password masked, read as `urllib.parse` reads it
    (user-info to the authority's last `@`, the password after its first `:`); nothing else
    changes."""
    source = (
        'scenario "s" {\n  target "http://admin:hunter2@svc:8000"\n'
        '  description "wiki https://ops:p@ss@wiki/x?y=z@w, mail me@example.test"\n'
        '  request a = GET "/x?next=postgres://u:pw4@db/q" # http://u@h, https://:pw5@h\n}\n'
    )
    masked = mask_urls_in_text(source)
    for secret in ("hunter2", "p@ss", "pw4", "pw5"):
        assert secret not in masked
    assert 'target "http://admin:***@svc:8000"' in masked
    assert "https://ops:***@wiki/x?y=z@w, mail me@example.test" in masked
    assert "postgres://u:***@db/q" in masked
    assert "http://u@h, https://:***@h" in masked
    assert mask_urls_in_text("http://svc:8000/a:b@c") == "http://svc:8000/a:b@c"  # a path


def test_an_escaped_quote_inside_a_password_is_part_of_it() -> None:
    """Inside a scenario string literal `\\"` is a character of the URL, not its end."""
    text = 'target "http://u:pa\\"ss@h" # end'
    assert mask_urls_in_text(text) == 'target "http://u:***@h" # end'
    start, end = url_password_spans(text)[0]
    assert text[start:end] == 'pa\\"ss'


def test_masking_free_text_takes_linear_time() -> None:
    """A megabyte of letters and `://` (what a quadratic pattern would choke on) takes well
    under a second."""
    text = "a" * 1_000_000 + "://" * 100_000 + "x:y" * 100_000
    started = time.perf_counter()
    assert mask_urls_in_text(text) == text
    assert time.perf_counter() - started < 1.0

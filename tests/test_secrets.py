"""Secrets: one mask, credential header names, passwords in URLs, values in texts."""

from __future__ import annotations

from nimbus_scenarios.secrets import MASK, is_secret_header, mask_url, mask_values


def test_passwords_in_urls_are_masked() -> None:
    """`http://user:pass@host` is shown as `http://user:***@host`; other URLs are unchanged."""
    assert mask_url("http://u:s3cret@example:8000/x") == "http://u:***@example:8000/x"
    assert mask_url("http://u:s3cret@[::1]/") == "http://u:***@[::1]/"
    assert mask_url("http://example:8000") == "http://example:8000"
    assert mask_url("http://u@example") == "http://u@example"
    assert mask_url("http://[::1") == "http://[::1"  # unparseable: left as it is


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

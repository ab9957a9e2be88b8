"""Secrets: the one mask, which headers carry credentials, and masking in URLs and texts.

Values read from `env("NAME")`, literal credential header values and passwords in URLs are shown
as `MASK` everywhere they could be printed or stored: plans, results, reports, logs and spans.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "MASK",
    "SECRET_HEADERS",
    "is_secret_header",
    "mask_url",
    "mask_urls_in_text",
    "mask_values",
    "url_password_spans",
]

MASK: Final = "***"
"""How a secret is shown."""

SECRET_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})
"""Header names (lower case) whose values are credentials."""


def is_secret_header(name: str) -> bool:
    """Whether a header of this name carries a credential."""
    return name.lower() in SECRET_HEADERS


def mask_url(url: str) -> str:
    """The URL with any password in it (`http://user:pass@host`) shown as `MASK`.

    A URL too broken to parse (`http://u:pass@[::1`) is masked as free text is."""
    try:
        parts = urlsplit(url)
        password = parts.password
        port = parts.port
    except ValueError:
        return mask_urls_in_text(url)
    if password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}:{MASK}@{host}" + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def mask_values(text: str, values: Iterable[str]) -> str:
    """`text` with every secret value in `values` masked, as written or as escaped inside a
    scenario string literal; longer values first, so a value inside another is not left half
    shown."""
    for value in sorted({v for v in values if v}, key=len, reverse=True):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        text = text.replace(escaped, MASK).replace(value, MASK)
    return text


# A URL's authority in free text, after its `://` (the scheme is not needed, and matching it
# from every letter of a long word would take quadratic time). It ends where a URL's would (`/`,
# `?`, `#`, white space) or where the text around it would end it (a quote or an angle bracket);
# a backslash escape (`\"` inside a scenario string literal) is part of it.
_URL_AUTHORITY: Final = re.compile(r'://(?P<authority>(?:\\.|[^\s/?#"<>\\])*)')


def url_password_spans(text: str) -> list[tuple[int, int]]:
    """Where the passwords of URLs written in `text` are: (start, end) offsets, in order.

    As `urllib.parse` reads a URL: the user-info part runs to the authority's last `@`, and the
    password is what follows the first `:` in it. An empty password is not a span."""
    spans: list[tuple[int, int]] = []
    if "://" not in text:  # most strings, cheaply: a plan masks every key and value it prints
        return spans
    for match in _URL_AUTHORITY.finditer(text):
        authority = match.group("authority")
        at = authority.rfind("@")
        colon = authority.find(":", 0, max(at, 0))
        if at < 0 or colon < 0 or colon + 1 == at:
            continue
        start = match.start("authority")
        spans.append((start + colon + 1, start + at))
    return spans


def mask_urls_in_text(text: str) -> str:
    """`text` with the password of every URL written in it shown as `MASK` (for free text such
    as a scenario's source, where `mask_url` cannot tell where a URL starts and ends)."""
    for start, end in reversed(url_password_spans(text)):
        text = text[:start] + MASK + text[end:]
    return text

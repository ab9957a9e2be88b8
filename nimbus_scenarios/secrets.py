"""Secrets: the one mask, which headers carry credentials, and masking in URLs and texts.

Values read from `env("NAME")`, literal credential header values and passwords in URLs are shown
as `MASK` everywhere they could be printed or stored: plans, results, reports, logs and spans.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "SECRET_HEADERS", "is_secret_header", "mask_url", "mask_values"]

MASK: Final = "***"
"""How a secret is shown."""

SECRET_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})
"""Header names (lower case) whose values are credentials."""


def is_secret_header(name: str) -> bool:
    """Whether a header of this name carries a credential."""
    return name.lower() in SECRET_HEADERS


def mask_url(url: str) -> str:
    """The URL with any password in it (`http://user:pass@host`) shown as `MASK`."""
    try:
        parts = urlsplit(url)
        password = parts.password
        port = parts.port
    except ValueError:
        return url
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

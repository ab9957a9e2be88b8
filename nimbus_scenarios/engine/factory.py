"""Making a transport by name: the one place that knows which client each kind uses.

Its place: the `engine` stage, above `engine.transport` (the seam) and `engine.clients` (the
clients) and `engine.lean` (the lean transport), which it imports only when a transport is made,
so that importing it loads neither aiohttp, httpx nor httptools.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # the kinds are read by the CLI's parser, which must stay light
    from nimbus_scenarios.engine.transport import LoadTransport

__all__ = ["DEFAULT_TRANSPORT", "TRANSPORT_KINDS", "make_transport"]

TRANSPORT_KINDS: Final = ("aiohttp", "httpx-aiohttp", "httpx", "lean")
DEFAULT_TRANSPORT: Final = "lean"
"""The kind `run` uses unless ``--transport`` says otherwise."""


def make_transport(
    kind: str, *, timeout_s: float, connection_max_age_s: float, max_connections: int
) -> LoadTransport:
    """Build the transport named ``kind`` (one of `TRANSPORT_KINDS`).

    The HTTP clients are imported here, on first use, not when the engine is imported.
    """
    if kind not in TRANSPORT_KINDS:
        valid = ", ".join(TRANSPORT_KINDS)
        raise ValueError(f"unknown transport kind {kind!r}; valid kinds: {valid}")
    if kind == "lean":
        from nimbus_scenarios.engine.lean import LeanTransport

        return LeanTransport(
            timeout_s=timeout_s,
            connection_max_age_s=connection_max_age_s,
            max_connections=max_connections,
        )
    from nimbus_scenarios.engine.clients import AiohttpTransport, HttpxTransport

    if kind == "aiohttp":
        return AiohttpTransport(
            timeout_s=timeout_s,
            connection_max_age_s=connection_max_age_s,
            max_connections=max_connections,
        )
    return HttpxTransport(
        "aiohttp" if kind == "httpx-aiohttp" else "default",
        timeout_s=timeout_s,
        connection_max_age_s=connection_max_age_s,
        max_connections=max_connections,
    )

"""A backend behind the local proxy: its state in the rotation, its connections, its counters.

Its place: the `local` stage, under `proxy.TcpProxy` (which moves backends through their states)
and `pump.Resettable` (which attaches to a backend and counts the bytes it carries).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

__all__ = ["Backend", "BackendState", "BackendStats", "Resettable"]


class Resettable(Protocol):
    """A proxied connection as its backend sees it: something to reset when draining ends."""

    def abort(self) -> None:
        """Close both sides at once, whatever is buffered."""
        ...


class BackendState(StrEnum):
    """Where a backend is in its life behind the proxy."""

    PENDING = "pending"
    """Added, not ready: gets no connections yet."""
    READY = "ready"
    """Gets new connections."""
    DRAINING = "draining"
    """Being removed: no new connections; existing ones continue until closed or timed out."""
    REMOVED = "removed"
    """Gone: its connections are closed. Kept for its counters."""


@dataclass(frozen=True, slots=True)
class BackendStats:
    """One backend's counters at one moment."""

    name: str
    host: str
    port: int
    state: BackendState
    connections_total: int
    connections_open: int
    connect_errors: int
    bytes_to_backend: int
    bytes_from_backend: int
    connections_closed_by_drain: int


class Backend:
    """A backend's address, state, live connections and counters."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.state = BackendState.PENDING
        self.connections: set[Resettable] = set()
        self.idle = asyncio.Event()
        self.idle.set()
        self.connections_total = 0
        self.connect_errors = 0
        self.bytes_to_backend = 0
        self.bytes_from_backend = 0
        self.closed_by_drain = 0

    def attach(self, connection: Resettable) -> None:
        """A connection was paired with this backend."""
        self.connections.add(connection)
        self.connections_total += 1
        self.idle.clear()

    def detach(self, connection: Resettable) -> None:
        """A connection ended; the backend is idle once none is left."""
        self.connections.discard(connection)
        if not self.connections:
            self.idle.set()

    def abort_all(self) -> int:
        """Reset every open connection; how many there were."""
        connections = list(self.connections)
        for connection in connections:
            connection.abort()
        return len(connections)

    def stats(self) -> BackendStats:
        """Its counters now."""
        return BackendStats(
            self.name,
            self.host,
            self.port,
            self.state,
            self.connections_total,
            len(self.connections),
            self.connect_errors,
            self.bytes_to_backend,
            self.bytes_from_backend,
            self.closed_by_drain,
        )

"""Tests of a proxy backend's bookkeeping (nimbus_scenarios.local.backends)."""

from __future__ import annotations

import asyncio

from nimbus_scenarios.local.backends import Backend, BackendState


class FakeConnection:
    """A connection that only remembers being reset."""

    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


def test_a_backend_is_idle_only_without_connections() -> None:
    """Attaching clears `idle`; detaching the last connection sets it again."""

    async def body() -> None:
        backend = Backend("a", "127.0.0.1", 1)
        assert backend.state is BackendState.PENDING
        assert backend.idle.is_set()
        first, second = FakeConnection(), FakeConnection()
        backend.attach(first)
        backend.attach(second)
        assert not backend.idle.is_set()
        backend.detach(first)
        assert not backend.idle.is_set()
        backend.detach(second)
        assert backend.idle.is_set()
        assert backend.stats().connections_total == 2
        assert backend.stats().connections_open == 0

    asyncio.run(body())


def test_abort_all_resets_every_open_connection() -> None:
    """`abort_all` resets each attached connection and says how many there were."""

    async def body() -> None:
        backend = Backend("a", "127.0.0.1", 1)
        connections = [FakeConnection() for _ in range(3)]
        for connection in connections:
            backend.attach(connection)
        assert backend.abort_all() == 3
        assert all(connection.aborted for connection in connections)

    asyncio.run(body())

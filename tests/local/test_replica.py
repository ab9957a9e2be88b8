"""Tests of one fleet replica's life (nimbus_scenarios.local.replica), without the fleet.

A recording host stands in for the fleet: it keeps the events, the count announcements and the
losses it is told about. Replicas are real reference consumer processes behind a real proxy on
127.0.0.1, spinning 5% of each request's duration.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from nimbus_scenarios.local.proxy import BackendState, TcpProxy
from nimbus_scenarios.local.replica import Replica, ReplicaSettings, ReplicaState
from tests.support.wait import eventually

T = TypeVar("T")

SETTINGS = ReplicaSettings(
    ready_delay_s=0.0, start_timeout_s=15.0, drain_timeout_s=2.0, cpu_scale=0.05
)


@dataclass
class RecordingHost:
    """A `ReplicaHost` that remembers what it was told."""

    closing: bool = False
    closed: bool = False
    events: list[tuple[str, str]] = field(default_factory=list)
    announcements: int = 0
    losses: list[bool] = field(default_factory=list)

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def record(self, kind: str, message: str, replica: str) -> None:
        self.events.append((kind, replica))

    def counts_changed(self) -> None:
        self.announcements += 1

    def lost(self, *, replace_now: bool) -> None:
        self.losses.append(replace_now)


def run(body: Callable[[TcpProxy, aiohttp.ClientSession], Coroutine[Any, Any, T]]) -> T:
    """Run `body` with a started proxy and a client session, both closed afterwards."""

    async def bounded() -> T:
        async with TcpProxy() as proxy, aiohttp.ClientSession() as session:
            return await asyncio.wait_for(body(proxy, session), 40)

    return asyncio.run(bounded())


def test_a_replica_becomes_ready_serves_and_retires() -> None:
    """Launched, it joins the rotation once /ready answers; retired, it drains and stops."""

    async def body(proxy: TcpProxy, session: aiohttp.ClientSession) -> None:
        host = RecordingHost()
        replica = Replica("c-1", host, proxy, session, SETTINGS)
        replica.launch()
        await eventually(lambda: replica.state is ReplicaState.READY)
        assert proxy.ready_backends() == ["c-1"]
        async with session.get(f"{proxy.url}/health") as response:
            assert response.status == 200
        sample = await replica.scrape()
        assert sample is not None
        assert sample.replica == "c-1"
        info = replica.info(proxy.backend_stats("c-1"))
        assert info.pid is not None
        assert info.connections == 1

        replica.retire()
        assert replica.state is ReplicaState.DRAINING
        assert proxy.ready_backends() == []
        await eventually(lambda: replica.state is ReplicaState.STOPPED)
        assert not Path(f"/proc/{info.pid}").exists()
        assert proxy.backend_stats("c-1").state is BackendState.REMOVED
        assert [kind for kind, _ in host.events] == [
            "replica_started",
            "replica_ready",
            "replica_draining",
            "replica_stopped",
        ]
        assert host.losses == []

    run(body)


def test_a_ready_replica_that_dies_asks_for_a_replacement_at_once() -> None:
    """A serving process that exits on its own fails the replica and asks to replace it now."""

    async def body(proxy: TcpProxy, session: aiohttp.ClientSession) -> None:
        host = RecordingHost()
        replica = Replica("c-1", host, proxy, session, SETTINGS)
        replica.launch()
        await eventually(lambda: replica.state is ReplicaState.READY)
        assert replica.process is not None
        os.kill(replica.process.process.pid, signal.SIGKILL)
        await eventually(lambda: replica.state is ReplicaState.FAILED)
        assert host.losses == [True]
        assert host.events[-1] == ("replica_failed", "c-1")
        assert proxy.ready_backends() == []
        assert replica.ended_at is not None

    run(body)


def test_a_replica_that_cannot_start_asks_for_a_replacement_later() -> None:
    """A start that times out fails the replica and asks for a replacement after a pause."""

    async def body(proxy: TcpProxy, session: aiohttp.ClientSession) -> None:
        host = RecordingHost()
        impatient = ReplicaSettings(0.0, start_timeout_s=0.001, drain_timeout_s=1.0, cpu_scale=1.0)
        replica = Replica("c-1", host, proxy, session, impatient)
        replica.launch()
        await eventually(lambda: replica.state is ReplicaState.FAILED)
        assert host.losses == [False]
        assert replica.spawned() is None
        assert replica.process is None

    run(body)

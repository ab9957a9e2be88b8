"""Tests of the per-connection balancer (nimbus_scenarios.local.proxy): picking and draining.

Backends are small in-process servers on 127.0.0.1: raw echo servers that greet with their name
(`proxy_support`), and aiohttp apps that answer with their name (for keep-alive behaviour).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter

import aiohttp
import pytest
from aiohttp import web

from nimbus_scenarios.local.proxy import BackendState, TcpProxy
from tests.local.proxy_support import close, echo_backends, greet, other_tasks, run
from tests.support.wait import eventually


def test_connections_spread_round_robin_over_ready_backends() -> None:
    """Nine fresh connections over three ready backends land three on each; pending gets none."""

    async def body() -> None:
        async with echo_backends("a", "b", "c", "pending") as backends, TcpProxy() as proxy:
            for backend in backends:
                proxy.add_backend(backend.name, "127.0.0.1", backend.port)
            for name in ("a", "b", "c"):
                proxy.set_ready(name)
            seen: Counter[str] = Counter()
            for _ in range(9):
                name, _reader, writer = await greet(proxy)
                seen[name] += 1
                await close(writer)
            assert seen == Counter({"a": 3, "b": 3, "c": 3})
            assert proxy.backend_stats("pending").connections_total == 0
            assert [s.connections_total for s in proxy.backends()] == [3, 3, 3, 0]

    run(body)


def test_random_balance_uses_only_ready_backends() -> None:
    """With random balancing, connections go to both ready backends and never to a pending one."""

    async def body() -> None:
        async with echo_backends("a", "b", "pending") as backends:
            proxy = TcpProxy(balance="random", rng=random.Random(7))
            async with proxy:
                for backend in backends:
                    proxy.add_backend(backend.name, "127.0.0.1", backend.port)
                proxy.set_ready("a")
                proxy.set_ready("b")
                seen: Counter[str] = Counter()
                for _ in range(30):
                    name, _reader, writer = await greet(proxy)
                    seen[name] += 1
                    await close(writer)
                assert set(seen) == {"a", "b"}
                assert seen["a"] >= 5
                assert seen["b"] >= 5

    run(body)


async def named_app(name: str) -> tuple[web.AppRunner, int]:
    """An aiohttp backend whose every GET answers its name."""

    async def whoami(_request: web.Request) -> web.Response:
        return web.Response(text=name)

    app = web.Application()
    app.router.add_get("/", whoami)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def get_text(session: aiohttp.ClientSession, url: str) -> str:
    """GET `url`; the body."""
    async with session.get(url) as response:
        assert response.status == 200
        return await response.text()


def test_added_backend_gets_new_connections_but_keepalive_stays() -> None:
    """A backend made ready mid-way gets new connections; a keep-alive connection stays put."""

    async def body() -> None:
        runner_a, port_a = await named_app("a")
        runner_b, port_b = await named_app("b")
        try:
            async with TcpProxy() as proxy:
                proxy.add_backend("a", "127.0.0.1", port_a, ready=True)
                proxy.add_backend("b", "127.0.0.1", port_b)
                keepalive = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
                async with keepalive:
                    assert await get_text(keepalive, proxy.url) == "a"
                    proxy.set_ready("b")
                    # The pinned connection keeps reaching "a" although "b" is ready now.
                    pinned = [await get_text(keepalive, proxy.url) for _ in range(6)]
                    assert pinned == ["a"] * 6
                    assert proxy.backend_stats("a").connections_total == 1
                    fresh: Counter[str] = Counter()
                    for _ in range(6):
                        connector = aiohttp.TCPConnector(force_close=True)
                        async with aiohttp.ClientSession(connector=connector) as session:
                            fresh[await get_text(session, proxy.url)] += 1
                    assert fresh == Counter({"a": 3, "b": 3})
        finally:
            await runner_a.cleanup()
            await runner_b.cleanup()

    run(body)


def test_draining_backend_gets_no_new_connections_and_existing_ones_finish() -> None:
    """While `a` drains, new connections go to `b` and the open one to `a` keeps working."""

    async def body() -> None:
        async with echo_backends("a", "b") as (a, b), TcpProxy() as proxy:
            proxy.add_backend("a", "127.0.0.1", a.port, ready=True)
            name, reader, writer = await greet(proxy)
            assert name == "a"
            proxy.add_backend("b", "127.0.0.1", b.port, ready=True)
            drain = asyncio.create_task(proxy.drain("a", timeout_s=10))
            await eventually(lambda: proxy.backend_stats("a").state is BackendState.DRAINING)
            assert proxy.ready_backends() == ["b"]
            for _ in range(4):
                other, _r, other_writer = await greet(proxy)
                assert other == "b"
                await close(other_writer)
            writer.write(b"still here")
            assert await reader.readexactly(10) == b"still here"
            assert not drain.done()
            await close(writer)
            assert await drain == 0  # nothing had to be cut
            stats = proxy.backend_stats("a")
            assert stats.state is BackendState.REMOVED
            assert stats.connections_open == 0
            assert stats.connections_total == 1

    run(body)


def test_drain_timeout_closes_lingering_connections() -> None:
    """A connection still open when the drain timeout passes is closed, and counted."""

    async def body() -> None:
        async with echo_backends("a") as (a,), TcpProxy() as proxy:
            proxy.add_backend("a", "127.0.0.1", a.port, ready=True)
            _name, reader, writer = await greet(proxy)
            assert await proxy.drain("a", timeout_s=0.3) == 1
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(reader.read(), 5) == b""
            await close(writer)
            assert proxy.backend_stats("a").connections_closed_by_drain == 1
            await eventually(lambda: proxy.connections_open == 0 and a.open == 0)

    run(body)


def test_no_ready_backend_refuses_the_connection() -> None:
    """With no ready backend the accepted connection is closed at once and counted as rejected."""

    async def body() -> None:
        async with echo_backends("a") as (a,), TcpProxy() as proxy:
            proxy.add_backend("a", "127.0.0.1", a.port)  # pending only
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(reader.read(), 5) == b""
            await close(writer)
            assert proxy.stats().rejected == 1
            assert proxy.connections_open == 0
            assert a.accepted == 0

    run(body)


def test_remove_backend_resets_its_connections_at_once() -> None:
    """`remove_backend` (a dead process) cuts its open connections and takes it off rotation."""

    async def body() -> None:
        async with echo_backends("a", "b") as (a, b), TcpProxy() as proxy:
            proxy.add_backend("a", "127.0.0.1", a.port, ready=True)
            proxy.add_backend("b", "127.0.0.1", b.port, ready=True)
            name, reader, writer = await greet(proxy)
            assert name == "a"
            assert proxy.remove_backend("a") == 1
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(reader.read(), 5) == b""
            await close(writer)
            assert proxy.ready_backends() == ["b"]
            assert proxy.backend_stats("a").state is BackendState.REMOVED
            await eventually(lambda: proxy.connections_open == 0 and a.open == 0)

    run(body)


def test_stop_closes_open_connections_and_pending_connects() -> None:
    """Stopping the proxy resets open connections and ends connect attempts; no task is left."""

    async def body() -> None:
        baseline = other_tasks()
        async with echo_backends("a") as (a,):
            proxy = TcpProxy()
            await proxy.start()
            proxy.add_backend("a", "127.0.0.1", a.port, ready=True)
            opened = [await greet(proxy) for _ in range(3)]
            await proxy.stop()
            for _name, reader, writer in opened:
                with contextlib.suppress(ConnectionError):
                    assert await asyncio.wait_for(reader.read(), 5) == b""
                await close(writer)
            assert proxy.connections_open == 0
            await eventually(lambda: a.open == 0)
        await eventually(lambda: other_tasks() <= baseline)

    run(body)


def test_proxy_listens_only_on_loopback() -> None:
    """A non-loopback listen address is refused."""
    with pytest.raises(ValueError, match="loopback"):
        TcpProxy("0.0.0.0")

"""Tests of per-request header injection: the transports' `extra_headers` and the dispatcher."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from nimbus_scenarios.clock import LoopClock
from nimbus_scenarios.engine.dispatch import CompiledTemplate, Dispatcher, ok_statuses
from nimbus_scenarios.engine.factory import TRANSPORT_KINDS, make_transport
from nimbus_scenarios.engine.request import Outcome, prepare
from nimbus_scenarios.engine.stats import RunStats

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def _serve(seen: list[list[tuple[str, str]]]) -> web.AppRunner:
    async def handle(request: web.Request) -> web.Response:
        seen.append([(k.lower(), v) for k, v in request.headers.items()])
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


@pytest.mark.parametrize("kind", TRANSPORT_KINDS)
def test_transports_append_extra_headers(kind: str) -> None:
    """Every transport sends extra headers after the prepared ones, and none when not given."""
    seen: list[list[tuple[str, str]]] = []

    async def scenario() -> None:
        runner = await _serve(seen)
        host, port = runner.addresses[0][:2]
        transport = make_transport(kind, timeout_s=5, connection_max_age_s=30, max_connections=4)
        request = prepare("GET", f"http://{host}:{port}", "/x", headers={"X-Own": "1"})
        try:
            assert await transport.send(request, (("traceparent", TRACEPARENT),)) == Outcome(
                200, None
            )
            assert await transport.send(request) == Outcome(200, None)
            assert request.headers == (("X-Own", "1"),)
        finally:
            await transport.aclose()
            await runner.cleanup()

    asyncio.run(asyncio.wait_for(scenario(), 20))
    first, second = seen
    assert ("x-own", "1") in first
    assert ("traceparent", TRACEPARENT) in first
    assert ("x-own", "1") in second
    assert all(name != "traceparent" for name, _ in second)


def test_dispatcher_passes_headers_and_token_to_observers() -> None:
    """`headers_for` is asked per request; its result is sent and handed to every observer."""
    seen: list[list[tuple[str, str]]] = []
    asked: list[tuple[str, str]] = []
    observed: list[tuple[Any, ...]] = []

    def headers_for(phase: str, template: str) -> tuple[tuple[str, str], ...] | None:
        asked.append((phase, template))
        return (("traceparent", TRACEPARENT),) if len(asked) == 1 else None

    def observer(*args: Any) -> None:
        observed.append(args)

    async def scenario() -> None:
        runner = await _serve(seen)
        host, port = runner.addresses[0][:2]
        transport = make_transport(
            "aiohttp", timeout_s=5, connection_max_age_s=30, max_connections=4
        )
        template = CompiledTemplate(
            "t", prepare("GET", f"http://{host}:{port}", "/"), ok_statuses(("2xx",))
        )
        loop = asyncio.get_running_loop()
        dispatcher = Dispatcher(
            transport,
            clock=LoopClock(),
            max_inflight=10,
            observers=(observer,),
            headers_for=headers_for,
        )
        stats = RunStats(loop.time()).phase("p")
        try:
            for _ in range(2):
                await dispatcher.send_closed(stats, template, loop.time())
        finally:
            await transport.aclose()
            await runner.cleanup()

    asyncio.run(asyncio.wait_for(scenario(), 20))
    assert asked == [("p", "t"), ("p", "t")]
    assert ("traceparent", TRACEPARENT) in seen[0]
    assert all(name != "traceparent" for name, _ in seen[1])
    assert [len(args) for args in observed] == [8, 8]
    assert observed[0][0:2] == ("p", "t")
    assert observed[0][5] == Outcome(200, None)
    assert observed[0][7] == (("traceparent", TRACEPARENT),)
    assert observed[1][7] is None

"""Tests of the consumer's application, site and entry point (local.consumer.server)."""

from __future__ import annotations

import asyncio
import re
import signal
import time
import uuid

import aiohttp
import pytest
from aiohttp import web

from nimbus_scenarios.local.consumer import ConsumerConfig, ReferenceConsumer
from tests.local.consumer.support import (
    CLIENT_TIMEOUT,
    consumer_process,
    fetch,
    local_section,
    serve,
)


def test_start_returns_base_url_and_stop_is_idempotent() -> None:
    """start() binds a free port and returns its URL; a second start fails, stop twice is fine."""

    async def run() -> None:
        consumer = ReferenceConsumer(ConsumerConfig(host="localhost"))
        assert isinstance(consumer.app, web.Application)
        assert isinstance(consumer.build_app(), web.Application)
        url = await consumer.start()
        try:
            assert re.fullmatch(r"http://127\.0\.0\.1:[1-9][0-9]*", url)
            assert url == consumer.base_url
            async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
                assert (await fetch(session, "GET", f"{url}/health"))[0] == 200
            with pytest.raises(RuntimeError, match="starts once"):
                await consumer.start()
        finally:
            await consumer.stop()
        await consumer.stop()

    asyncio.run(asyncio.wait_for(run(), 20))


def test_health_and_ready_shapes() -> None:
    """/health answers healthy and /ready answers ready when there is no delay."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> None:
        assert await fetch(session, "GET", f"{consumer.base_url}/health") == (
            200,
            {"status": "healthy"},
        )
        assert await fetch(session, "GET", f"{consumer.base_url}/ready") == (
            200,
            {"status": "ready"},
        )

    serve(scenario)


def test_ready_delay_answers_starting_then_ready() -> None:
    """/ready answers 503 starting until ready_delay_s has passed, then 200 ready."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> float:
        started = time.monotonic()
        assert await fetch(session, "GET", f"{consumer.base_url}/ready") == (
            503,
            {"status": "starting"},
        )
        for _ in range(60):
            status, body = await fetch(session, "GET", f"{consumer.base_url}/ready")
            if status == 200:
                assert body == {"status": "ready"}
                return time.monotonic() - started
            await asyncio.sleep(0.05)  # the probe's interval, as a readiness probe polls
        raise AssertionError("never became ready")

    assert serve(scenario, ConsumerConfig(ready_delay_s=0.4)) >= 0.3


def test_status_shape() -> None:
    """/process/status has the memory store, statistics, recent tasks and the local section."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> object:
        await fetch(session, "POST", f"{consumer.base_url}/process?cpu_intensity=99")
        _, body = await fetch(session, "GET", f"{consumer.base_url}/process/status")
        return body

    body = serve(scenario, ConsumerConfig(name="probe"))
    assert isinstance(body, dict)
    assert body["name"] == "probe"
    assert body["memory_store"] == {"objects": 0, "size_mb": 0}
    assert body["statistics"]["tasks_started"] == 0
    assert body["statistics"]["by_mode"]["sync"] == {"started": 0, "completed": 0, "failed": 0}
    assert body["recent_tasks"] == []
    local = body["local"]
    assert local["requests_total"] == 2
    assert local["connections_accepted"] == 1
    assert local["connections_open"] >= 1


def test_cleanup_on_empty_store() -> None:
    """DELETE /process/cleanup answers cleaned with zero objects when nothing is kept."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> None:
        assert await fetch(session, "DELETE", f"{consumer.base_url}/process/cleanup") == (
            200,
            {"status": "cleaned", "objects_removed": 0},
        )

    serve(scenario)


def test_connections_accepted_counts_new_connections_not_reuse() -> None:
    """connections_accepted grows with each new TCP connection and not with keep-alive reuse."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> None:
        base = consumer.base_url
        first = await local_section(session, base)
        assert first["connections_accepted"] == 1
        for _ in range(3):
            await fetch(session, "GET", f"{base}/health")
        reused = await local_section(session, base)
        assert reused["connections_accepted"] == 1
        assert reused["requests_total"] == 5
        for _ in range(3):
            async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as fresh:
                await fetch(fresh, "GET", f"{base}/health")
        fresh_count = await local_section(session, base)
        assert fresh_count["connections_accepted"] == 4
        assert consumer.connections_accepted == 4
        assert fresh_count["connections_open"] >= 1

    serve(scenario)


def test_traceparent_is_recorded_and_bounded() -> None:
    """Incoming traceparent headers are listed at /local/traceparents, the last 100 only."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> None:
        sent = [f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01" for _ in range(101)]
        for value in sent:
            await fetch(
                session, "GET", f"{consumer.base_url}/health", headers={"traceparent": value}
            )
        _, received = await fetch(session, "GET", f"{consumer.base_url}/local/traceparents")
        assert received == sent[1:]

    serve(scenario)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_entry_point_announces_and_exits_cleanly(signum: signal.Signals) -> None:
    """The subprocess prints exactly one `listening on` line, serves, and exits 0 on the signal."""
    with consumer_process("--host", "127.0.0.1", "--port", "0", "--name", "probe") as (proc, url):

        async def probe() -> tuple[int, object]:
            async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
                return await fetch(session, "GET", f"{url}/health")

        assert asyncio.run(probe()) == (200, {"status": "healthy"})
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert stdout == ""
        assert "Traceback" not in stderr

"""Tests of the local reference consumer (nimbus_scenarios.local.consumer).

In-process tests start a `ReferenceConsumer` inside `asyncio.run`; tests that need the consumer's
own RSS or its signal handling start it as a subprocess. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from nimbus_scenarios.local.consumer import (
    ConsumerConfig,
    ProcessRequest,
    ReferenceConsumer,
    ValidationIssue,
    check_loopback_host,
    parse_process_query,
)

T = TypeVar("T")
Scenario = Callable[[ReferenceConsumer, aiohttp.ClientSession], Awaitable[T]]

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE = "nimbus_scenarios.local.consumer"
URL_LINE = re.compile(r"listening on (http://127\.0\.0\.1:[0-9]+)\n")
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=15)


def serve(scenario: Scenario[T], config: ConsumerConfig | None = None, limit: float = 20.0) -> T:
    """Run `scenario` against a fresh in-process consumer, stopping it afterwards."""

    async def run() -> T:
        consumer = ReferenceConsumer(config)
        await consumer.start()
        try:
            async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
                return await scenario(consumer, session)
        finally:
            await consumer.stop()

    return asyncio.run(asyncio.wait_for(run(), limit))


async def fetch(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    """One request; `(status, parsed JSON body)`."""
    async with session.request(method, url, params=params, headers=headers) as response:
        return response.status, await response.json()


async def local_section(session: aiohttp.ClientSession, base: str) -> dict[str, int]:
    """The `local` section of /process/status."""
    status, body = await fetch(session, "GET", f"{base}/process/status")
    assert status == 200
    assert isinstance(body, dict)
    local = body["local"]
    assert isinstance(local, dict)
    return local


# --------------------------------------------------------------------------------------------
# Subprocess helpers


@contextlib.contextmanager
def consumer_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start `python -m nimbus_scenarios.local.consumer` and yield it with its announced URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", MODULE, *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc, read_url(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)  # reaps it and closes the pipes (again is harmless)


def read_url(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """The URL from the `listening on` line, waiting at most `timeout` seconds for it."""
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    assert readable, "the consumer did not announce its URL in time"
    line = proc.stdout.readline()
    match = URL_LINE.fullmatch(line)
    assert match is not None, f"unexpected first line {line!r}"
    return match.group(1)


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


# --------------------------------------------------------------------------------------------
# Configuration and loopback guard


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com", "10.0.0.1"])
def test_non_loopback_host_is_refused(host: str) -> None:
    """A host outside 127.0.0.0/8, ::1 and localhost is refused by a ValueError naming loopback."""
    with pytest.raises(ValueError, match="loopback"):
        ConsumerConfig(host=host)


@pytest.mark.parametrize(
    ("host", "bound"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.10.0.2", "127.10.0.2"),
        ("::1", "::1"),
        ("localhost", "127.0.0.1"),
    ],
)
def test_loopback_hosts_are_accepted(host: str, bound: str) -> None:
    """Loopback hosts are accepted and `localhost` binds 127.0.0.1."""
    assert ConsumerConfig(host=host).bind_host == bound
    assert check_loopback_host(host) == bound


def test_entry_point_refuses_non_loopback_host() -> None:
    """The entry point exits non-zero with a usage error, not a traceback, for a public host."""
    result = subprocess.run(
        [sys.executable, "-m", MODULE, "--host", "0.0.0.0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert "loopback" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# --------------------------------------------------------------------------------------------
# Endpoint shapes


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
            await asyncio.sleep(0.05)
        raise AssertionError("never became ready")

    assert serve(scenario, ConsumerConfig(ready_delay_s=0.4)) >= 0.3


def test_unknown_path_and_method_answer_json() -> None:
    """An unknown path answers JSON 404 and a wrong method JSON 405."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> None:
        assert await fetch(session, "GET", f"{consumer.base_url}/nope") == (
            404,
            {"detail": "Not Found"},
        )
        assert await fetch(session, "PUT", f"{consumer.base_url}/health") == (
            405,
            {"detail": "Method Not Allowed"},
        )

    serve(scenario)


def test_status_shape() -> None:
    """/process/status has the memory store, statistics, recent tasks and the local section."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> object:
        await fetch(session, "POST", f"{consumer.base_url}/process?cpu_intensity=99")
        _, body = await fetch(session, "GET", f"{consumer.base_url}/process/status")
        return body

    body = serve(scenario)
    assert isinstance(body, dict)
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


# --------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("name", "value", "low", "high", "kind"),
    [
        ("cpu_intensity", "0", 1, 10, "greater_than_equal"),
        ("cpu_intensity", "11", 1, 10, "less_than_equal"),
        ("memory_size", "9", 10, 500, "greater_than_equal"),
        ("memory_size", "501", 10, 500, "less_than_equal"),
        ("duration", "0", 1, 60, "greater_than_equal"),
        ("duration", "61", 1, 60, "less_than_equal"),
        ("cpu_intensity", "abc", 1, 10, "int_parsing"),
        ("memory_size", "12.5", 10, 500, "int_parsing"),
        ("duration", "", 1, 60, "int_parsing"),
    ],
)
def test_process_rejects_bad_integer(name: str, value: str, low: int, high: int, kind: str) -> None:
    """An out-of-range or non-integer value answers 422 naming the parameter and its range."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> object:
        url = f"{consumer.base_url}/process"
        status, body = await fetch(session, "POST", url, params={name: value, "async_mode": "1"})
        assert status == 422
        return body

    body = serve(scenario)
    assert isinstance(body, dict)
    [detail] = body["detail"]
    assert detail["loc"] == ["query", name]
    assert detail["type"] == kind
    assert f"{name} must be an integer from {low} to {high}" in detail["msg"]
    assert detail["ctx"] == {"ge": low, "le": high}


def test_process_rejects_bad_boolean_and_reports_every_problem() -> None:
    """A non-boolean async_mode answers 422, alongside every other bad parameter."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> object:
        url = f"{consumer.base_url}/process?async_mode=maybe&duration=0"
        status, body = await fetch(session, "POST", url)
        assert status == 422
        return body

    body = serve(scenario)
    assert isinstance(body, dict)
    assert [d["loc"] for d in body["detail"]] == [["query", "duration"], ["query", "async_mode"]]
    assert body["detail"][1]["type"] == "bool_parsing"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("False", False), ("0", False)],
)
def test_boolean_spellings(text: str, expected: bool) -> None:
    """async_mode and immediate_cleanup accept true/false/1/0 case-insensitively."""
    parsed = parse_process_query({"async_mode": text, "immediate_cleanup": text})
    assert parsed == ProcessRequest(async_mode=expected, immediate_cleanup=expected)


def test_defaults() -> None:
    """Missing parameters take the service's defaults (5, 50 MB, 10 s, sync, immediate cleanup)."""
    assert parse_process_query({}) == ProcessRequest(5, 50, 10, False, True)
    issues = parse_process_query({"cpu_intensity": "x"})
    assert isinstance(issues, tuple)
    assert all(isinstance(issue, ValidationIssue) for issue in issues)


# --------------------------------------------------------------------------------------------
# Work


def test_async_answers_at_once_while_sync_waits_for_the_work() -> None:
    """Async mode answers in under 0.5 s; sync mode with duration=1 waits >= 2 s for the work."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> None:
        url = f"{consumer.base_url}/process"
        query = {"cpu_intensity": "1", "memory_size": "10", "duration": "1"}
        started = time.monotonic()
        status, started_body = await fetch(
            session, "POST", url, params={**query, "async_mode": "true"}
        )
        assert time.monotonic() - started < 0.5
        assert status == 200
        assert isinstance(started_body, dict)
        assert started_body["status"] == "started"
        started = time.monotonic()
        status, body = await fetch(session, "POST", url, params={**query, "async_mode": "false"})
        elapsed = time.monotonic() - started
        assert status == 200
        assert 2.0 <= elapsed < 5.0
        assert isinstance(body, dict)
        assert body["status"] == "completed"
        assert body["processing_time_seconds"] >= 2.0
        assert body["cpu_result"]["intensity"] == 1
        assert body["memory_result"]["objects_created"] == 10
        assert body["memory_result"]["cleanup_mode"] == "immediate"
        assert body["memory_store_size"] == 0
        _, status_body = await fetch(session, "GET", f"{consumer.base_url}/process/status")
        assert isinstance(status_body, dict)
        tasks = {task["task_id"]: task for task in status_body["recent_tasks"]}
        assert tasks[body["task_id"]]["status"] == "completed"
        assert tasks[started_body["task_id"]]["mode"] == "async"
        assert status_body["statistics"]["by_mode"]["sync"]["completed"] == 1
        assert status_body["statistics"]["by_mode"]["async"]["started"] == 1

    serve(scenario)


def test_sync_request_burns_cpu() -> None:
    """A sync request with duration=1 really burns about one second of CPU in the process."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> float:
        url = f"{consumer.base_url}/process?cpu_intensity=5&memory_size=10&duration=1"
        before = time.process_time()
        status, body = await fetch(session, "POST", url)
        used = time.process_time() - before
        assert status == 200
        assert isinstance(body, dict)
        assert body["cpu_result"]["cpu_seconds"] >= 0.7
        assert body["cpu_result"]["primes_found"] > 0
        return used

    assert serve(scenario) >= 0.7


def test_memory_is_really_allocated() -> None:
    """During the hold the consumer's RSS rises by at least half of memory_size=200 MB."""
    with consumer_process() as (proc, url):
        baseline = rss_mb(proc.pid)

        async def request() -> None:
            async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
                query = "cpu_intensity=1&memory_size=200&duration=2"
                async with session.post(f"{url}/process?{query}") as response:
                    await response.read()

        async def watch() -> float:
            task = asyncio.create_task(request())
            peak = baseline
            for _ in range(60):
                await asyncio.sleep(0.05)
                peak = max(peak, rss_mb(proc.pid))
                if peak - baseline >= 100:
                    break
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return peak

        peak = asyncio.run(asyncio.wait_for(watch(), 10))
        assert peak - baseline >= 100, f"RSS went from {baseline:.0f} to {peak:.0f} MiB"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_kept_memory_stays_until_cleanup() -> None:
    """With immediate_cleanup=false the allocation stays in the store until DELETE cleanup."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> None:
        base = consumer.base_url
        query = "cpu_intensity=1&memory_size=10&duration=1&immediate_cleanup=false"
        status, body = await fetch(session, "POST", f"{base}/process?{query}")
        assert status == 200
        assert isinstance(body, dict)
        assert body["memory_result"]["cleanup_mode"] == "temporary"
        assert body["memory_store_size"] == 1
        _, status_body = await fetch(session, "GET", f"{base}/process/status")
        assert isinstance(status_body, dict)
        assert status_body["memory_store"] == {"objects": 1, "size_mb": 10}
        assert await fetch(session, "DELETE", f"{base}/process/cleanup") == (
            200,
            {"status": "cleaned", "objects_removed": 1},
        )
        _, status_body = await fetch(session, "GET", f"{base}/process/status")
        assert isinstance(status_body, dict)
        assert status_body["memory_store"] == {"objects": 0, "size_mb": 0}

    serve(scenario)


# --------------------------------------------------------------------------------------------
# Connections, traces, metrics


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


def parse_samples(text: str) -> dict[str, float]:
    """Prometheus text exposition samples, `name{labels}` -> value."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_count_requests() -> None:
    """/metrics counts each request by route template (404 as `none`) plus latency and GC."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> str:
        base = consumer.base_url
        for _ in range(2):
            await fetch(session, "GET", f"{base}/health")
        for _ in range(3):
            await fetch(session, "POST", f"{base}/process?duration=0")
        await fetch(session, "GET", f"{base}/nope")
        async with session.get(f"{base}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return await response.text()

    text = serve(scenario)
    samples = parse_samples(text)
    assert samples['http_requests_total{handler="/health",method="GET",status="2xx"}'] == 2
    assert samples['http_requests_total{handler="/process",method="POST",status="4xx"}'] == 3
    assert samples['http_requests_total{handler="none",method="GET",status="4xx"}'] == 1
    assert samples['http_request_duration_seconds_count{handler="/process",method="POST"}'] == 3
    assert samples['http_request_duration_seconds_sum{handler="/process",method="POST"}'] > 0
    assert (
        samples['http_request_duration_seconds_bucket{handler="/health",method="GET",le="+Inf"}']
        == 2
    )
    assert 'python_gc_collections_total{generation="0"}' in samples
    assert "# TYPE http_requests_total counter" in text


# --------------------------------------------------------------------------------------------
# Entry point


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

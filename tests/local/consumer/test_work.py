"""Tests of the work behind POST /process (local.consumer.work): CPU, memory, tasks, stopping."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time

import aiohttp

from nimbus_scenarios.local.consumer import ReferenceConsumer, burn_cpu, cpu_work
from nimbus_scenarios.local.consumer.api import ProcessRequest
from nimbus_scenarios.local.consumer.work import MemoryStore, Work
from tests.local.consumer.support import CLIENT_TIMEOUT, consumer_process, fetch, rss_mb, serve


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
    """A sync request with duration=1 really burns CPU in the process for its second, rather
    than sleeping: a sleep would use almost none. (On a machine shared with other work, the
    busy loop gets only its share of a core, so the bound is well under one second.)"""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> float:
        url = f"{consumer.base_url}/process?cpu_intensity=5&memory_size=10&duration=1"
        before = time.process_time()
        status, body = await fetch(session, "POST", url)
        used = time.process_time() - before
        assert status == 200
        assert isinstance(body, dict)
        assert body["cpu_result"]["cpu_seconds"] >= 0.3
        assert body["cpu_result"]["primes_found"] > 0
        return used

    assert serve(scenario) >= 0.3


def test_cpu_scale_spins_a_fraction_and_still_takes_the_duration() -> None:
    """`cpu_work` with scale 0.2 over 1 s spins a fraction of it (about 0.2 s of CPU on an idle
    machine; less when the suite's other workers and the local fleet's tests share the cores)
    and returns after about 1 s."""
    result = cpu_work(1, 1.0, threading.Event(), cpu_scale=0.2)
    assert result.elapsed_seconds >= 0.95
    assert 0.02 <= result.cpu_seconds <= 0.5


def test_burn_cpu_ends_at_once_when_stopped() -> None:
    """A set stop event ends a 30 s burn within a fraction of a second."""
    stop = threading.Event()
    stop.set()
    started = time.monotonic()
    result = burn_cpu(10, 30.0, stop)
    assert time.monotonic() - started < 0.5
    assert result.passes == 0


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
                await asyncio.sleep(0.05)  # the polling interval of a condition, not a wait
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


def test_memory_store_evicts_the_oldest_beyond_its_limit() -> None:
    """A store of limit 2 holding three blocks keeps the two newest."""
    store = MemoryStore(limit=2)
    for index, size in enumerate((10, 20, 30)):
        store.keep(f"t{index}", [], size)
    assert store.size() == (2, 50)
    assert store.clear() == 2
    assert store.size() == (0, 0)


def test_stopping_work_ends_running_tasks_and_books_them() -> None:
    """`Work.stop` ends a 60 s async task within the join bound; the book shows it completed."""
    work = Work(cpu_scale=0.05)
    record = work.start_async(ProcessRequest(1, 10, 60, async_mode=True))
    assert work.tasks.statistics()["tasks_active"] == 1
    work.stop()
    started = time.monotonic()
    work.join(5.0)
    assert time.monotonic() - started < 5.0
    statistics = work.tasks.statistics()
    assert statistics["tasks_active"] == 0
    assert statistics["tasks_completed"] == 1
    assert record.status == "completed"

"""Helpers of the local fleet's end-to-end tests (`test_fleet`, `test_source_scaling`): a time
limit around an async body, the consumer child processes still alive, and open-loop load."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")

CPU_SCALE = 0.05
WORK = {"cpu_intensity": "1", "memory_size": "10", "duration": "1", "async_mode": "true"}


def run(body: Coroutine[Any, Any, T], limit: float) -> T:
    """Run one async test body with a time limit."""
    return asyncio.run(asyncio.wait_for(body, limit))


def consumer_children() -> list[int]:
    """PIDs of this process's children running the reference consumer."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            status = (entry / "status").read_text()
            ppid = next(int(line.split()[1]) for line in status.splitlines() if "PPid" in line)
            cmdline = (entry / "cmdline").read_bytes()
            if ppid == me and b"nimbus_scenarios.local.consumer" in cmdline:
                found.append(int(entry.name))
    return found


async def drive(url: str, rate: float, seconds: float) -> tuple[int, int]:
    """Open-loop POST /process at `rate`/s for `seconds`, a fresh connection each: (ok, failed)."""
    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=10)

    async def one() -> bool:
        connector = aiohttp.TCPConnector(force_close=True)
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
                session.post(f"{url}/process", params=WORK) as response,
            ):
                await response.read()
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    started = loop.time()
    tasks = []
    for index in range(round(rate * seconds)):
        await asyncio.sleep(max(0.0, started + index / rate - loop.time()))
        tasks.append(asyncio.create_task(one()))
    results = await asyncio.gather(*tasks)
    return sum(results), len(results) - sum(results)

"""Helpers for the reference consumer's tests: run one in process or as a child process.

In-process tests start a `ReferenceConsumer` inside `asyncio.run`; tests that need the consumer's
own RSS or its signal handling start it as `python -m nimbus_scenarios.local.consumer`. All
traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import select
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from nimbus_scenarios.local.consumer import ConsumerConfig, ReferenceConsumer

T = TypeVar("T")
Scenario = Callable[[ReferenceConsumer, aiohttp.ClientSession], Awaitable[T]]

REPO_ROOT = Path(__file__).resolve().parents[3]
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

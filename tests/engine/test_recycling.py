"""`connection_max_age` observed from the server side: the reference consumer (a child process)
counts the TCP connections it accepts, and the test polls that count while a run goes on."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import pytest

from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.local.launch import ConsumerProcess, start_consumer
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.runner import RunOptions, RunOutcome, run_scenario

T = TypeVar("T")

POLL_S = 0.1


def scenario(age: str, length: str) -> str:
    return f"""
scenario "recycle" {{
  settings {{
    connection_max_age {age}
  }}
  request h = GET "/health"
  phase "p" {length} {{
    rate 20/s
    send h
  }}
}}
"""


async def accepted(session: aiohttp.ClientSession, url: str) -> int:
    """The consumer's count of accepted TCP connections."""
    async with session.get(f"{url}/process/status") as response:
        body = await response.json()
    count = body["local"]["connections_accepted"]
    assert isinstance(count, int)
    return count


async def observe(
    consumer: ConsumerProcess, session: aiohttp.ClientSession, text: str
) -> tuple[RunOutcome, list[tuple[float, int]]]:
    """Run `text` against the consumer, sampling the new connections it accepts meanwhile.

    Returns the outcome and (seconds since the run started, connections so far) samples; the
    poller's own keep-alive connection is opened before the first sample.
    """
    base = await accepted(session, consumer.url)
    samples: list[tuple[float, int]] = []
    started = time.monotonic()

    async def poll() -> None:
        for _ in range(int(30 / POLL_S)):
            samples.append(
                (time.monotonic() - started, await accepted(session, consumer.url) - base)
            )
            await asyncio.sleep(POLL_S)

    poller = asyncio.create_task(poll())
    plan = compile_source(Source("recycle.scn", text))
    try:
        outcome = await run_scenario(
            plan, RunOptions(url=consumer.url, install_signal_handlers=False)
        )
    finally:
        poller.cancel()
    samples.append((time.monotonic() - started, await accepted(session, consumer.url) - base))
    return outcome, samples


def with_consumer(test: Callable[[ConsumerProcess, aiohttp.ClientSession], Awaitable[T]]) -> T:
    async def main() -> T:
        consumer = await start_consumer()
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                return await test(consumer, session)
        finally:
            await consumer.stop()

    return asyncio.run(asyncio.wait_for(main(), 60))


def steps(samples: list[tuple[float, int]]) -> list[float]:
    """When the connection count rose, with rises closer than 0.4 s taken as one step."""
    rises: list[float] = []
    previous = 0
    for at, count in samples:
        if count > previous:
            if not rises or at - rises[-1] > 0.4:
                rises.append(at)
            previous = count
    return rises


def test_connections_are_recycled_at_the_configured_age() -> None:
    """With `connection_max_age 1s` over 4 s, new connections appear in steps about 1 s apart."""

    async def body(
        consumer: ConsumerProcess, session: aiohttp.ClientSession
    ) -> tuple[RunOutcome, list[tuple[float, int]]]:
        return await observe(consumer, session, scenario("1s", "4s"))

    outcome, samples = with_consumer(body)
    assert outcome.results.phases[0].load.sent == 80
    total = samples[-1][1]
    # one generation per second of the phase (pre-flight included), a connection or two each
    assert 4 <= total <= 10, samples
    rises = steps(samples)
    assert 4 <= len(rises) <= 5, samples
    gaps = [b - a for a, b in itertools.pairwise(rises)]
    assert all(0.6 <= gap <= 1.6 for gap in gaps), (gaps, samples)


@pytest.mark.parametrize(("age", "low", "high"), [("0s", 40, 42), ("1m", 1, 3)])
def test_connection_count_follows_the_age(age: str, low: int, high: int) -> None:
    """`0s` opens one connection per request (40 and the pre-flight); a long age only a few."""

    async def body(
        consumer: ConsumerProcess, session: aiohttp.ClientSession
    ) -> tuple[RunOutcome, list[tuple[float, int]]]:
        return await observe(consumer, session, scenario(age, "2s"))

    outcome, samples = with_consumer(body)
    assert outcome.results.phases[0].load.sent == 40
    assert low <= samples[-1][1] <= high, samples

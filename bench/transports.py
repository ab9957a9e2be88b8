"""Benchmark of the engine's transports: closed-loop throughput, latency and client CPU.

Its place: a bench script (not a test) for the `engine` stage. It shows what choosing a
`LoadTransport` (`nimbus_scenarios.engine.transport`) costs on the hot path: a fast local HTTP
server runs in its own process pinned to CPU 1 (nginx when /usr/sbin/nginx exists, else a
minimal aiohttp.web server), this process pins itself to CPU 0, and each transport kind runs a
closed loop of ``--concurrency`` tasks for ``--duration`` seconds. The kinds are every
`TRANSPORT_KINDS` entry (``lean``, the default, included) and ``raw-aiohttp``, a bare
aiohttp.ClientSession loop for reference; ``--kinds`` picks some. It prints requests/s, p50/p99
latency, the client's CPU seconds and ratios against `AiohttpTransport`. Traffic goes to
127.0.0.1 only, every loop is bounded in time and count, and the server is stopped on exit.

    .venv/bin/python bench/transports.py [--duration 5] [--concurrency 50] [--server auto]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _peers_support import target_server

from nimbus_scenarios.engine.factory import TRANSPORT_KINDS, make_transport
from nimbus_scenarios.engine.histogram import LatencyHistogram
from nimbus_scenarios.engine.request import prepare
from nimbus_scenarios.engine.transport import LoadTransport

SERVER_CPU = 1
CLIENT_CPU = 0
MAX_REQUESTS_PER_RUN = 2_000_000
WARMUP_S = 0.5


def pin(cpu: int) -> bool:
    """Pin the calling process to ``cpu`` when the machine has it."""
    if cpu >= (os.cpu_count() or 1):
        return False
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return False
    return True


@contextmanager
def local_server(kind: str) -> Iterator[tuple[str, str]]:
    """The bench target (`_peers_support.target_server`: nginx, else aiohttp.web) pinned to
    SERVER_CPU when the machine has it; yield (name, base URL)."""
    on_server_cpu = (os.cpu_count() or 1) > SERVER_CPU
    cpus = frozenset({SERVER_CPU}) if on_server_cpu else frozenset(os.sched_getaffinity(0))
    with target_server(kind, cpus) as target:
        yield target.name, target.url.rstrip("/")


@dataclass
class Result:
    kind: str
    requests: int
    errors: int
    elapsed_s: float
    cpu_s: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed_s

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / max(self.requests, 1) * 1e6


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def closed_loop(
    send: Callable[[], Awaitable[bool]], concurrency: int, duration_s: float
) -> tuple[int, int, float, float, LatencyHistogram]:
    """Run ``concurrency`` workers for ``duration_s``; return (requests, errors, s, cpu, hist)."""
    histogram = LatencyHistogram()
    counts = [0, 0]
    perf = time.perf_counter
    per_worker = MAX_REQUESTS_PER_RUN // concurrency

    async def worker(deadline: float, record: bool) -> None:
        for _ in range(per_worker):
            started = perf()
            if started >= deadline:
                return
            ok = await send()
            if record:
                histogram.record(int((perf() - started) * 1e6))
                counts[0 if ok else 1] += 1

    await asyncio.gather(*(worker(perf() + WARMUP_S, False) for _ in range(concurrency)))
    cpu0, t0 = cpu_seconds(), perf()
    await asyncio.gather(*(worker(t0 + duration_s, True) for _ in range(concurrency)))
    elapsed, cpu = perf() - t0, cpu_seconds() - cpu0
    return counts[0], counts[1], elapsed, cpu, histogram


async def bench_transport(
    kind: str, base_url: str, concurrency: int, duration_s: float, max_age_s: float
) -> Result:
    request = prepare("GET", base_url, "/")
    transport: LoadTransport = make_transport(
        kind, timeout_s=5.0, connection_max_age_s=max_age_s, max_connections=concurrency
    )

    async def send() -> bool:
        outcome = await transport.send(request)
        return outcome.status == 200

    try:
        done, errors, elapsed, cpu, hist = await closed_loop(send, concurrency, duration_s)
    finally:
        await transport.aclose()
    values = hist.percentiles((50.0, 99.0))
    return Result(kind, done, errors, elapsed, cpu, values[50.0] / 1000, values[99.0] / 1000)


async def bench_raw_aiohttp(base_url: str, concurrency: int, duration_s: float) -> Result:
    """A bare aiohttp.ClientSession loop: the ceiling the transports are compared with."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        url = base_url + "/"

        async def send() -> bool:
            async with session.get(url) as response:
                await response.read()
                return response.status == 200

        done, errors, elapsed, cpu, hist = await closed_loop(send, concurrency, duration_s)
    values = hist.percentiles((50.0, 99.0))
    return Result(
        "raw-aiohttp", done, errors, elapsed, cpu, values[50.0] / 1000, values[99.0] / 1000
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per kind (max 60)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--max-age", type=float, default=60.0, help="connection_max_age_s")
    parser.add_argument("--server", choices=("auto", "nginx", "aiohttp"), default="auto")
    parser.add_argument(
        "--kinds", default=",".join(("raw-aiohttp", *TRANSPORT_KINDS)), help="comma-separated"
    )
    args = parser.parse_args(argv)
    duration = min(max(args.duration, 0.5), 60.0)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]

    pinned = pin(CLIENT_CPU)
    with local_server(args.server) as (server_name, base_url):
        print(
            f"server: {server_name} on {base_url}, pinned to CPU {SERVER_CPU}; client pinned to "
            f"CPU {CLIENT_CPU}: {pinned}; {args.concurrency} tasks, {duration:g} s per kind, "
            f"connection_max_age_s={args.max_age:g}; Python {sys.version.split()[0]}, "
            f"aiohttp {aiohttp.__version__}"
        )
        results: list[Result] = []
        for kind in kinds:
            if kind == "raw-aiohttp":
                coro = bench_raw_aiohttp(base_url, args.concurrency, duration)
            else:
                coro = bench_transport(kind, base_url, args.concurrency, duration, args.max_age)
            results.append(asyncio.run(coro))

    base = next((r for r in results if r.kind == "aiohttp"), results[0])
    header = (
        f"{'kind':<14}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU s':>8}{'CPU us/req':>12}"
        f"{'errors':>8}{'x req/s':>9}{'x CPU/req':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.kind:<14}{r.rate:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.cpu_s:>8.2f}"
            f"{r.cpu_us_per_request:>12.1f}{r.errors:>8}{r.rate / base.rate:>9.2f}"
            f"{r.cpu_us_per_request / base.cpu_us_per_request:>11.2f}"
        )
    print("ratios (x) are against the AiohttpTransport row ('aiohttp').")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

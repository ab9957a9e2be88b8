"""CPU cost of the engine's hot path per request, without a network: a quick before/after check.

Its place: a bench script (not a test) for the `engine` stage, for changes to stats, the
dispatcher or the pacer; `bench/peers.py` measures the whole engine against a real server. Two
figures, each the median of ``--repeat`` runs in this process:

1. stats alone: `PhaseStats.schedule` + `mark_sent` + `record` for one request;
2. pacer + dispatcher + stats: `run_open` of a phase whose arrivals are all already due (so the
   pacer never sleeps), through a `Dispatcher` on the real `LoopClock`, with a transport that
   answers at once; the drain is included.

    .venv/bin/python bench/hotpath.py [--repeat 5] [--requests 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nimbus_scenarios.clock import LoopClock
from nimbus_scenarios.engine.dispatch import CompiledTemplate, Dispatcher, ok_statuses
from nimbus_scenarios.engine.pacer import run_open
from nimbus_scenarios.engine.request import Outcome, PreparedRequest, prepare, status_outcome
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source

_OK = status_outcome(200)


class NoopTransport:
    """Answers every request with 200 at once."""

    connections_opened = 0

    async def send(
        self, request: PreparedRequest, extra_headers: tuple[tuple[str, str], ...] | None = None
    ) -> Outcome:
        return _OK

    async def aclose(self) -> None:
        return None


def stats_only(requests: int) -> float:
    """Microseconds of CPU per request for the three stats calls."""
    phase = RunStats(0.0).phase("p")
    request = phase.request("a")
    started = time.process_time()
    for i in range(requests):
        at = i * 0.0001
        phase.schedule(at, request)
        phase.mark_sent(at + 0.0001, request)
        phase.record(at, at + 0.0001, at + 0.002, 200, True, request)
    return (time.process_time() - started) / requests * 1e6


async def engine_path(requests: int) -> float:
    """Microseconds of CPU per request through pacer, dispatcher and stats."""
    text = f"""
scenario "hot" {{
  settings {{
    max_inflight 1000000
  }}
  request a = GET "/a"
  request b = GET "/b"
  phase "p" 1s {{
    rate {requests}/s
    send 70% a, 30% b
  }}
}}
"""
    phase = compile_source(Source("hot.scn", text), max_rate=10**9).phases[0]
    mix = [
        CompiledTemplate(
            name, prepare("GET", "http://127.0.0.1:9", f"/{name}"), ok_statuses(("2xx",))
        )
        for name, _ in phase.mix
    ]
    clock = LoopClock()
    dispatcher = Dispatcher(NoopTransport(), clock=clock, max_inflight=1_000_000)
    origin = clock.now() - 2.0  # every arrival already due: the pacer never sleeps
    stats = RunStats(origin).phase("p")
    started = time.process_time()
    await run_open(phase, mix, dispatcher, stats, origin, clock=clock)
    await dispatcher.drain(60.0)
    elapsed = time.process_time() - started
    if stats.succeeded != requests:
        raise RuntimeError(f"{stats.succeeded} of {requests} requests succeeded")
    return elapsed / requests * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args(argv)
    stats = [stats_only(args.requests) for _ in range(args.repeat)]
    engine = [asyncio.run(engine_path(args.requests)) for _ in range(args.repeat)]
    print(f"stats hot path: {statistics.median(stats):.3f} us/request (min {min(stats):.3f})")
    print(
        f"pacer+dispatcher+stats: {statistics.median(engine):.3f} us/request "
        f"(min {min(engine):.3f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the engine does per arrival, and the highest rate one process holds.

A fast local server (nginx when /usr/sbin/nginx exists, else aiohttp.web, pinned to CPU 1, as
bench/transports.py starts it) takes `rate R/s` from the real runner (plan, pacer, dispatcher,
stats, the engine's transport unless `--transport` names another) pinned to CPU 0. Traffic goes
to 127.0.0.1 only.

By default the runner runs in this process under cProfile, and the top functions are printed
with their calls and own time *per arrival*: a function called about once per arrival or more
is a per-arrival cost; one called a small fraction of a time per arrival (the pacer's wake-ups,
once per tick) is not. Profiling slows everything down, so read the calls, not the
microseconds, and only from a run that sent every arrival on time (times are wall time; the
loop's idle wait in epoll is left out). CPU figures belong to bench/peers.py.

With `--ladder`, no profile: each rate of the ladder runs in a fresh process pinned to CPU 0 on
the loop `--loop` picks, and the ladder stops at the first rate not held (below 99% achieved,
or anything dropped or failed). A quick check of what one process holds; bench/peers.py's
search is the measurement of record.

    .venv/bin/python bench/pacing.py [--rate 2000] [--duration 5] [--loop auto|asyncio|uvloop]
    .venv/bin/python bench/pacing.py --ladder 5000,8000,10000,12000 --duration 15 [--loop ...]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import os
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _peers_support import one_phase_scenario  # noqa: E402 - bench/ is put on the path just above


def scenario(rate: float, duration: float) -> str:
    """A one-phase open-model scenario at `rate` for `duration` seconds."""
    return one_phase_scenario(rate, duration, "pacing")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _options(url: str, transport: str) -> Any:
    """The run's options: the engine's transport, or the one named."""
    from nimbus_scenarios.runner import RunOptions

    options = RunOptions(url=url, install_signal_handlers=False)
    if transport != "default":
        options = dataclasses.replace(options, transport=transport)
    return options


async def child_ours(url: str, rate: float, duration: float, transport: str) -> dict[str, Any]:
    """The real runner on the one-phase scenario: what was sent, how late, the CPU share."""
    from nimbus_scenarios.language.errors import Source
    from nimbus_scenarios.pipeline import compile_source
    from nimbus_scenarios.runner import run_scenario

    text = scenario(rate, duration)
    plan = compile_source(Source("pacing.scn", text), max_rate=1_000_000)
    options = _options(url, transport)
    cpu0, wall0 = _cpu_s(), time.monotonic()
    outcome = await run_scenario(plan, options, scenario_text=text)
    cpu, wall = _cpu_s() - cpu0, time.monotonic() - wall0
    load = outcome.results.phases[0].load
    lateness = outcome.results.send_lateness_ms
    return {
        "sent": load.sent,
        "dropped": load.dropped,
        "failed": load.failed,
        "achieved": load.sent / duration,
        "late_p50_ms": None if lateness is None else lateness.p50,
        "late_p99_ms": None if lateness is None else lateness.p99,
        "cpu_share": cpu / wall,
        "transport": options.transport,
    }


def profile(url: str, rate: float, duration: float, loop: str, top: int, transport: str) -> None:
    """Run the scenario under cProfile and print the top functions per arrival."""
    from nimbus_scenarios.engine.loop import LoopChoice, run_on_loop
    from nimbus_scenarios.language.errors import Source
    from nimbus_scenarios.pipeline import compile_source
    from nimbus_scenarios.runner import run_scenario

    text = scenario(rate, duration)
    plan = compile_source(Source("pacing.scn", text), max_rate=1_000_000)
    profiler = cProfile.Profile()

    async def run() -> int:
        profiler.enable()
        outcome = await run_scenario(plan, _options(url, transport), scenario_text=text)
        profiler.disable()
        return outcome.results.phases[0].load.sent

    choice = LoopChoice(loop)
    sent, ran = run_on_loop(run(), choice)
    stats = pstats.Stats(profiler)
    rows = []
    for (file, line, name), (_, calls, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if name == "<method 'poll' of 'select.epoll' objects>":
            continue  # the loop's idle wait (wall time), not work
        rows.append((own, calls, f"{Path(file).name}:{line}({name})"))
    rows.sort(reverse=True)
    print(f"loop {ran}, rate {rate:g}/s for {duration:g}s: {sent} arrivals sent")
    print(f"{'calls/arrival':>14} {'own us/arrival':>15}  function")
    for own, calls, where in rows[:top]:
        print(f"{calls / max(sent, 1):>14.3f} {1e6 * own / max(sent, 1):>15.2f}  {where}")


def held(url: str, rate: float, duration: float, loop: str, transport: str) -> dict[str, Any]:
    """One rung of the ladder: `child_ours` in a fresh process pinned to CPU 0."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--url", url]
    command += ["--rate", str(rate), "--duration", str(duration), "--loop", loop]
    command += ["--transport", transport]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration * 4 + 60,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"child failed: {result.stderr[-2000:]}")
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def ladder(url: str, rates: list[float], duration: float, loop: str, transport: str) -> None:
    """Climb `rates` until one is not held; print each rung."""
    best = 0.0
    for rate in rates:
        r = held(url, rate, duration, loop, transport)
        achieved = float(r["achieved"])
        ok = achieved >= 0.99 * rate and not r["dropped"] and not r["failed"]
        print(
            f"  {r['loop']} {r['transport']} {rate:>7.0f}/s  "
            f"achieved {100 * achieved / rate:5.1f}%  "
            f"dropped {r['dropped']}  failed {r['failed']}  late p50/p99 "
            f"{r['late_p50_ms']}/{r['late_p99_ms']} ms  cpu {100 * float(r['cpu_share']):.0f}%"
            f"  {'held' if ok else 'NOT held'}",
            flush=True,
        )
        if not ok:
            break
        best = rate
    print(f"highest held: {best:.0f}/s ({duration:g} s per rung)")


def child(url: str, rate: float, duration: float, loop: str, transport: str) -> None:
    """A ladder rung's process: the real runner at `rate`, its figures as one JSON line."""
    from nimbus_scenarios.engine.loop import LoopChoice, run_on_loop

    figures, ran = run_on_loop(child_ours(url, rate, duration, transport), LoopChoice(loop))
    print(json.dumps({**figures, "loop": ran}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--loop", default="auto", choices=("auto", "asyncio", "uvloop"))
    parser.add_argument("--server", default="auto", choices=("auto", "nginx", "aiohttp"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--ladder", help="comma-separated rates: the highest held, no profile")
    parser.add_argument("--transport", default="default", help="the run's transport kind")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.url, args.rate, args.duration, args.loop, args.transport)
        return 0

    from transports import local_server

    if args.ladder:
        with local_server(args.server) as (server_kind, base):
            print(f"server: {server_kind} at {base} (CPU 1); runner children on CPU 0", flush=True)
            rates = [float(rate) for rate in args.ladder.split(",")]
            ladder(base.rstrip("/") + "/", rates, args.duration, args.loop, args.transport)
        return 0

    with local_server(args.server) as (server_kind, base):
        print(f"server: {server_kind} at {base} (CPU 1); profiled runner on CPU 0", flush=True)
        os.sched_setaffinity(0, {0})
        profile(
            base.rstrip("/") + "/", args.rate, args.duration, args.loop, args.top, args.transport
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

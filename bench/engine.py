"""Benchmark of the load engine against its peers, all measured in one run on this machine.

A fast local server (nginx when /usr/sbin/nginx exists, else aiohttp.web) runs pinned to CPU 1;
every load generator runs in its own child process pinned to CPU 0, so each gets one core:

1. nimbus-scenarios' engine (the real runner: plan -> pacer -> dispatcher -> stats) open-loop at
   200, 1000, 2000 and 5000 req/s: achieved rate, send lateness p50/p99, CPU (share of a core);
2. the highest rate it holds at >= 99% achieved with nothing dropped;
3. the same for a bare aiohttp open-loop (a fixed-rate scheduler in 20 lines) and a bare aiohttp
   closed loop (50 tasks, full speed);
4. Locust's FastHttpUser (installed into bench/.venv-locust on first use): `constant_throughput`
   for the fixed rates and full speed with 50 users;
5. optionally (--million) RSS growth of the engine over 1,000,000 requests.

Our figures are printed as ratios of the peers' from the same run (timings here vary by about
±25% run to run, ratios much less). Traffic goes to 127.0.0.1 only; every loop is bounded.

    .venv/bin/python bench/engine.py [--duration 10] [--no-locust] [--million]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

RATES = (200, 1000, 2000, 5000)
LADDER = (4000, 6000, 8000, 9000, 10000, 11000, 12000, 13000, 14000, 16000)
LOCUST_VERSION = "2.47.0"
LOCUST_VENV = HERE / ".venv-locust"


# ---------------------------------------------------------------- children (one core each)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def child_ours(url: str, rate: float, duration: float) -> dict[str, Any]:
    """The real runner on a one-phase scenario."""
    from nimbus_scenarios.language.errors import Source
    from nimbus_scenarios.pipeline import compile_source
    from nimbus_scenarios.runner import RunOptions, run_scenario

    text = textwrap.dedent(
        f"""\
        scenario "bench" {{
          settings {{
            max_inflight 5000
            timeout 10s
            connection_max_age 60s
          }}
          request get = GET "/"
          phase "load" {duration:g}s {{
            rate {rate:g}/s
            send get
          }}
        }}
        """
    )
    plan = compile_source(Source("bench.scn", text), max_rate=1_000_000)
    samples: list[float] = []

    async def sample_rss() -> None:
        while True:
            samples.append(_rss_mb())
            await asyncio.sleep(1.0)

    sampler = asyncio.get_running_loop().create_task(sample_rss())
    cpu0, wall0 = _cpu(), time.monotonic()
    outcome = await run_scenario(
        plan, RunOptions(url=url, install_signal_handlers=False), scenario_text=text
    )
    cpu, wall = _cpu() - cpu0, time.monotonic() - wall0
    sampler.cancel()
    phase = outcome.results.phases[0].load
    lateness = outcome.results.send_lateness_ms
    return {
        "rate": rate,
        "scheduled": phase.scheduled,
        "sent": phase.sent,
        "dropped": phase.dropped,
        "failed": phase.failed,
        "achieved": phase.sent / duration,
        "late_p50_ms": None if lateness is None else lateness.p50,
        "late_p99_ms": None if lateness is None else lateness.p99,
        "cpu_share": cpu / wall,
        "rss_first_mb": samples[min(len(samples) - 1, 2)] if samples else None,
        "rss_last_mb": samples[-1] if samples else None,
    }


async def child_bare_open(url: str, rate: float, duration: float) -> dict[str, Any]:
    """A bare aiohttp fixed-rate scheduler: the least an open-loop generator must do."""
    import aiohttp

    from nimbus_scenarios.engine.histogram import LatencyHistogram

    loop = asyncio.get_running_loop()
    lateness = LatencyHistogram(3)
    total = int(rate * duration)
    done = {"ok": 0, "failed": 0}
    connector = aiohttp.TCPConnector(limit=5000)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            try:
                async with session.get(url) as response:
                    await response.read()
                    done["ok" if response.status < 400 else "failed"] += 1
            except Exception:
                done["failed"] += 1

        tasks = set()
        cpu0, wall0 = _cpu(), time.monotonic()
        start = loop.time()
        sent = 0
        for k in range(total):
            deadline = start + k / rate
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if loop.time() - start >= duration:
                break  # as the runner does: a phase ends on time, behind or not
            sent += 1
            lateness.record(max(int((loop.time() - deadline) * 1e6), 0))
            task = loop.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        cpu, wall = _cpu() - cpu0, time.monotonic() - wall0
    return {
        "rate": rate,
        "sent": sent,
        "achieved": sent / duration,
        "failed": done["failed"],
        "late_p50_ms": lateness.value_at_percentile(50) / 1000,
        "late_p99_ms": lateness.value_at_percentile(99) / 1000,
        "cpu_share": cpu / wall,
    }


async def child_bare_closed(url: str, duration: float, concurrency: int = 50) -> dict[str, Any]:
    """A bare aiohttp closed loop at full speed."""
    import aiohttp

    loop = asyncio.get_running_loop()
    count = 0
    end = loop.time() + duration
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal count
            while loop.time() < end:
                async with session.get(url) as response:
                    await response.read()
                count += 1

        cpu0, wall0 = _cpu(), time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu, wall = _cpu() - cpu0, time.monotonic() - wall0
    return {"achieved": count / wall, "cpu_share": cpu / wall}


def run_child(kind: str, url: str, rate: float, duration: float) -> dict[str, Any]:
    """Run one measurement in a fresh process pinned to CPU 0."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        "--url",
        url,
        "--rate",
        str(rate),
        "--duration",
        str(duration),
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration * 4 + 60,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{kind} child failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- Locust

_LOCUSTFILE = """
from locust import FastHttpUser, task, constant_throughput
import os

PER_USER = float(os.environ.get("PER_USER", "0"))

class Bench(FastHttpUser):
    if PER_USER > 0:
        wait_time = constant_throughput(PER_USER)

    @task
    def get(self):
        self.client.get("/")
"""


def ensure_locust() -> Path | None:
    binary = LOCUST_VENV / "bin" / "locust"
    if binary.exists():
        return binary
    print(f"installing locust=={LOCUST_VERSION} into {LOCUST_VENV} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(LOCUST_VENV)], check=True)
    pip = [str(LOCUST_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    done = subprocess.run([*pip, f"locust=={LOCUST_VERSION}"], check=False)
    return binary if done.returncode == 0 and binary.exists() else None


def run_locust(
    binary: Path, url: str, users: int, per_user: float, duration: float
) -> dict[str, Any]:
    """Locust FastHttpUser, headless, pinned to CPU 0; counts from its final JSON stats."""
    with tempfile.TemporaryDirectory() as tmp:
        locustfile = Path(tmp) / "locustfile.py"
        locustfile.write_text(_LOCUSTFILE)
        process = subprocess.Popen(
            [
                str(binary),
                "-f",
                str(locustfile),
                "--headless",
                "-u",
                str(users),
                "-r",
                str(users),
                "-t",
                f"{duration:g}s",
                "--host",
                url.rstrip("/"),
                "--json",
                "--only-summary",
                "--loglevel",
                "ERROR",
            ],
            env={**os.environ, "PER_USER": str(per_user)},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {0}),  # noqa: PLW1509 - no threads here
        )
        # CPU over the steady middle of the run, not the interpreter's start-up.
        time.sleep(2.5)
        cpu0, wall0 = _proc_cpu(process.pid), time.monotonic()
        time.sleep(max(duration - 2.0, 0.5))
        cpu, wall = _proc_cpu(process.pid) - cpu0, time.monotonic() - wall0
        stdout, _ = process.communicate(timeout=duration * 3 + 60)
    stats = json.loads(stdout or "[]")
    count = sum(int(entry["num_requests"]) for entry in stats)
    return {
        "users": users,
        "per_user": per_user,
        "requests": count,
        "achieved": count / duration,
        "failed": sum(int(entry["num_failures"]) for entry in stats),
        "cpu_share": cpu / wall,
    }


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the report


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _f(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def highest_held(kind: str, url: str, duration: float) -> tuple[float, list[dict[str, Any]]]:
    best = 0.0
    trials = []
    for rate in LADDER:
        result = run_child(kind, url, rate, duration)
        trials.append(result)
        held = (
            result["achieved"] >= 0.99 * rate and not result.get("dropped") and not result["failed"]
        )
        print(
            f"  {kind:<10} {rate:>6}/s  achieved {result['achieved']:>8.0f}/s  "
            f"late p99 {_f(result.get('late_p99_ms'))} ms  cpu {_pct(result['cpu_share'])}  "
            f"{'held' if held else 'NOT held'}",
            flush=True,
        )
        if not held:
            break
        best = rate
    return best, trials


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--ladder-duration", type=float, default=5.0)
    parser.add_argument("--no-locust", action="store_true")
    parser.add_argument("--million", action="store_true", help="also 1,000,000 requests for RSS")
    parser.add_argument("--server", default="auto", choices=("auto", "nginx", "aiohttp"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        runner = {
            "ours": lambda: child_ours(args.url, args.rate, args.duration),
            "bare-open": lambda: child_bare_open(args.url, args.rate, args.duration),
            "bare-closed": lambda: child_bare_closed(args.url, args.duration),
        }[args.child]
        print(json.dumps(asyncio.run(runner())))
        return 0

    from transports import local_server

    with local_server(args.server) as (server_kind, base):
        url = base.rstrip("/") + "/"
        print(f"server: {server_kind} at {url} (CPU 1); generators on CPU 0", flush=True)
        print(f"\n1. fixed rates, {args.duration:g} s each", flush=True)
        fixed: dict[int, dict[str, dict[str, Any]]] = {}
        locust = None if args.no_locust else ensure_locust()
        for rate in RATES:
            row = {
                "ours": run_child("ours", url, rate, args.duration),
                "bare": run_child("bare-open", url, rate, args.duration),
            }
            if locust is not None:
                users = max(10, min(200, rate // 20))
                row["locust"] = run_locust(locust, url, users, rate / users, args.duration)
            fixed[rate] = row
            ours = row["ours"]
            print(
                f"  {rate:>5}/s  ours: achieved {ours['achieved']:.0f}/s "
                f"({100 * ours['achieved'] / rate:.1f}%), late p50 {_f(ours['late_p50_ms'])} "
                f"p99 {_f(ours['late_p99_ms'])} ms, cpu {_pct(ours['cpu_share'])}"
                f" | bare aiohttp: {row['bare']['achieved']:.0f}/s "
                f"cpu {_pct(row['bare']['cpu_share'])}"
                + (
                    f" | locust: {row['locust']['achieved']:.0f}/s cpu "
                    f"{_pct(row['locust']['cpu_share'])}"
                    if "locust" in row
                    else ""
                ),
                flush=True,
            )
        print(f"\n2. highest rate held at >= 99% (one core), {args.ladder_duration:g} s per step")
        ours_best, _ = highest_held("ours", url, args.ladder_duration)
        bare_best, _ = highest_held("bare-open", url, args.ladder_duration)
        closed = run_child("bare-closed", url, 0, args.ladder_duration)
        print(f"  bare aiohttp closed loop (50 tasks): {closed['achieved']:.0f}/s")
        locust_max = None
        if locust is not None:
            locust_max = run_locust(locust, url, 50, 0, args.ladder_duration)
            print(f"  locust FastHttpUser full speed (50 users): {locust_max['achieved']:.0f}/s")

        print("\n3. ratios (ours / peer, same run)")
        print(f"  highest held open-loop rate: ours {ours_best:.0f}/s")
        print(
            f"    / bare aiohttp open loop {bare_best:.0f}/s = {ours_best / max(bare_best, 1):.2f}"
        )
        print(
            f"    / bare aiohttp closed loop {closed['achieved']:.0f}/s = "
            f"{ours_best / closed['achieved']:.2f}"
        )
        if locust_max is not None:
            print(
                f"    / locust FastHttpUser {locust_max['achieved']:.0f}/s = "
                f"{ours_best / max(locust_max['achieved'], 1):.2f}"
            )
            at2k = fixed[2000]
            print(
                f"  CPU at 2000/s: ours {_pct(at2k['ours']['cpu_share'])} / locust "
                f"{_pct(at2k['locust']['cpu_share'])} = "
                f"{at2k['ours']['cpu_share'] / max(at2k['locust']['cpu_share'], 1e-9):.2f}; "
                f"achieved ours {100 * at2k['ours']['achieved'] / 2000:.1f}% vs locust "
                f"{100 * at2k['locust']['achieved'] / 2000:.1f}%"
            )
        if args.million:
            print("\n4. memory over 1,000,000 requests (10,000/s for 100 s)")
            big = run_child("ours", url, 10_000, 100)
            growth = (big["rss_last_mb"] or 0) - (big["rss_first_mb"] or 0)
            print(
                f"  sent {big['sent']:,}; RSS {big['rss_first_mb']:.1f} MB after 2 s -> "
                f"{big['rss_last_mb']:.1f} MB at the end: growth {growth:.1f} MB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

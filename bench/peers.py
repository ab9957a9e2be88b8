"""Ours against Locust FastHttpUser and a bare aiohttp loop, against the same nginx, in one run:
the one command that checks issue 18's acceptance.

One nginx (one worker, with a request counter: stub_status) runs pinned to its own CPU for the
whole run; every generator runs in its own process group pinned to another CPU. "Ours" is the
real command, `nimbus-scenarios run` on a one-phase scenario (`rate R/s` of `GET /`), with the
CLI's own defaults unless `--transport`, `--loop` or `--workers` say otherwise.

1. at 2,000/s and 5,000/s (`--duration`, 15 s): ours and Locust FastHttpUser
   (`constant_throughput`): achieved, p99 send lateness (ours), CPU seconds and share of a core
   over the steady window (ours: from `phase_started` to `phase_ended`; Locust: from all users
   spawned to the end of its run time), the target's count of requests over that window, and
   ours / Locust CPU;
2. the highest rate held on one core: ours = the highest open-model rate with >= 99% achieved
   for `--search-duration` seconds and nothing dropped or failed (walk by `--search-step` from a
   first guess, 85% of the 5,000/s CPU share extrapolated to a full core, then bisect to
   `--search-resolution`; at most `--search-trials` trials and `--search-budget` seconds);
   Locust FastHttpUser at full speed (closed loop, `--locust-users`); a bare aiohttp closed loop
   (50 tasks) for reference;
3. `run --workers 1` against `--workers 2`, when the CLI has `--workers`, with the target's
   capacity to spare. With 3 or more CPUs (`--workers-in cores`): the one-core search of 2.
   runs with `--workers 1`, so it is the workers-1 figure, and workers 2 is searched the same
   way on two CPUs while the target keeps its own. A 2-core machine has no CPU for each worker
   beside the target's, so there (`--workers-in halves`) each worker gets half of CPU 0:
   `--workers 1` beside a busy loop, `--workers 2` alone, the target alone on CPU 1; and the
   search with both workers on both CPUs (the target's too) is printed for reference;
4. with `--million`: RSS growth of ours over 1,000,000 requests for every `--transport` the CLI
   offers, or those of `--million-transports` (in the last repeat only; a transport that cannot
   hold `--million-rate` runs at 80% of what it achieved in a 5 s probe, for at most
   `--million-max-s`: fewer requests make that line INCOMPLETE, not PASS or FAIL).

Then the acceptance lines of the issue, PASS or FAIL (FAIL when any repeat misses). `--repeat N`
runs everything N times, the peers interleaved (their order alternates), and prints each figure
as its range over the repeats. `--write-docs` replaces the marked section of
docs/performance.md with the table, the date, the machine and the command. `--quick` is a
smoke run: 3 s per point, one trial instead of each search, and it never writes the docs.

Traffic goes to 127.0.0.1 only; every loop is bounded in count and time; every child (nginx
included) is stopped on the way out, Ctrl-C and SIGTERM included. Exit 0 when every acceptance
line passes (or is skipped), 1 when one fails, 2 on bad options.

    .venv/bin/python bench/peers.py [--quick] [--repeat N] [--million] [--write-docs]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import os
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _peers_support as sup  # noqa: E402 - the bench directory is put on the path just above

FIXED_RATES = (2000, 5000)
DOCS = sup.ROOT / "docs" / "performance.md"
DOCS_HEADING = "## Peers in one run (`bench/peers.py`)"
EXIT_FAILED, EXIT_USAGE = 1, 2
BARE_TASKS = 50

# acceptance thresholds of issue 18
MIN_ACHIEVED = 0.99
MAX_LATE_P99_MS = 2.0
MAX_CPU_RATIO = 0.6
MIN_HIGHEST_RATIO = 2.0
MIN_WORKERS_RATIO = 1.7
MAX_RSS_GROWTH_MB = 30.0
HALVES = 2
"""Section 3 on a 2-core machine: the workers' CPU is cut into this many equal shares, one per
worker (`--workers 1` shares it with one busy loop, `--workers 2` with nothing else)."""
MILLION = 1_000_000


# ---------------------------------------------------------------- one run of ours


@dataclass(frozen=True, slots=True)
class OursRun:
    """One `nimbus-scenarios run` at a fixed rate, read from its results document."""

    rate: float
    planned: int
    sent: int
    dropped: int
    failed: int
    late_p99_ms: float | None
    window: sup.Window | None
    rss_growth_mb: float | None

    @property
    def achieved(self) -> float:
        return self.sent / self.planned if self.planned else 0.0

    @property
    def held(self) -> bool:
        return self.achieved >= MIN_ACHIEVED and self.dropped == 0 and self.failed == 0


@dataclass(frozen=True, slots=True)
class Ours:
    """How ours is run: the CLI's options the bench varies (None: the CLI's default)."""

    cli: sup.CliOptions
    transport: str | None
    loop: str | None

    def argv(
        self, scenario: Path, url: str, results: Path, rate: float, workers: int | None
    ) -> list[str]:
        argv = [*sup.cli_command(), "run", str(scenario), "--url", url]
        argv += ["--results", str(results), "--max-rate", str(max(1, math.ceil(rate)))]
        if self.transport is not None:
            argv += ["--transport", self.transport]
        if self.loop is not None and self.cli.loop_option is not None:
            argv += [self.cli.loop_option, self.loop]
        if workers is not None and self.cli.workers:
            argv += ["--workers", str(workers)]
        return argv

    def env(self) -> dict[str, str]:
        """The environment ours runs in: no telemetry export, unbuffered output (the phase
        events must arrive when they happen), and the event loop when it is picked by a
        variable."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["PYTHONUNBUFFERED"] = "1"
        if self.loop is not None and self.cli.loop_option is None and self.cli.loop_env:
            env[self.cli.loop_env] = self.loop
        return env

    def describe(self) -> str:
        transport = self.transport or f"{self.cli.default_transport or '?'} (the CLI's default)"
        if self.cli.loop_option is not None:
            how = f"{self.cli.loop_option} {self.loop}" if self.loop else "the CLI's default"
        elif self.cli.loop_env is not None:
            how = f"{self.cli.loop_env}={self.loop or os.environ.get(self.cli.loop_env, '')}"
            if how.endswith("="):
                how += " (unset: the engine's default)"
        else:
            how = "asyncio's (the engine picks no other)"
        installed = {True: "installed", False: "not installed", None: "not asked"}[self.cli.uvloop]
        return (
            f"`nimbus-scenarios run`, transport {transport}, event loop: {how}; uvloop {installed}"
        )


def run_ours(
    ours: Ours,
    target: sup.Target,
    rate: float,
    duration: float,
    cpus: frozenset[int],
    *,
    workers: int | None = 1,
    rss: bool = False,
) -> OursRun:
    """One phase of ``rate``/s for ``duration`` s through the real CLI, pinned to ``cpus``."""
    with tempfile.TemporaryDirectory(prefix="nimbus-peers-") as tmp:
        scenario, results = Path(tmp) / "peers.scn", Path(tmp) / "results.json"
        scenario.write_text(sup.one_phase_scenario(rate, duration))
        env = ours.env()
        marks: dict[str, sup.Snapshot] = {}
        pgid: list[int] = []

        def on_line(line: str, _at: float) -> None:
            event = sup.json_line(line)
            name = None if event is None else event.get("event")
            if name in ("phase_started", "phase_ended") and name not in marks and pgid:
                marks[str(name)] = sup.snapshot(target, pgid[0])

        process = sup.start(
            ours.argv(scenario, target.url, results, rate, workers),
            cpus,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        pgid.append(process.pid)
        try:
            out = sup.LineReader(process.stdout, on_line)
            err = sup.LineReader(process.stderr)
            samples: list[float] = []
            deadline = time.monotonic() + duration * 3 + 60
            next_sample = 0.0
            while process.poll() is None and time.monotonic() < deadline:
                now = time.monotonic()
                sampling = rss and "phase_started" in marks and "phase_ended" not in marks
                if sampling and now >= next_sample:
                    samples.append(sup.group_rss_mb(process.pid))
                    next_sample = now + 1.0
                time.sleep(0.1)
            if process.poll() is None:
                raise RuntimeError(f"ours at {rate:g}/s did not end within {duration * 3 + 60} s")
            out.join(5)
            err.join(5)
        finally:
            sup.stop(process)
        if not results.exists():
            raise RuntimeError(
                f"ours at {rate:g}/s exited {process.returncode} without results:\n"
                + err.text()[-2000:]
            )
        document = json.loads(results.read_text())
    phase = document["phases"][0]
    lateness = document.get("send_lateness_ms") or {}
    window = None
    if "phase_started" in marks and "phase_ended" in marks:
        window = sup.Window.between(marks["phase_started"], marks["phase_ended"])
    growth = None
    if len(samples) > 3:
        growth = samples[-1] - samples[2]  # from 2 s into the phase (start-up allocations done)
    return OursRun(
        rate,
        int(phase["planned"]),
        int(phase["sent"]),
        int(phase["dropped"]),
        int(phase["failed"]),
        lateness.get("p99"),
        window,
        growth,
    )


# ---------------------------------------------------------------- Locust and bare aiohttp


@dataclass(frozen=True, slots=True)
class PeerRun:
    """One run of a peer: its own count of requests per second, failures, the steady window."""

    own_rate: float
    failed: int
    window: sup.Window

    @property
    def rate(self) -> float:
        """Requests per second over the steady window, as the target counted them if it can."""
        counted = self.window.server_rate
        return self.own_rate if counted is None else counted


def run_locust(
    binary: Path,
    target: sup.Target,
    users: int,
    per_user: float,
    duration: float,
    cpus: frozenset[int],
) -> PeerRun:
    """Locust FastHttpUser, headless, one process; ``per_user`` 0 is full speed."""
    with tempfile.TemporaryDirectory(prefix="nimbus-peers-") as tmp:
        locustfile = Path(tmp) / "locustfile.py"
        locustfile.write_text(sup.LOCUSTFILE)
        seen: dict[str, float] = {}

        def on_line(line: str, at: float) -> None:
            for mark, text in (("ramp", "Ramping to"), ("spawned", "All users spawned")):
                if text in line and mark not in seen:
                    seen[mark] = at

        argv = [str(binary), "-f", str(locustfile), "--headless", "-u", str(users)]
        argv += ["-r", str(max(users, 1) * 10), "-t", f"{duration:g}s"]
        argv += ["--host", target.url.rstrip("/"), "--json", "--only-summary"]
        argv += ["--loglevel", "INFO"]
        process = sup.start(
            argv,
            cpus,
            env={**os.environ, "PER_USER": str(per_user)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            err = sup.LineReader(process.stderr, on_line)
            out = sup.LineReader(process.stdout)
            deadline = time.monotonic() + 60
            while "spawned" not in seen and process.poll() is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("Locust did not spawn its users within 60 s")
                time.sleep(0.02)
            if "spawned" not in seen:
                raise RuntimeError(f"Locust exited early:\n{err.text()[-2000:]}")
            settle = min(1.0, 0.15 * duration)
            begin = seen["spawned"] + settle
            end = seen.get("ramp", seen["spawned"]) + duration - 0.3
            time.sleep(max(0.0, begin - time.monotonic()))
            first = sup.snapshot(target, process.pid)
            time.sleep(max(0.2, end - time.monotonic()))
            last = sup.snapshot(target, process.pid)
            process.wait(timeout=duration + 60)
            out.join(5)
            err.join(5)
        finally:
            sup.stop(process)
    stats = json.loads(out.text() or "[]")
    count = sum(int(entry["num_requests"]) for entry in stats)
    span = max(
        (float(e["last_request_timestamp"]) - float(e["start_time"]) for e in stats if count),
        default=duration,
    )
    return PeerRun(
        count / max(span, 1e-9),
        sum(int(entry["num_failures"]) for entry in stats),
        sup.Window.between(first, last),
    )


def run_bare_closed(target: sup.Target, duration: float, cpus: frozenset[int]) -> PeerRun:
    """A bare aiohttp closed loop (`--child bare-closed` in a process of its own)."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "bare-closed"]
    argv += ["--child-url", target.url, "--duration", str(duration)]
    process = sup.start(argv, cpus, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = sup.LineReader(process.stdout)
        err = sup.LineReader(process.stderr)
        deadline = time.monotonic() + 30
        while not out.lines and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # the child prints "ready" once its session is open
        first = sup.snapshot(target, process.pid)
        process.wait(timeout=duration + 60)
        last = sup.snapshot(target, process.pid)
        out.join(5)
        err.join(5)
    finally:
        sup.stop(process)
    result = sup.json_line(out.lines[-1][1]) if out.lines else None
    if result is None:
        raise RuntimeError(f"the bare aiohttp loop failed:\n{err.text()[-2000:]}")
    window = sup.Window.between(first, last)
    # the child's own count and CPU over its measured span (the window above includes its exit)
    own = sup.Window(
        float(result["seconds"]),  # type: ignore[arg-type]
        float(result["cpu_s"]),  # type: ignore[arg-type]
        window.server_cpu_s,
        None,
    )
    return PeerRun(float(result["requests"]) / own.seconds, 0, own)  # type: ignore[arg-type]


async def child_bare_closed(url: str, duration: float) -> dict[str, float]:
    """The child: ``BARE_TASKS`` tasks each sending `GET /` in turn; 0.5 s warm-up uncounted."""
    import aiohttp

    loop = asyncio.get_running_loop()
    count = 0
    counting = False
    connector = aiohttp.TCPConnector(limit=BARE_TASKS)
    async with aiohttp.ClientSession(connector=connector) as session:
        print("ready", flush=True)
        end = loop.time() + 0.5 + duration

        async def worker() -> None:
            nonlocal count
            while loop.time() < end:
                async with session.get(url) as response:
                    await response.read()
                if counting:
                    count += 1

        tasks = [loop.create_task(worker()) for _ in range(BARE_TASKS)]
        await asyncio.sleep(0.5)
        counting = True
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu0, wall0 = usage.ru_utime + usage.ru_stime, loop.time()
        await asyncio.gather(*tasks)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu, wall = usage.ru_utime + usage.ru_stime - cpu0, loop.time() - wall0
    return {"requests": count, "seconds": wall, "cpu_s": cpu}


# ---------------------------------------------------------------- the figures of one repeat


class Figures:
    """Named figures of one repeat (a rate, a share, a ratio), printed as they come."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def put(self, name: str, value: float | None) -> None:
        if value is not None:
            self.values[name] = value


def say(text: str) -> None:
    print(text, flush=True)


def show_ours(label: str, run: OursRun) -> str:
    window = run.window
    parts = [
        f"{label}: achieved {sup.pct(run.achieved)} ({run.sent:,}/{run.planned:,})",
        f"dropped {run.dropped}, failed {run.failed}",
        "late p99 " + ("-" if run.late_p99_ms is None else sup.ms(run.late_p99_ms)),
    ]
    if window is not None:
        parts.append(f"CPU {window.cpu_s:.2f} s = {sup.pct0(window.cpu_share)} of a core")
        parts.append(f"target CPU {sup.pct0(window.server_cpu_share)}")
        if window.server_rate is not None:
            parts.append(f"target counted {sup.per_s(window.server_rate)}")
    return ", ".join(parts)


def show_peer(label: str, run: PeerRun) -> str:
    window = run.window
    counted = "" if window.server_rate is None else f" (target counted {sup.per_s(run.rate)})"
    return (
        f"{label}: {sup.per_s(run.own_rate)} by its own count{counted}, failed {run.failed}, "
        f"CPU {window.cpu_s:.2f} s = {sup.pct0(window.cpu_share)} of a core over "
        f"{window.seconds:.1f} s"
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """The parsed options, checked."""

    duration: float
    search_duration: float
    search_step: float
    search_resolution: float
    search_trials: int
    search_budget: float
    quick: bool
    repeat: int
    locust_users: int
    million: bool
    million_rate: float
    million_max_s: float
    million_kinds: tuple[str, ...]
    workers_in: str = "cores"
    """Where section 3 runs the workers: `cores` (CPUs of their own) or `halves` (an equal
    share of one CPU each, the target alone on another)."""


def fixed_rates(
    figures: Figures,
    ours: Ours,
    locust: Path | None,
    target: sup.Target,
    lay: sup.Layout,
    settings: Settings,
    locust_first: bool,
) -> None:
    say(f"\n1. fixed rates, {settings.duration:g} s each (open model)")
    for rate in FIXED_RATES:
        runs: list[Callable[[], None]] = []
        key = f"@{rate}"

        def do_ours(rate: float = rate, key: str = key) -> None:
            run = run_ours(ours, target, rate, settings.duration, lay.one_core)
            say("  " + show_ours(f"{rate:>5}/s ours", run))
            figures.put("ours.achieved" + key, run.achieved)
            figures.put("ours.late_p99" + key, run.late_p99_ms)
            if run.window is not None:
                figures.put("ours.cpu" + key, run.window.cpu_share)

        def do_locust(rate: float = rate, key: str = key) -> None:
            assert locust is not None
            users = max(10, min(200, int(rate) // 20))
            run = run_locust(locust, target, users, rate / users, settings.duration, lay.one_core)
            say("  " + show_peer(f"{rate:>5}/s Locust ({users} users)", run))
            figures.put("locust.achieved" + key, run.rate / rate)
            figures.put("locust.cpu" + key, run.window.cpu_share)

        runs.append(do_ours)
        if locust is not None:
            runs.insert(0 if locust_first else 1, do_locust)
        for run in runs:
            run()
        if "ours.cpu" + key in figures.values and "locust.cpu" + key in figures.values:
            ratio = figures.values["ours.cpu" + key] / max(figures.values["locust.cpu" + key], 1e-9)
            figures.put("ratio.cpu" + key, ratio)
            say(f"  {rate:>5}/s CPU ours / Locust = {ratio:.2f}")


def highest(
    ours: Ours,
    target: sup.Target,
    settings: Settings,
    cpus: frozenset[int],
    start_rate: float,
    workers: int | None,
    label: str,
) -> tuple[float, OursRun | None]:
    """The search of section 2 (or its one trial with --quick); the best rate and its run."""
    runs: dict[float, OursRun] = {}

    def held(rate: float) -> bool:
        run = run_ours(ours, target, rate, settings.search_duration, cpus, workers=workers)
        runs[rate] = run
        say(
            "    "
            + show_ours(f"{label} {rate:>7,.0f}/s", run)
            + (" - held" if run.held else " - NOT held")
        )
        return run.held

    if settings.quick:
        ok = held(start_rate)
        say(f"  {label}: one trial at {start_rate:,.0f}/s (--quick: no search)")
        return (start_rate, runs[start_rate]) if ok else (0.0, None)
    found = sup.search_highest(
        held,
        start=start_rate,
        step=settings.search_step,
        resolution=settings.search_resolution,
        max_trials=settings.search_trials,
        budget_s=settings.search_budget,
        trial_s=settings.search_duration + 3,
    )
    say(
        f"  {label}: highest held {sup.per_s(found.best)} after {len(found.trials)} trials "
        f"(stopped: {found.stopped})"
    )
    return found.best, runs.get(found.best)


def one_repeat(
    figures: Figures,
    index: int,
    ours: Ours,
    locust: Path | None,
    target: sup.Target,
    lay: sup.Layout,
    settings: Settings,
    last: bool,
) -> None:
    """Everything once, into ``figures`` as it is measured (an interrupted repeat keeps what
    it has)."""
    locust_first = index % 2 == 1  # alternate who goes first, so drift does not favour either
    say(f"\n=== repeat {index + 1} of {settings.repeat}")
    fixed_rates(figures, ours, locust, target, lay, settings, locust_first)

    how = "one trial" if settings.quick else f"{settings.search_duration:g} s per trial"
    say(f"\n2. highest rate on one core ({how})")
    guess = sup.first_guess(5000, figures.values.get("ours.cpu@5000"), settings.search_step)
    best, run1 = highest(ours, target, settings, lay.one_core, guess, 1, "ours")
    figures.put("ours.highest", best)
    if run1 is not None and run1.window is not None:
        figures.put("ours.highest_cpu", run1.window.cpu_share)
    peers: list[Callable[[], None]] = []

    def do_locust() -> None:
        assert locust is not None
        run = run_locust(
            locust, target, settings.locust_users, 0, settings.search_duration, lay.one_core
        )
        say("  " + show_peer(f"Locust full speed ({settings.locust_users} users)", run))
        figures.put("locust.full", run.rate)

    def do_bare() -> None:
        run = run_bare_closed(target, settings.search_duration, lay.one_core)
        say("  " + show_peer(f"bare aiohttp closed loop ({BARE_TASKS} tasks)", run))
        figures.put("bare.closed", run.rate)

    if locust is not None:
        peers.append(do_locust)
    peers.append(do_bare)
    for run in peers if not locust_first else reversed(peers):
        run()
    if "locust.full" in figures.values:
        ratio = best / max(figures.values["locust.full"], 1e-9)
        figures.put("ratio.highest", ratio)
        say(f"  highest held ours / Locust full speed = {ratio:.2f}")

    workers_section(figures, ours, target, lay, settings, best, guess)

    if settings.million and last:
        million(figures, ours, target, lay, settings)


def workers_section(
    figures: Figures,
    ours: Ours,
    target: sup.Target,
    lay: sup.Layout,
    settings: Settings,
    best: float,
    guess: float,
) -> None:
    """Section 3: `--workers 2` against `--workers 1`, on halves of one CPU or on CPUs of their
    own, and on a 2-core machine both workers on both CPUs (the target's too) for reference."""
    say("\n3. --workers 1 against --workers 2")
    if not ours.cli.workers:
        say("  SKIPPED: this CLI's `run` has no --workers option")
        return
    resolution = settings.search_resolution

    def rounded(rate: float) -> float:
        return max(resolution, round(rate / resolution) * resolution)

    if settings.workers_in == "halves":
        cpu = sup.cpu_list(lay.one_core)
        say(
            f"  halves: the workers on CPU {cpu}, each with half of it (`--workers 1` beside "
            f"a busy loop, `--workers 2` alone); the target alone on CPU {sup.cpu_list(lay.server)}"
        )
        found: dict[int, float] = {}
        start = rounded((best or guess) / HALVES * 0.9)
        for workers in (1, 2):
            with sup.busy_loops(HALVES - workers, lay.one_core, settings.search_budget + 120):
                top, run = highest(
                    ours,
                    target,
                    settings,
                    lay.one_core,
                    start,
                    workers,
                    f"half CPU each, workers {workers}",
                )
            found[workers] = top
            figures.put(f"half{workers}.highest", top)
            if run is not None:
                figures.put(f"half{workers}.late_p99", run.late_p99_ms)
                if run.window is not None:
                    figures.put(f"half{workers}.cpu", run.window.cpu_share)
                    figures.put(f"half{workers}.target_cpu", run.window.server_cpu_share)
            start = rounded(top * 1.8) if top > 0 else start
        if found[1] > 0:
            figures.put("ratio.workers", found[2] / found[1])
            say(f"  halves: workers 2 / workers 1 = {found[2] / found[1]:.2f}")
        if not lay.shared:
            return
        say("  for reference (not the acceptance): both workers on both CPUs, the target's too")
    else:
        say(f"  {lay.describe()}; workers 1 = the one-core search above")
    figures.put("workers1.highest", best)
    start2 = rounded(max(best * 1.5, guess))
    best2, run2 = highest(ours, target, settings, lay.two_cores, start2, 2, "workers 2")
    figures.put("workers2.highest", best2)
    if run2 is not None and run2.window is not None:
        figures.put("workers2.cpu", run2.window.cpu_share)
        figures.put("workers2.target_cpu", run2.window.server_cpu_share)
    ratio_name = "ratio.workers" if settings.workers_in == "cores" else "ratio.workers_shared"
    if best > 0:
        figures.put(ratio_name, best2 / best)
        say(f"  workers 2 / workers 1 = {best2 / best:.2f}")
    cpu1, cpu2 = figures.values.get("ours.highest_cpu"), figures.values.get("workers2.cpu")
    if lay.shared and best > 0 and best2 > 0 and cpu1 and cpu2:
        # Not the acceptance: what the workers would hold with two cores to themselves, if
        # each request kept the CPU it cost here (requests per CPU-second, times 2 cores).
        projected = 2 * (best2 / cpu2) / (best / cpu1)
        figures.put("ratio.workers_projected", projected)
        say(
            f"  the workers shared CPU {sup.cpu_list(lay.server)} with the target: per CPU "
            f"second they held {best2 / cpu2:,.0f}/s (workers 2) against {best / cpu1:,.0f}/s "
            f"(workers 1); with two free cores that projects to {projected:.2f}x"
        )


def million(
    figures: Figures, ours: Ours, target: sup.Target, lay: sup.Layout, settings: Settings
) -> None:
    kinds = settings.million_kinds
    say(f"\n4. RSS over {MILLION:,} requests, each transport ({', '.join(kinds)})")
    for kind in kinds:
        each = Ours(ours.cli, kind if ours.cli.transports else None, ours.loop)
        rate = settings.million_rate
        probe = run_ours(each, target, rate, 5, lay.one_core)
        if not probe.held:
            rate = max(100.0, math.floor(0.8 * probe.sent / 5 / 100) * 100)
        duration = min(MILLION / rate, settings.million_max_s)
        run = run_ours(each, target, rate, duration, lay.one_core, rss=True)
        growth = run.rss_growth_mb
        say(
            f"  {kind}: {run.sent:,} requests at {rate:,.0f}/s in {duration:g} s, RSS growth "
            + ("-" if growth is None else sup.mb(growth))
            + ("" if run.sent >= MILLION * MIN_ACHIEVED else " (fewer than 1,000,000: time cap)")
        )
        figures.put(f"rss.{kind}", growth)
        figures.put(f"rss_sent.{kind}", run.sent)


# ---------------------------------------------------------------- the summary


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    ours: str | None
    locust: str | None = None
    bare: str | None = None
    ratio: str | None = None
    fmt: Callable[[float], str] = sup.pct
    ratio_fmt: Callable[[float], str] = sup.times


def spans(repeats: list[Figures]) -> dict[str, sup.Span]:
    names = sorted({name for f in repeats for name in f.values})
    return {n: sup.Span(tuple(f.values[n] for f in repeats if n in f.values)) for n in names}


def table(ranges: dict[str, sup.Span], kinds: tuple[str, ...]) -> list[str]:
    rows = []
    for rate in FIXED_RATES:
        k = f"@{rate}"
        rows += [
            Row(f"{rate:,}/s: achieved", "ours.achieved" + k, "locust.achieved" + k),
            Row(f"{rate:,}/s: p99 send lateness", "ours.late_p99" + k, fmt=sup.ms),
            Row(
                f"{rate:,}/s: CPU (share of a core)",
                "ours.cpu" + k,
                "locust.cpu" + k,
                ratio="ratio.cpu" + k,
                fmt=sup.pct0,
            ),
        ]
    rows.append(
        Row(
            "highest rate held on one core (Locust, bare: closed loop at full speed)",
            "ours.highest",
            "locust.full",
            "bare.closed",
            "ratio.highest",
            fmt=sup.per_s,
        )
    )
    for workers in (1, 2):
        half = f"--workers {workers}, half a CPU each"
        rows += [
            Row(
                f"{half}: highest held",
                f"half{workers}.highest",
                ratio="ratio.workers" if workers == 2 else None,
                fmt=sup.per_s,
            ),
            Row(f"{half}: CPU at that rate", f"half{workers}.cpu", fmt=sup.cores),
            Row(f"{half}: p99 send lateness at that rate", f"half{workers}.late_p99", fmt=sup.ms),
            Row(
                f"{half}: the target's CPU at that rate", f"half{workers}.target_cpu", fmt=sup.pct0
            ),
        ]
    shared = "half1.highest" in ranges
    rows += [
        Row("--workers 1: highest held", "workers1.highest", fmt=sup.per_s),
        Row(
            "--workers 2"
            + (" on both CPUs, the target's too (reference)" if shared else "")
            + ": highest held",
            "workers2.highest",
            ratio="ratio.workers_shared" if shared else "ratio.workers",
            fmt=sup.per_s,
        ),
        Row("--workers 2: its CPU at that rate", "workers2.cpu", fmt=sup.cores),
        Row("--workers 2: the target's CPU at that rate", "workers2.target_cpu", fmt=sup.pct0),
        Row(
            "--workers 2 / 1 projected to two free cores (rate per CPU-second x 2; not measured)",
            "ratio.workers_projected",
            fmt=sup.times,
        ),
    ]
    for kind in kinds:
        sent = ranges.get(f"rss_sent.{kind}")
        over = "-" if sent is None or not sent.values else f"{sent.high:,.0f}"
        rows.append(Row(f"RSS growth, {kind}, over {over} requests", f"rss.{kind}", fmt=sup.mb))
    lines = [
        "| figure | ours | Locust FastHttpUser | bare aiohttp | ours / Locust (workers: 2 / 1) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if row.ours not in ranges:
            continue
        cells = [
            ranges[name].show(row.fmt) if name is not None and name in ranges else "-"
            for name in (row.ours, row.locust, row.bare)
        ]
        ratio = ranges[row.ratio].show(row.ratio_fmt) if row.ratio in ranges else "-"
        lines.append(f"| {row.label} | " + " | ".join([*cells, ratio]) + " |")
    return lines


Condition = tuple[str, str, float]
"""A figure's name, `>=`, `<=` or `<`, and the threshold."""

_MEETS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda value, limit: value >= limit,
    "<=": lambda value, limit: value <= limit,
    "<": lambda value, limit: value < limit,
}


def acceptance(kinds: tuple[str, ...]) -> list[tuple[str, list[Condition]]]:
    """Issue 18's acceptance, each line with the conditions on the figures that check it; a
    condition on a `rss_sent.` figure is a prerequisite (the run was long enough), not the
    acceptance itself."""
    lines: list[tuple[str, list[Condition]]] = []
    for rate in FIXED_RATES:
        k = f"@{rate}"
        lines += [
            (
                f"at {rate:,}/s: >= 99% achieved and p99 send lateness <= 2 ms",
                [
                    ("ours.achieved" + k, ">=", MIN_ACHIEVED),
                    ("ours.late_p99" + k, "<=", MAX_LATE_P99_MS),
                ],
            ),
            (
                f"at {rate:,}/s: CPU <= 0.6x Locust FastHttpUser's",
                [("ratio.cpu" + k, "<=", MAX_CPU_RATIO)],
            ),
        ]
    lines += [
        (
            "highest rate held on one core >= 2x Locust FastHttpUser's full speed",
            [("ratio.highest", ">=", MIN_HIGHEST_RATIO)],
        ),
        (
            "--workers 2 holds >= 1.7x the rate of --workers 1",
            [("ratio.workers", ">=", MIN_WORKERS_RATIO)],
        ),
    ]
    lines += [
        (
            f"RSS growth < 30 MB over 1,000,000 requests ({kind})",
            [(f"rss.{kind}", "<", MAX_RSS_GROWTH_MB), (f"rss_sent.{kind}", ">=", MILLION * 0.99)],
        )
        for kind in kinds
    ]
    return lines


def verdicts(repeats: list[Figures], kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    """Each acceptance line and its verdict: PASS when every repeat that measured it meets it."""
    out = []
    for line, conditions in acceptance(kinds):
        have = [f.values for f in repeats if all(name in f.values for name, _, _ in conditions)]

        def meets(values: dict[str, float], which: list[Condition]) -> bool:
            return all(_MEETS[op](values[name], limit) for name, op, limit in which)

        needs = [c for c in conditions if c[0].startswith("rss_sent.")]
        short = sum(not meets(values, needs) for values in have)
        misses = sum(not meets(values, conditions) for values in have)
        if not have:
            verdict = "SKIP (not measured)"
        elif short:
            verdict = f"INCOMPLETE (fewer than {MILLION:,} requests in {short} of {len(have)})"
        elif misses:
            verdict = f"FAIL ({misses} of {len(have)} repeats miss it)"
        else:
            verdict = "PASS"
        out.append((line, verdict))
    return out


def summary(
    repeats: list[Figures],
    kinds: tuple[str, ...],
    settings: Settings,
    how: list[str],
    command: str,
) -> str:
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    ranges = spans(repeats)
    parts = [
        f"`{command}` ({today}; {sup.machine()}; "
        + ("one run" if settings.repeat == 1 else f"{settings.repeat} repeats, ranges min-max")
        + ("; --quick smoke figures, not the acceptance" if settings.quick else "")
        + "):",
        "",
        *(f"- {line}" for line in how),
        "",
        *table(ranges, kinds),
        "",
        "Acceptance (issue 18):",
        "",
        *(f"- {line}: **{verdict}**" for line, verdict in verdicts(repeats, kinds)),
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per fixed rate")
    parser.add_argument("--search-duration", type=float, help="seconds per trial (--duration)")
    parser.add_argument("--search-step", type=float, default=2000.0, help="req/s per step")
    parser.add_argument("--search-resolution", type=float, default=250.0, help="req/s")
    parser.add_argument("--search-trials", type=int, default=12, help="at most, per search")
    parser.add_argument("--search-budget", type=float, default=300.0, help="seconds per search")
    parser.add_argument("--repeat", type=int, default=1, help="run everything N times (max 10)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s points, no search")
    parser.add_argument("--transport", help="ours: `run --transport` (default: the CLI's)")
    parser.add_argument(
        "--loop", help="ours: the event loop (the CLI's option, or the engine's variable)"
    )
    parser.add_argument("--locust-users", type=int, default=50, help="Locust at full speed")
    parser.add_argument("--no-locust", action="store_true", help="skip Locust")
    parser.add_argument("--million", action="store_true", help="also RSS over 1,000,000 requests")
    parser.add_argument("--million-rate", type=float, default=10_000.0)
    parser.add_argument("--million-max-s", type=float, default=300.0)
    parser.add_argument(
        "--million-transports", help="comma-separated (default: every --transport of the CLI)"
    )
    parser.add_argument("--server", default="auto", choices=("auto", "nginx", "aiohttp"))
    parser.add_argument(
        "--workers-in",
        default="auto",
        choices=("auto", "cores", "halves"),
        help="section 3: a CPU per worker, or half of one CPU each with the target alone on "
        "another (auto: halves when the machine has too few CPUs for the first)",
    )
    parser.add_argument("--write-docs", action="store_true", help=f"write the table to {DOCS}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def check(args: argparse.Namespace, cli: sup.CliOptions) -> str | None:
    """What is wrong with the options, if anything."""
    numbers = (args.duration, args.search_step, args.search_resolution, args.search_budget)
    if not all(math.isfinite(x) and x > 0 for x in numbers):
        return "--duration, --search-step, --search-resolution, --search-budget must be over 0"
    if args.search_duration is not None and not 0 < args.search_duration <= 600:
        return "--search-duration must be over 0 and at most 600"
    if args.duration > 600:
        return "--duration must be at most 600"
    if not 1 <= args.repeat <= 10:
        return "--repeat must be between 1 and 10"
    if not 1 <= args.search_trials <= 50:
        return "--search-trials must be between 1 and 50"
    if not 1 <= args.locust_users <= 1000:
        return "--locust-users must be between 1 and 1000"
    if not (0 < args.million_rate <= 100_000 and 0 < args.million_max_s <= 3600):
        return "--million-rate must be in (0, 100000] and --million-max-s in (0, 3600]"
    unknown = set(million_kinds(args, cli)) - set(cli.transports)
    if cli.transports and unknown:
        return f"--million-transports {','.join(sorted(unknown))}: the CLI offers " + ", ".join(
            cli.transports
        )
    if args.quick and args.write_docs:
        return "--quick figures are a smoke run: they are not written to the docs"
    if args.transport is not None and cli.transports and args.transport not in cli.transports:
        return f"--transport {args.transport}: the CLI offers {', '.join(cli.transports)}"
    if args.loop is not None:
        if cli.loop_option is None and cli.loop_env is None:
            return "--loop: this CLI has no event-loop option and its engine reads no variable"
        if args.loop not in cli.loops:
            return f"--loop {args.loop}: the CLI offers {', '.join(cli.loops)}"
    return None


def million_kinds(args: argparse.Namespace, cli: sup.CliOptions) -> tuple[str, ...]:
    """The transports --million measures: --million-transports, else every one the CLI has."""
    if args.million_transports:
        return tuple(k.strip() for k in args.million_transports.split(",") if k.strip())
    return cli.transports or (args.transport or "default",)


def where_workers_run(asked: str, lay: sup.Layout) -> str:
    """Section 3's layout: as asked, or (auto) `cores` when two generator CPUs leave the
    target one of its own, else `halves`."""
    if asked != "auto":
        return asked
    return "halves" if lay.shared else "cores"


def workers_how(settings: Settings, lay: sup.Layout) -> str:
    """How section 3 was measured, for the docs."""
    if settings.workers_in == "halves":
        return (
            "--workers 2 against 1 (the acceptance): a 2-core machine has no CPU for each of "
            "two workers beside the target's, so each worker gets an equal share of one: "
            f"half of CPU {sup.cpu_list(lay.one_core)} (`--workers 1` beside a busy loop pinned "
            "there, `--workers 2` alone, both workers pinned there), and the target keeps CPU "
            f"{sup.cpu_list(lay.server)} to itself, so it has spare capacity; each is searched "
            "as above"
            + (
                "; the same search with both workers on both CPUs (the target's too) is "
                "printed for reference"
                if lay.shared
                else ""
            )
        )
    if lay.shared:
        return (
            "--workers 2 against 1: the two workers share the target's CPU, so the target has "
            "no spare capacity and the ratio is what the machine leaves"
        )
    return "--workers 2 against 1: on two CPUs of their own; the target has a CPU of its own"


def _stop_on_term(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None, prog: str = "bench/peers.py") -> int:
    args = parse_args(argv)
    if args.child == "bare-closed":
        print(json.dumps(asyncio.run(child_bare_closed(args.child_url, args.duration))))
        return 0
    cli = sup.read_cli_options()
    problem = check(args, cli)
    if problem is not None:
        print(f"{prog}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    quick = 3.0
    settings = Settings(
        duration=quick if args.quick else args.duration,
        search_duration=quick if args.quick else (args.search_duration or args.duration),
        search_step=args.search_step,
        search_resolution=args.search_resolution,
        search_trials=args.search_trials,
        search_budget=args.search_budget,
        quick=args.quick,
        repeat=args.repeat,
        locust_users=args.locust_users,
        million=args.million,
        million_rate=args.million_rate,
        million_max_s=args.million_max_s,
        million_kinds=million_kinds(args, cli) if args.million else (),
    )
    command = " ".join([".venv/bin/python", prog, *map(shlex.quote, argv or sys.argv[1:])])
    lay = sup.layout()
    settings = replace(settings, workers_in=where_workers_run(args.workers_in, lay))
    signal.signal(signal.SIGTERM, _stop_on_term)
    ours = Ours(cli, args.transport, args.loop)
    locust = None if args.no_locust else sup.ensure_locust()
    if locust is None and not args.no_locust:
        say("Locust could not be installed: its figures are skipped")
    kinds = settings.million_kinds
    repeats: list[Figures] = []
    how: list[str] = []
    interrupted = False
    try:
        with sup.target_server(args.server, lay.server) as target:
            say(f"machine: {sup.machine()}")
            how = [
                f"target: {target.name} at {target.url}; {lay.describe()}",
                f"ours: {ours.describe()}"
                + ("; one-core runs with `--workers 1`" if cli.workers else ""),
                (
                    "CPU: the generator's process group over its steady window (ours: phase "
                    "start to end; Locust: all users spawned to the end of its run time), as a "
                    "share of one core; the target's request counter gives the peers' rates"
                ),
                (
                    "highest held: >= 99% achieved for the trial, nothing dropped or failed; "
                    f"walk by {settings.search_step:,.0f}/s from 85% of the 5,000/s CPU "
                    f"extrapolated to a core, then bisect to {settings.search_resolution:,.0f}/s"
                ),
                workers_how(settings, lay),
            ]
            for line in how:
                say(line)
            for index in range(settings.repeat):
                repeats.append(Figures())
                last = index == settings.repeat - 1
                one_repeat(repeats[-1], index, ours, locust, target, lay, settings, last)
    except KeyboardInterrupt:
        interrupted = True
        say("\ninterrupted: every child stopped; the figures so far follow")
    text = summary(repeats, kinds, settings, how, command)
    say("\n" + text)
    if args.write_docs and repeats and not interrupted:
        DOCS.write_text(sup.replace_section(DOCS.read_text(), text, DOCS_HEADING))
        say(f"\nwritten to {DOCS.relative_to(sup.ROOT)}")
    if interrupted:
        return 130
    failed = any(v.startswith("FAIL") for _, v in verdicts(repeats, kinds))
    return EXIT_FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main())

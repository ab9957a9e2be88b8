"""Benchmark of what tracing costs the load engine: tracing off, at 10% and at 100% sampling.

Its place: a bench script (not a test) for the `telemetry` stage. A fast local server (nginx when
/usr/sbin/nginx exists, as in bench/transports.py) and the rotel collector (blackhole exporter)
run pinned to CPU 1; this process pins itself to CPU 0, so the client's CPU, including the
OpenTelemetry export threads, is what is measured. Each mode plays the same open-loop scenario
(one phase at ``--rate`` requests/s for ``--duration`` seconds) through the real runner with
telemetry wired in, ``--repeat`` times, interleaved, after an unrecorded 1 s warm-up of each
mode (imports, first connections). It prints the achieved rate and the client's CPU time per
request (medians over the repeats: other processes on a shared machine make single runs noisy),
the worst p99 send lateness, and ratios against the untraced run. Traffic goes to 127.0.0.1
only; every run is bounded in time; the server and the collector are stopped on exit.

    .venv/bin/python bench/telemetry.py [--rate 2000] [--duration 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import rotel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers_support import free_port, wait_for_port
from transports import CLIENT_CPU, SERVER_CPU, cpu_seconds, local_server, pin

from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.results.model import TelemetrySummary
from nimbus_scenarios.runner import RunOptions, run_scenario
from nimbus_scenarios.telemetry import Telemetry, configure_logging

ROTEL_AGENT = Path(rotel.__file__).resolve().parent / "rotel-agent"
MODES = (("off", None), ("10%", 10.0), ("100%", 100.0))

SCENARIO = """\
scenario "bench" {{
  settings {{
    trace_sample {sample}%
    max_inflight 5000
  }}
  request a = GET "/"
  phase "load" {duration}s {{
    rate {rate}/s
    send a
  }}
}}
"""


def pin_collector() -> None:
    """Runs in rotel's child process before exec: it shares CPU 1 with the server."""
    pin(SERVER_CPU)


@contextlib.contextmanager
def collector() -> Iterator[str]:
    """rotel receiving OTLP/HTTP and discarding it (blackhole); yields the OTLP endpoint."""
    http, grpc = free_port(), free_port()
    argv = [
        str(ROTEL_AGENT),
        "start",
        "--otlp-http-endpoint",
        f"127.0.0.1:{http}",
        "--otlp-grpc-endpoint",
        f"127.0.0.1:{grpc}",
        "--exporter",
        "blackhole",
    ]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # preexec_fn is safe here: no thread is running yet in this process.
        preexec_fn=pin_collector,  # noqa: PLW1509
    )
    try:
        wait_for_port(http, process)
        yield f"http://127.0.0.1:{http}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass
class Result:
    mode: str
    sent: int
    dropped: int
    elapsed_s: float
    cpu_s: float
    late_p99_ms: float
    spans: int
    spans_dropped: int

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / max(self.sent, 1) * 1e6


def play(
    mode: str, sample: float | None, url: str, endpoint: str, rate: int, duration: float
) -> Result:
    text = SCENARIO.format(sample=sample or 0, duration=duration, rate=rate)
    plan = compile_source(Source("bench.scn", text))
    telemetry = None
    if sample is not None:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_METRIC_EXPORT_INTERVAL": "5000"}
        telemetry = Telemetry.start(plan, url=url, environ=env)
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    options = RunOptions(url=url, install_signal_handlers=False)
    outcome = asyncio.run(
        asyncio.wait_for(run_scenario(plan, options, scenario_text=text, telemetry=telemetry), 120)
    )
    summary = telemetry.shutdown(timeout_s=5.0) if telemetry is not None else TelemetrySummary()
    cpu, elapsed = cpu_seconds() - cpu0, time.perf_counter() - t0
    results = outcome.results
    ran = results.phases[0].ran_s
    late = results.send_lateness_ms
    return Result(
        mode=mode,
        sent=results.totals.sent,
        dropped=results.totals.dropped,
        elapsed_s=ran[1] - ran[0] if ran else elapsed,
        cpu_s=cpu,
        late_p99_ms=0.0 if late is None else late.p99,
        spans=summary.spans_exported,
        spans_dropped=summary.spans_dropped,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rate", type=int, default=2000, help="open-loop requests per second")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (max 60)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode, interleaved")
    parser.add_argument("--server", choices=("auto", "nginx", "aiohttp"), default="auto")
    args = parser.parse_args(argv)
    duration = min(max(args.duration, 1.0), 60.0)
    rate = min(max(args.rate, 1), 20_000)
    devnull = Path(os.devnull).open("w")  # noqa: SIM115 - open for the whole process
    configure_logging(stream=devnull, json=True)

    pinned = pin(CLIENT_CPU)
    results: dict[str, list[Result]] = {mode: [] for mode, _ in MODES}
    with local_server(args.server) as (server_name, base_url), collector() as endpoint:
        print(
            f"server: {server_name} on {base_url} and rotel (blackhole) pinned to CPU "
            f"{SERVER_CPU}; client pinned to CPU {CLIENT_CPU}: {pinned}; {rate}/s for "
            f"{duration:g} s, {args.repeat} run(s) per mode; Python {sys.version.split()[0]}"
        )
        for mode, sample in MODES:  # warm-up, not recorded: imports and first connections
            play(mode, sample, base_url, endpoint, rate, 1.0)
        for _ in range(max(args.repeat, 1)):
            for mode, sample in MODES:
                results[mode].append(play(mode, sample, base_url, endpoint, rate, duration))

    rows = {
        mode: (
            statistics.median([r.rate for r in runs]),
            statistics.median([r.cpu_us for r in runs]),
            max(r.late_p99_ms for r in runs),
            sum(r.dropped for r in runs),
            sum(r.spans for r in runs),
            sum(r.spans_dropped for r in runs),
        )
        for mode, runs in results.items()
    }
    base_rate, base_cpu = rows["off"][0], rows["off"][1]
    header = (
        f"{'tracing':<8}{'achieved/s':>11}{'CPU us/req':>12}{'late p99 ms':>13}{'dropped':>9}"
        f"{'spans':>9}{'spans lost':>11}{'x rate':>8}{'x CPU/req':>11}"
    )
    print(header)
    print("-" * len(header))
    for mode, (achieved, cpu_us, late, dropped, spans, lost) in rows.items():
        print(
            f"{mode:<8}{achieved:>11.0f}{cpu_us:>12.1f}{late:>13.1f}{dropped:>9}{spans:>9}"
            f"{lost:>11}{achieved / base_rate:>8.3f}{cpu_us / base_cpu:>11.3f}"
        )
    print("CPU us/req: this process's user+system CPU (event loop and export threads) per sent")
    print("request over the whole run (setup and shutdown flush included), median of the runs;")
    print("achieved/s also a median; ratios against 'off'.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

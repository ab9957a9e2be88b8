"""What one more `run --workers` process costs in memory: the figure behind the Jobs'
`limits.memory` advice in docs/cluster.md.

For each count of workers in `--workers` (1,2,3 by default), the real CLI sends `--rate` per
worker (so each process is as busy as in the others) for `--duration` seconds to a local nginx
(aiohttp.web when nginx is missing), and the resident memory of every process of its group is
sampled every 0.25 s. Printed for each count: the peak of the group's sum and each process's
own peak; then what each extra worker adds to the peak (the slope over the counts). With
`--otlp`, the run exports its telemetry (spans, metrics, logs) over OTLP/HTTP to a second local
server that answers 200 to everything, as the Jobs export to Alloy, so the exporters' queues
are in the figure.

Traffic goes to 127.0.0.1 only, every run is bounded by its duration (and killed 60 s after
it), and every child is stopped on the way out. Exit 0, or 2 on bad options.

    .venv/bin/python bench/worker_memory.py [--workers 1,2,3] [--rate 5000] [--duration 20]
        [--otlp] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _peers_support as sup  # noqa: E402 - the bench directory is put on the path just above
import peers  # noqa: E402

SAMPLE_S = 0.25


def process_rss_mb(pid: int) -> float:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * sup.PAGE_SIZE / 1024 / 1024


def one_run(
    target: sup.Target, otlp: str | None, workers: int, rate: float, duration: float
) -> tuple[float, list[float], int]:
    """Peak RSS of the group's sum, each process's peak (the parent first), requests sent."""
    ours = peers.Ours(sup.read_cli_options(), None, None)
    env = ours.env()
    if otlp is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp.rstrip("/")
        env["OTEL_SERVICE_NAME"] = "nimbus-scenarios-bench"
    total = rate * workers
    with tempfile.TemporaryDirectory(prefix="nimbus-memory-") as tmp:
        scenario, results = Path(tmp) / "memory.scn", Path(tmp) / "results.json"
        scenario.write_text(sup.one_phase_scenario(total, duration, "memory"))
        argv = ours.argv(scenario, target.url, results, total / workers, workers)
        process = sup.start(argv, frozenset(os.sched_getaffinity(0)), env=env)
        peaks: dict[int, float] = {}
        peak_sum = 0.0
        deadline = time.monotonic() + duration + 60
        try:
            while process.poll() is None and time.monotonic() < deadline:
                now = {pid: process_rss_mb(pid) for pid in sup.group_pids(process.pid)}
                peak_sum = max(peak_sum, sum(now.values()))
                for pid, mb in now.items():
                    peaks[pid] = max(peaks.get(pid, 0.0), mb)
                time.sleep(SAMPLE_S)
        finally:
            sup.stop(process)
        sent = 0
        if results.exists():
            sent = int(json.loads(results.read_text())["phases"][0]["sent"])
    own = [peaks[pid] for pid in sorted(peaks)]  # the parent has the lowest pid of its group
    return peak_sum, own, sent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", default="1,2,3", help="comma-separated counts")
    parser.add_argument("--rate", type=float, default=5000.0, help="req/s per worker")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--otlp", action="store_true", help="export telemetry to a local sink")
    parser.add_argument("--repeat", type=int, default=1, help="runs per count (max 5)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        counts = sorted({int(x) for x in args.workers.split(",") if x.strip()})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1 or counts[-1] > 8:
        print("worker_memory.py: --workers takes counts from 1 to 8", file=sys.stderr)
        return 2
    if not (0 < args.rate <= 20_000 and 0 < args.duration <= 300 and 1 <= args.repeat <= 5):
        print(
            "worker_memory.py: --rate in (0, 20000], --duration in (0, 300], --repeat 1-5",
            file=sys.stderr,
        )
        return 2
    lay = sup.layout()
    peaks: dict[int, list[float]] = {}
    with ExitStack() as stack:
        target = stack.enter_context(sup.target_server("auto", lay.server))
        otlp = None
        if args.otlp:
            otlp = stack.enter_context(sup.target_server("aiohttp", lay.server)).url
        print(f"machine: {sup.machine()}; target {target.name}; telemetry: {otlp or 'off'}")
        for _ in range(args.repeat):
            for workers in counts:
                peak, own, sent = one_run(target, otlp, workers, args.rate, args.duration)
                peaks.setdefault(workers, []).append(peak)
                each = ", ".join(f"{mb:.0f}" for mb in own)
                print(
                    f"--workers {workers}: {sent:,} sent; peak RSS of the group {peak:.0f} MB "
                    f"(each process's peak: {each} MB)",
                    flush=True,
                )
    if len(counts) > 1:
        low, high = counts[0], counts[-1]
        slopes = [(b - a) / (high - low) for a, b in zip(peaks[low], peaks[high], strict=True)]
        print(
            f"each extra worker adds {min(slopes):.0f}-{max(slopes):.0f} MB to the peak "
            f"(from --workers {low} to {high}, {len(slopes)} repeat(s))"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

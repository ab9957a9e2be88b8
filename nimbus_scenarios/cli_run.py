"""`nimbus-scenarios run`: load and compile the scenario, set up the target (or a local
fleet), run it, write the results and print the summary. Usage errors raise `UsageError`
(exit 2) before anything is sent."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import re
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from nimbus_scenarios import stops
from nimbus_scenarios.catalog import locate
from nimbus_scenarios.clock import parse_wall_time
from nimbus_scenarios.engine.loop import loop_choice, run_on_loop
from nimbus_scenarios.errors import ClusterError, UsageError
from nimbus_scenarios.events import RunHandler
from nimbus_scenarios.language.params import parse_overrides
from nimbus_scenarios.language.syntax import read_source
from nimbus_scenarios.language.validate import url_problem
from nimbus_scenarios.pipeline import plan_source
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.replicas import ReplicaSample, ReplicaSource
from nimbus_scenarios.report.console import format_summary, make_monitor
from nimbus_scenarios.results.io import default_results_path, to_json, write_results
from nimbus_scenarios.results.logwire import encode_lines
from nimbus_scenarios.results.model import RunResults, ShardInfo
from nimbus_scenarios.runner import RunOptions, run_scenario
from nimbus_scenarios.runner.options import flush_budget
from nimbus_scenarios.runner.start import FileStart, StartSource
from nimbus_scenarios.secrets import MASK, mask_url

if TYPE_CHECKING:
    from nimbus_scenarios.local.autoscaler import AutoscalerConfig
    from nimbus_scenarios.runner.pool import WorkerPool

__all__ = ["run_command"]

_V = TypeVar("_V")

MONITOR_INTERVAL_S = 10.0
TELEMETRY_FLUSH_S = 5.0
"""How long telemetry may take to export what it holds at the end (less if a stop's
shutdown budget has less left)."""


def run_command(args: argparse.Namespace, *, max_rate: float) -> int:
    """Run a scenario from parsed command-line arguments; return the exit code."""
    if not math.isfinite(args.grace) or args.grace < 0:
        raise UsageError(f"--grace must be a number of seconds, zero or more; got {args.grace:g}")
    loop = loop_choice()  # a bad NIMBUS_EVENT_LOOP is a usage error before anything is read
    source = read_source(locate(args.scenario))
    shard = _shard(args)
    workers = _workers(args)
    compiled = plan_source(
        source,
        parse_overrides(args.sets),
        max_rate=max_rate,
        watch_given=bool(args.deployment) or args.local,
        target_given=bool(args.url),
        # Every worker process is a shard: the limits per process divide by all of them.
        shards=shard.count * workers,
    )
    plan = compiled.plan
    # The warnings `validate` and `plan` print, before anything is sent: a run is where they matter.
    if warnings := compiled.rendered_warnings():
        print(warnings, file=sys.stderr)
    from nimbus_scenarios.plan.render import memory_refusal

    refusal = memory_refusal(plan, i_know=args.i_know)
    if refusal is not None:
        raise UsageError(refusal)
    url, secret_target = _target(plan, args)
    if plan_kills(plan) and not args.allow_chaos:
        raise UsageError(
            "this scenario deletes pods (`at T kill N pods`); pass --allow-chaos to allow it "
            "(the ServiceAccount also needs the opt-in chaos Role)"
        )
    if args.local and shard.count != 1:
        raise UsageError("--local runs one process; it cannot be sharded")
    if args.start_at_from is not None:
        start_source_arg(args.start_at_from)
        if not math.isfinite(args.start_wait) or args.start_wait <= 0:
            raise UsageError(
                f"--start-wait must be a number of seconds over 0; got {args.start_wait:g}"
            )
    # From here a stop signal is recorded, and the run (once it starts) stops at once: a run
    # that is stopped keeps, and writes, what it gathered.
    stops.hold()
    code, _ = run_on_loop(_run(plan, source.text, url, args, shard, secret_target, workers), loop)
    return code


def plan_kills(plan: Plan) -> bool:
    """Whether the scenario deletes pods."""
    return any(phase.kills for phase in plan.phases)


def needs_replicas(plan: Plan) -> bool:
    """Whether anything in the scenario reads replica counts (or kills pods)."""
    expectations = [e for p in plan.phases for e in p.expectations]
    expectations += [*plan.expectations, *plan.before, *plan.after]
    return (
        any(e.kind == "replicas" for e in expectations)
        or any(g.subject == "replicas" for g in plan.guards)
        or plan_kills(plan)
    )


def _workers(args: argparse.Namespace) -> int:
    """`--workers N|auto` as a number of processes (`auto` is 1 with --local: the local fleet
    shares this process)."""
    from nimbus_scenarios.runner.cpus import parse_workers

    text = str(args.workers)
    if args.local and text.strip().lower() == "auto":
        return 1
    workers = parse_workers(text)
    if args.local and workers > 1:
        raise UsageError("--local runs one process; it cannot have --workers")
    return workers


def _shard(args: argparse.Namespace) -> ShardInfo:
    if args.shard is not None:
        index, count = args.shard
        return ShardInfo(index, count)
    if args.shards is None:
        return ShardInfo(0, 1)
    if args.shards < 1:
        raise UsageError("--shards must be at least 1")
    index = os.environ.get("JOB_COMPLETION_INDEX")
    if index is None or not index.isdigit() or int(index) >= args.shards:
        raise UsageError(
            f"--shards {args.shards} needs JOB_COMPLETION_INDEX (0..{args.shards - 1}), as an "
            "Indexed Job sets it; or give --shard I/N"
        )
    return ShardInfo(int(index), args.shards)


def parse_start_at(text: str) -> float:
    """`--start-at`: Unix seconds or an ISO 8601 time (with a zone, or UTC)."""
    try:
        return parse_wall_time(text)
    except ValueError as exc:
        raise UsageError(f"--start-at: {exc}") from None


SHARD_START_DELAY_S = 30.0
"""A sharded Job's phases start this long after the Job was created: time for every pod to
pull the image and start."""


def start_source_arg(text: str) -> tuple[str, str]:
    """`--start-at-from`: (`configmap`, NAME) or (`file`, PATH)."""
    kind, _, name = text.partition("/")
    if kind not in ("configmap", "file") or not name:
        raise UsageError(f"--start-at-from: expected configmap/NAME or file/PATH, got {text!r}")
    if kind == "configmap" and not _DNS_NAME.fullmatch(name):
        raise UsageError(f"--start-at-from: {name!r} is not a ConfigMap name")
    return kind, name


_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _start_source(args: argparse.Namespace) -> StartSource | None:
    """Where to read the common start from (`--start-at-from`), checked before anything runs."""
    if args.start_at_from is None:
        return None
    kind, name = start_source_arg(args.start_at_from)
    if kind == "file":
        return FileStart(Path(name))
    from nimbus_scenarios.kube.api import KubeConfig
    from nimbus_scenarios.kube.start import ConfigMapStart

    try:
        config = KubeConfig.load(args.kubeconfig, args.context)
    except ClusterError as exc:
        raise ClusterError(f"--start-at-from {args.start_at_from}: {exc}") from None
    return ConfigMapStart(config.api_client(), args.namespace or config.namespace, name)


def _start_at(args: argparse.Namespace, shard: ShardInfo) -> float | None:
    if args.start_at is not None:
        return parse_start_at(args.start_at)
    if shard.count == 1 or args.start_at_from is not None:
        return None
    job = os.environ.get("JOB_NAME")
    if not job:
        raise UsageError(
            "a sharded run needs a common start: --start-at TIME, or JOB_NAME (the Indexed "
            "Job's name, from the downward API) so the Job's creation time can be read"
        )
    from nimbus_scenarios.kube.api import KubeConfig, job_created_at

    try:
        config = KubeConfig.load(args.kubeconfig, args.context)
        namespace = args.namespace or config.namespace
        with config.api_client() as api:
            return job_created_at(api, namespace, job) + SHARD_START_DELAY_S
    except ClusterError as exc:
        raise UsageError(f"cannot find the shards' common start: {exc}; give --start-at") from None


def _target(plan: Plan, args: argparse.Namespace) -> tuple[str | None, bool]:
    """The target URL (None with --local) and whether it is secret (it came from `env(...)`)."""
    if args.local:
        return None, False
    url: str | None = args.url
    what = "--url"
    secret = False
    if url is None and plan.target is not None:
        if plan.target.env is not None:
            url = os.environ.get(plan.target.env)
            if url is None:
                raise UsageError(
                    f"environment variable `{plan.target.env}` (the target) is not set"
                )
            what = f'the target (env("{plan.target.env}"))'
            secret = True
        else:
            url = plan.target.value
            what = "`target`"
    if url is None:
        raise UsageError('no target: give `target "URL"` in the scenario or --url')
    problem = url_problem(url)
    if problem is not None:
        raise UsageError(f"{what} {problem}; got {MASK if secret else repr(url)}")
    return url, secret


LOCAL_CPU_SCALE = 0.05
"""Share of each stress request's CPU seconds the local fleet really spins (see docs)."""


async def _run(
    plan: Plan,
    text: str,
    url: str | None,
    args: argparse.Namespace,
    shard: ShardInfo,
    secret_target: bool = False,
    workers: int = 1,
) -> int:
    from nimbus_scenarios.telemetry import Telemetry, configure_logging, explore_link
    from nimbus_scenarios.telemetry.links import explore_target

    # Checked before anything starts: a bad uid or org is a usage error, not a lost link.
    explore = explore_target(os.environ, tempo_uid=args.grafana_tempo_uid, org=args.grafana_org)
    configure_logging()
    handlers: list[RunHandler] = []
    if args.monitor:
        handlers.append(make_monitor())
    start_at = _start_at(args, shard)
    start_source = _start_source(args)
    fleet = None
    source: ReplicaSource | None = None
    if url is None:
        from nimbus_scenarios.local.autoscaler import AutoscalerConfig
        from nimbus_scenarios.local.fleet import Fleet
        from nimbus_scenarios.local.source import LocalReplicaSource

        base = AutoscalerConfig.quick() if args.autoscaler == "quick" else AutoscalerConfig()
        config = _autoscaler_config(base, args)
        fleet = Fleet(config, cpu_scale=LOCAL_CPU_SCALE)
        url = await fleet.start()
        source = LocalReplicaSource(fleet)
        print(source.description, file=sys.stderr)
    elif shard.index == 0 and (needs_replicas(plan) or args.deployment):
        source = _cluster_source(plan, args)
    shown = MASK if secret_target else mask_url(url)
    telemetry = Telemetry.start(
        plan,
        # A target from env() is a secret: its spans carry no URL at all.
        url=None if secret_target else mask_url(url),
        run_id=uuid.uuid4().hex[:12],
        otlp_endpoint=args.otlp_endpoint,
        environ=os.environ,
    )

    def checkpoint(results: RunResults) -> None:
        """Write the results before cleanup: a kill during cleanup then leaves them on disk."""
        _write(results, _results_path(args, results), fallback=False)

    shutdown_left: float | None = None
    crew: WorkerPool | None = None
    try:
        options = RunOptions(
            url=url,
            transport=args.transport,
            consumer_cleanup=args.cleanup,
            grace_s=args.grace,
            max_duration_s=args.max_duration,
            progress_interval_s=MONITOR_INTERVAL_S,
            shard=shard,
            start_at=start_at,
            start_wait_s=args.start_wait,
            target_shown=shown,
            grafana_url=args.grafana_url,
            grafana_tempo_uid=explore.datasource_uid,
            grafana_org=explore.org_id,
        )
        if workers > 1:
            from nimbus_scenarios.runner.pool import WorkerPool, worker_jobs

            # The workers' request spans join this run's trace (None: tracing is off).
            trace = telemetry.for_workers(options.run_id)
            options, jobs = worker_jobs(plan, options, text, workers, trace)
            crew = WorkerPool(jobs)
            print(f"workers: {workers} processes on this machine", file=sys.stderr)
        outcome = await run_scenario(
            plan,
            options,
            crew=crew,
            source=source,
            handlers=handlers,
            scenario_text=text,
            telemetry=telemetry,
            checkpoint=checkpoint,
            start_source=start_source,
        )
        shutdown_left = outcome.shutdown_left_s
        written = _write(
            outcome.results, _results_path(args, outcome.results), printed=args.print_results
        )
    finally:
        # A stopped run flushes its telemetry within what is left of its shutdown budget.
        flush_s = flush_budget(TELEMETRY_FLUSH_S, shutdown_left)
        # with the workers' span exports, flushed before they reported
        exports = crew.telemetry if crew is not None else []
        counters = await asyncio.to_thread(telemetry.shutdown, flush_s, exports)
        if start_source is not None:
            start_source.close()
        if fleet is not None:
            await fleet.stop()
    results = dataclasses.replace(outcome.results, telemetry=counters)
    if written is not None:
        written = _write(results, written, printed=args.print_results)
    if args.print_results:
        _print_results(results, written)
    if args.html or args.junit:
        from nimbus_scenarios.report.files import write_reports

        html = Path(args.html) if args.html else None
        junit = Path(args.junit) if args.junit else None
        try:
            write_reports(results, html, junit)
        except OSError as exc:
            print(f"nimbus-scenarios: cannot write a report: {exc}", file=sys.stderr)
    print(format_summary(results, str(written) if written else None), file=sys.stderr)
    if args.grafana_url and results.trace_id:
        link = explore_link(args.grafana_url, results.trace_id, explore)
        print(f"trace: {link}", file=sys.stderr)
    return outcome.exit_code


def _results_path(args: argparse.Namespace, results: RunResults) -> Path:
    return Path(args.results) if args.results else default_results_path(results)


class _UnavailableSource:
    """A replica source that could not even be configured: pre-flight reports it (exit 4)."""

    def __init__(self, description: str, error: str) -> None:
        self.description = description
        self.error = error
        self.samples: list[ReplicaSample] = []
        self.lost_at: float | None = None
        self.fresh_until: float | None = None
        self.stale_after_s = 0.0
        self.autoscaler: str | None = None

    async def start(self) -> None:
        raise RuntimeError(self.error)

    async def stop(self) -> None:
        return None

    async def kill_pods(self, count: int) -> list[str]:
        raise RuntimeError(self.error)


def _cluster_source(plan: Plan, args: argparse.Namespace) -> ReplicaSource:
    """The Deployment watch for this run; configuration problems surface at pre-flight."""
    deployment = args.deployment or plan.deployment
    if deployment is None:
        raise UsageError('replica expectations need `watch deployment "NAME"` or --deployment')
    from nimbus_scenarios.kube.api import KubeConfig
    from nimbus_scenarios.kube.replicas import ClusterReplicaSource

    try:
        config = KubeConfig.load(args.kubeconfig, args.context)
    except ClusterError as exc:
        where = f"deployment {args.namespace or plan.namespace or '?'}/{deployment}"
        return _UnavailableSource(where, f"no Kubernetes API configuration: {exc}")
    namespace = args.namespace or plan.namespace or config.namespace
    print(
        f"replica source: deployment {namespace}/{deployment} via {config.origin}",
        file=sys.stderr,
    )
    return ClusterReplicaSource(
        deployment,
        namespace,
        config.api_client(),
        kills=plan_kills(plan),
        service_account=config.service_account,
        pods_required=plan.needs_pods,
    )


def _write(
    results: RunResults, path: Path, *, fallback: bool = True, printed: bool = False
) -> Path | None:
    """Write the results; on failure say why and print them to stdout instead (unless this is
    an early write that the final one will repeat, or `--print-results` prints them anyway)."""
    try:
        return write_results(results, path)
    except OSError as exc:
        if not fallback:
            return None
        reason = exc.strerror or str(exc)
        if printed:
            print(
                f"nimbus-scenarios: cannot write results to {path}: {reason}; "
                "they are printed to stdout (--print-results)",
                file=sys.stderr,
            )
            return None
        print(
            f"nimbus-scenarios: cannot write results to {path}: {reason}; "
            "printing them to stdout instead",
            file=sys.stderr,
        )
        sys.stdout.write(to_json(results, indent=None) + "\n")
        sys.stdout.flush()
        return None


def _print_results(results: RunResults, written: Path | None) -> None:
    """`--print-results`: the document as chunked log lines (`results.logwire`) on stdout, for
    `submit` and `merge` to find in the pod's log; a closed stdout is said on stderr."""
    sys.stdout.write("".join(f"{line}\n" for line in encode_lines(results)))
    sys.stdout.flush()
    if getattr(sys.stdout, "broken", False):
        where = f"; they are in {written}" if written is not None else ""
        print(
            f"nimbus-scenarios: stdout is closed, the results were not printed{where}",
            file=sys.stderr,
        )


def _autoscaler_config(base: AutoscalerConfig, args: argparse.Namespace) -> AutoscalerConfig:
    """The local autoscaler's settings: a preset with the command line's overrides."""

    def given(value: _V | None, default: _V) -> _V:
        return default if value is None else value

    try:
        return dataclasses.replace(
            base,
            max_replicas=args.replicas_max,
            min_replicas=given(args.replicas_min, base.min_replicas),
            poll_interval_s=given(args.poll_interval, base.poll_interval_s),
            scale_down_stabilization_s=given(args.stabilization, base.scale_down_stabilization_s),
            readiness_delay_s=given(args.readiness_delay, base.readiness_delay_s),
        )
    except ValueError as exc:
        raise UsageError(f"local autoscaler: {exc}") from None

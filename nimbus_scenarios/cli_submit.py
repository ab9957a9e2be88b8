"""`nimbus-scenarios submit`: plan locally, then run the scenario as a Job in the cluster, follow
it, and judge the whole run here.

Everything that can be checked without the cluster is checked first (the scenario, `--set`,
the target, the shards, the Job's names and labels): a usage error exits 2 before any call is
made. Then `submit.session` does the cluster's part; this module writes the results and
reports and prints the summary, as `run` does.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from nimbus_scenarios import stops
from nimbus_scenarios.catalog import locate
from nimbus_scenarios.cli_results import write_reports, writing
from nimbus_scenarios.cli_run import plan_kills
from nimbus_scenarios.errors import UsageError
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.kube.jobs import (
    WORKERS_AUTO,
    JobSpec,
    active_deadline_s,
    job_manifest,
    scenario_configmap,
)
from nimbus_scenarios.language.params import parse_overrides
from nimbus_scenarios.language.syntax import read_source
from nimbus_scenarios.language.validate import url_problem
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.plan.render import memory_refusal
from nimbus_scenarios.report.console import format_summary
from nimbus_scenarios.results.io import default_results_path, write_results

if TYPE_CHECKING:
    from nimbus_scenarios.submit.session import NewRun, Outcome, Session

__all__ = ["DEFAULT_IMAGE", "job_name", "run_args", "submit_command"]

DEFAULT_IMAGE = "nimbusguard-generator:latest"
"""The image the shipped manifests run (an overlay's `images:` renames it)."""
MAX_SHARDS = 100
_SLUG = re.compile(r"[^a-z0-9]+")


def submit_command(args: argparse.Namespace, *, max_rate: float) -> int:
    """`submit FILE|NAME` or `submit --attach RUN_ID`; the run's exit code."""
    if args.attach is not None:
        if args.scenario is not None:
            raise UsageError("give a scenario to submit, or --attach RUN_ID, not both")
        if not re.fullmatch(r"[a-z0-9]{1,32}", args.attach):
            raise UsageError(f"--attach: not a run id: {args.attach!r}")
        return _attach(args)
    if args.scenario is None:
        raise UsageError("give a scenario FILE or NAME to submit (or --attach RUN_ID)")
    return _submit(args, max_rate)


def _plan(args: argparse.Namespace, max_rate: float) -> tuple[Path, str, Plan]:
    """The scenario's file, text and plan, checked as `run` would check them."""
    if not 1 <= args.shards <= MAX_SHARDS:
        raise UsageError(f"--shards must be 1 to {MAX_SHARDS}; got {args.shards}")
    path = locate(args.scenario)
    source = read_source(path)
    plan = compile_source(source, parse_overrides(args.sets), max_rate=max_rate, shards=args.shards)
    refusal = memory_refusal(plan)
    if refusal is not None:
        raise UsageError(refusal)
    if plan_kills(plan):
        raise UsageError(
            "this scenario deletes pods (`at T kill N pods`); submit does not run it: use the "
            "load-generator-chaos component and `kubectl create job` (docs/cluster.md)"
        )
    return path, source.text, plan


def _target(plan: Plan, url: str | None) -> str:
    """The target the pods will use, checked here."""
    if url is None and plan.target is not None and plan.target.env is not None:
        raise UsageError(
            f'the target comes from env("{plan.target.env}"), which the Job\'s pods do not '
            "have; give --url"
        )
    chosen = url if url is not None else (plan.target.value if plan.target else None)
    if chosen is None:
        raise UsageError('no target: give `target "URL"` in the scenario or --url')
    problem = url_problem(chosen)
    if problem is not None:
        raise UsageError(f"{'--url' if url else '`target`'} {problem}; got {chosen!r}")
    return chosen


def _slug(text: str, limit: int) -> str:
    slug = _SLUG.sub("-", text.lower()).strip("-")[:limit].strip("-")
    return slug or "scenario"


def job_name(scenario: str, run_id: str) -> str:
    """`nimbus-<scenario>-<run id>`: short enough for an Indexed Job's pod host names."""
    return f"nimbus-{_slug(scenario, 24)}-{run_id}"


def run_args(
    file_name: str,
    *,
    url: str | None,
    sets: list[str],
    shards: int,
    max_rate: float | None,
    start_configmap: str | None,
) -> tuple[str, ...]:
    """The pod's `run` command: the mounted scenario, results printed to the log, status lines,
    and a sharded run's shards and common start."""
    args = ["run", f"/scenarios/{file_name}", "--print-results", "--monitor", WORKERS_AUTO]
    if url is not None:
        args += ["--url", url]
    for item in sets:
        args += ["--set", item]
    if max_rate is not None:
        args += ["--max-rate", f"{max_rate:g}"]
    if shards > 1:
        args += ["--shards", str(shards)]
        if start_configmap is not None:
            args += ["--start-at-from", f"configmap/{start_configmap}"]
    return tuple(args)


def _wait_url(url: str) -> str | None:
    """The init container waits for the reference consumer's health; other targets are checked
    by the runner's own pre-flight."""
    parts = urlsplit(url)
    if parts.hostname != "consumer":
        return None
    return f"{parts.scheme}://{parts.netloc}/health"


def _submit(args: argparse.Namespace, max_rate: float) -> int:
    from nimbus_scenarios.kube.runs import configmap_body
    from nimbus_scenarios.submit.session import NewRun, RunRef, start_configmap_name

    path, text, plan = _plan(args, max_rate)
    target = _target(plan, args.url)
    run_id = uuid.uuid4().hex[:10]
    # The namespace given, else the scenario's (`watch ... in namespace`), else the context's.
    namespace = args.namespace or plan.namespace
    start = start_configmap_name(run_id) if args.shards > 1 else None
    file_name = path.name if re.fullmatch(r"[-._a-zA-Z0-9]+", path.name) else "scenario.scn"

    def build(namespace: str) -> NewRun:
        scenario_map = scenario_configmap(namespace, file_name, text)
        spec = JobSpec(
            name=job_name(plan.scenario, run_id),
            namespace=namespace,
            image=args.image or DEFAULT_IMAGE,
            run_args=run_args(
                file_name,
                url=args.url,
                sets=args.sets,
                shards=args.shards,
                max_rate=args.max_rate,
                start_configmap=start,
            ),
            run_id=run_id,
            scenario=_slug(plan.scenario, 63),
            active_deadline_s=active_deadline_s(plan),
            shards=args.shards,
            scenario_configmap=scenario_map["metadata"]["name"],
            wait_url=_wait_url(target),
        )
        ref = RunRef(run_id, spec.name, namespace, args.shards, start, spec.active_deadline_s)
        labels = dict(spec.labels())
        start_map = configmap_body(namespace, start, labels) if start else None
        return NewRun(ref, scenario_map, job_manifest(spec), start_map)

    build(namespace or "default")  # every name and label checked before the cluster is asked
    with _session(args, namespace) as (session, config_namespace):
        new = build(namespace or config_namespace)
        stops.hold()
        outcome = session.submit(new, detach=args.detach)
    if args.detach and outcome.exit_code == ExitCode.OK:
        print(run_id)
        return ExitCode.OK
    return _finish(outcome, args)


def _attach(args: argparse.Namespace) -> int:
    with _session(args, args.namespace) as (session, config_namespace):
        stops.hold()
        outcome = session.attach(
            args.attach, args.namespace or config_namespace, leave_on_stop=args.detach
        )
    return _finish(outcome, args)


@contextlib.contextmanager
def _session(args: argparse.Namespace, namespace: str | None) -> Iterator[tuple[Session, str]]:
    """A `Session` on the cluster's configuration, and the namespace that configuration names;
    the client is closed afterwards."""
    from nimbus_scenarios.kube.api import KubeConfig
    from nimbus_scenarios.kube.runs import RunCluster
    from nimbus_scenarios.submit.logs import Printer
    from nimbus_scenarios.submit.session import Session

    config = KubeConfig.load(args.kubeconfig, args.context)
    namespace = namespace or config.namespace
    api = config.api_client()
    print(f"cluster: {config.origin}, namespace {namespace}", file=sys.stderr)
    try:
        stopped = lambda: bool(stops.received())  # noqa: E731
        session = Session(
            RunCluster(api, namespace), Printer(sys.stderr), stopped, verbose=args.verbose
        )
        yield session, config.namespace
    finally:
        api.close()  # type: ignore[no-untyped-call]  # the client's close() is unannotated


def _finish(outcome: Outcome, args: argparse.Namespace) -> int:
    if outcome.collected is None:
        return outcome.exit_code
    results = outcome.collected.results
    path = Path(args.results) if args.results else default_results_path(results)
    written = writing(write_results, results, path)
    write_reports(results, args)
    print(format_summary(results, str(written)), file=sys.stderr)
    return results.exit_code

"""The command line: argument parsing, the seed's `--test` form and exit codes; no logic of its own.

Imports are lazy so that `validate` and `plan` start fast (no httpx, kubernetes or OpenTelemetry).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import NoReturn

from nimbus_scenarios.engine.factory import DEFAULT_TRANSPORT, TRANSPORT_KINDS
from nimbus_scenarios.exit_codes import ExitCode

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on exit code 2 and no traceback (argparse's own default too)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used by tests that check Job manifests' args)."""
    parser = _Parser(
        prog="nimbus-scenarios",
        description="Play autoscaling scenarios against a service and judge the outcome.",
    )
    from nimbus_scenarios import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    validate = commands.add_parser("validate", help="check scenario files; print every problem")
    validate.add_argument("files", nargs="+", metavar="FILE")
    _add_sets(validate)

    plan = commands.add_parser("plan", help="print the compiled timeline of a scenario")
    plan.add_argument("scenario", metavar="FILE|NAME")
    _add_sets(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")

    commands.add_parser("list", help="list the built-in scenarios")

    submit = commands.add_parser(
        "submit", help="run a scenario as a Job in the cluster, follow it and judge it"
    )
    _add_submit_options(submit)

    run = commands.add_parser("run", help="play a scenario against a service and judge it")
    run.add_argument("scenario", metavar="FILE|NAME")
    _add_run_options(run)

    merge = commands.add_parser("merge", help="merge shard results into one and judge it")
    merge.add_argument("results", nargs="+", metavar="RESULTS")
    merge.add_argument("-o", "--output", required=True, metavar="PATH", help="merged results file")
    merge.add_argument(
        "--allow-partial",
        action="store_true",
        help="judge the shards given even if some are missing: never passed, at best "
        "`partial` (exit 4)",
    )
    _add_report_options(merge)

    report = commands.add_parser("report", help="write HTML and JUnit reports of a results file")
    report.add_argument("results", metavar="RESULTS")
    _add_report_options(report)

    fmt = commands.add_parser("fmt", help="print a scenario file in canonical form")
    fmt.add_argument("files", nargs="+", metavar="FILE")
    fmt.add_argument("--check", action="store_true", help="exit 1 if a file is not formatted")
    fmt.add_argument("--write", "-w", action="store_true", help="rewrite the files in place")

    wait = commands.add_parser("wait", help="poll a URL until it answers 2xx (init containers)")
    wait.add_argument("url", metavar="URL")
    wait.add_argument(
        "--timeout", type=_duration_arg, default=None, metavar="D", help="give up after D (5m)"
    )
    wait.add_argument(
        "--interval", type=_duration_arg, default=None, metavar="D", help="poll every D (2s)"
    )
    return parser


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--html", metavar="PATH", help="write a self-contained HTML report")
    parser.add_argument("--junit", metavar="PATH", help="write a JUnit XML report")


def _shard_arg(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, e.g. 0/4; got {text!r}")
    return i, n


def _add_run_options(run: argparse.ArgumentParser) -> None:
    _add_sets(run)
    _add_report_options(run)
    _add_url(run)
    run.add_argument(
        "--monitor", action="store_true", help="show live progress (a status line every 10 s)"
    )
    run.add_argument(
        "--cleanup",
        action="store_true",
        help="also send the consumer's DELETE /process/cleanup at the end",
    )
    _add_results(run)
    run.add_argument(
        "--print-results",
        action="store_true",
        help="also print the results document to stdout, as gzip + base64 lines under 12 kB "
        "(`nimbus-results v1 ...`), for `merge` to read from `kubectl logs`",
    )
    run.add_argument(
        "--local",
        action="store_true",
        help="start a local reference consumer on loopback and run against it",
    )
    run.add_argument(
        "--transport",
        choices=TRANSPORT_KINDS,
        default=DEFAULT_TRANSPORT,
        help=f"HTTP client for the load (default {DEFAULT_TRANSPORT}, the fastest measured)",
    )
    run.add_argument(
        "--i-know",
        action="store_true",
        help="run a plan whose stress memory in flight is above the ceiling (64 GiB)",
    )
    run.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="after a stop, the time left for requests in flight, cleanup and the telemetry "
        "flush together (default 10; keep it under the pod's terminationGracePeriodSeconds)",
    )
    run.add_argument(
        "--max-duration",
        type=_duration_arg,
        default=None,
        metavar="D",
        help="abort the run after this long (e.g. 15m), exit 3 with results kept",
    )
    kube = run.add_argument_group("replica source (Kubernetes)")
    kube.add_argument("--deployment", help="the Deployment to watch (overrides `watch`)")
    _add_cluster_access(kube, "its namespace (default: in-cluster, else `default`)")
    kube.add_argument(
        "--allow-chaos",
        action="store_true",
        help="allow `at T kill N pods` to delete pods (needs the opt-in chaos Role)",
    )
    local = run.add_argument_group("local fleet (--local)")
    local.add_argument(
        "--replicas-min", type=int, default=None, metavar="N", help="fewest replicas (default 1)"
    )
    local.add_argument(
        "--replicas-max", type=int, default=5, metavar="N", help="most replicas (default 5)"
    )
    local.add_argument(
        "--poll-interval",
        type=_duration_arg,
        default=None,
        metavar="D",
        help="how often the autoscaler reads metrics and decides (quick 5s, keda 15s)",
    )
    local.add_argument(
        "--stabilization",
        type=_duration_arg,
        default=None,
        metavar="D",
        help="scale-down stabilization window (quick 30s, keda 5m)",
    )
    local.add_argument(
        "--readiness-delay",
        type=_duration_arg,
        default=None,
        metavar="D",
        help="how long a new replica takes to become ready (quick 2s, keda 5s)",
    )
    local.add_argument(
        "--autoscaler",
        choices=("quick", "keda"),
        default="quick",
        help="autoscaler timings: quick (demo: 5 s polls, 30 s stabilization) or keda "
        "(KEDA/HPA defaults: 15 s polls, 5 min stabilization)",
    )
    telemetry = run.add_argument_group("telemetry")
    telemetry.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="OTLP endpoint (default OTEL_EXPORTER_OTLP_ENDPOINT; none: no export)",
    )
    telemetry.add_argument(
        "--grafana-url", metavar="URL", help="print a Grafana Explore link to the run's trace"
    )
    telemetry.add_argument(
        "--grafana-tempo-uid",
        metavar="UID",
        help="the Tempo datasource uid the Explore link opens (default NIMBUS_GRAFANA_TEMPO_UID, "
        "else tempo)",
    )
    telemetry.add_argument(
        "--grafana-org",
        metavar="ID",
        help="the Grafana organisation id of the Explore link (default NIMBUS_GRAFANA_ORG, else 1)",
    )
    run.add_argument(
        "--workers",
        default="1",
        metavar="N|auto",
        help="send the load from N processes on this machine, one results document (auto: "
        "the cgroup's CPU quota, else the CPUs this process may use; default 1)",
    )
    shards = run.add_argument_group("sharding (Indexed Jobs)")
    shards.add_argument(
        "--shard", type=_shard_arg, metavar="I/N", help="run shard I of N (0-based)"
    )
    shards.add_argument(
        "--shards",
        type=int,
        metavar="N",
        help="run as one of N shards; the index comes from JOB_COMPLETION_INDEX",
    )
    start = shards.add_mutually_exclusive_group()
    start.add_argument(
        "--start-at",
        metavar="TIME",
        help="wall-clock start of the first phase (ISO 8601 or Unix seconds) shared by shards; "
        "a shard that starts later drops what was due before it started (late start)",
    )
    start.add_argument(
        "--start-at-from",
        metavar="configmap/NAME",
        help="wait after pre-flight until ConfigMap NAME (in --namespace) holds the common start "
        "in data['start-at'] (as `submit` writes it once every shard runs); file/PATH reads a "
        "local file instead. Needs `get configmaps`",
    )
    shards.add_argument(
        "--start-wait",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long --start-at-from waits for the start before exit 4 (default 600)",
    )


def _add_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the service's base URL (overrides the scenario's `target`)")


def _add_results(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results", metavar="PATH", help="results file (default results/<scenario>-<run id>.json)"
    )


def _add_cluster_access(group: argparse._ActionsContainer, namespace_help: str) -> None:
    group.add_argument("--namespace", "-n", help=namespace_help)
    group.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file (default: in-cluster)")
    group.add_argument("--context", help="kubeconfig context")


def _add_submit_options(submit: argparse.ArgumentParser) -> None:
    submit.add_argument("scenario", nargs="?", metavar="FILE|NAME")
    _add_sets(submit)
    _add_report_options(submit)
    _add_url(submit)
    _add_results(submit)
    submit.add_argument(
        "--image", help="the load generator's image (default nimbusguard-generator:latest)"
    )
    submit.add_argument(
        "--shards", type=int, default=1, metavar="N", help="run N pods as an Indexed Job"
    )
    submit.add_argument(
        "--detach", action="store_true", help="create the Job, print its run id and leave it"
    )
    submit.add_argument(
        "--attach", metavar="RUN_ID", help="follow and collect a run submitted with --detach"
    )
    submit.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="echo the pods' JSON log events too, not only their status lines",
    )
    _add_cluster_access(submit, "where the Job runs (default: the context's, else `default`)")


def _duration_arg(text: str) -> float:
    from nimbus_scenarios.language.literals import parse_value
    from nimbus_scenarios.language.nodes import Kind, Literal

    value = parse_value(text)
    if isinstance(value, Literal) and value.kind is Kind.DURATION and value.exact > 0:
        return value.number
    raise argparse.ArgumentTypeError(f"expected a duration such as 90s or 15m, got {text!r}")


def _add_sets(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        dest="sets",
        help="override a param (repeatable), e.g. --set peak=80/s",
    )
    parser.add_argument(
        "--max-rate",
        type=float,
        default=None,
        metavar="R",
        help="the highest rate per process, in requests per second (default 20000, at most "
        "1000000: shard the run or add --workers for more)",
    )


_COMMANDS = ("validate", "plan", "list", "fmt", "run", "submit", "merge", "report", "wait")


def seed_form(argv: list[str]) -> list[str]:
    """The seed generator's form `--url=U --test=heavy --monitor --cleanup` as `run heavy ...`.

    An unknown `--test` name is a usage error listing the built-in names.
    """
    if not argv or argv[0] in _COMMANDS or not any(a.split("=")[0] == "--test" for a in argv):
        return argv
    rest: list[str] = []
    test: str | None = None
    items = iter(argv)
    for item in items:
        if item == "--test":
            test = next(items, "")
        elif item.startswith("--test="):
            test = item.split("=", 1)[1]
        else:
            rest.append(item)
    from nimbus_scenarios.catalog import builtin_names

    names = builtin_names()
    if test not in names:
        from nimbus_scenarios.errors import UsageError

        raise UsageError(
            f"--test: unknown test type {test!r}; built-in scenarios: {', '.join(names)}"
        )
    return ["run", str(test), *rest]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code.

    Every error the tool raises on purpose is a `NimbusError` carrying its exit code, mapped
    here and only here: a scenario's diagnostics print as they are, other errors as one line
    naming the command. Anything else is a crash: one line, the traceback in a log file, and
    exit 4, never 1 (which means an expectation failed). A stop signal may come at any moment,
    even while the modules a command needs are still being imported.
    """
    from nimbus_scenarios.stops import Stopped

    arguments = list(sys.argv[1:] if argv is None else argv)
    command = "nimbus-scenarios"
    if arguments and arguments[0] in _COMMANDS:
        command = f"nimbus-scenarios {arguments[0]}"
    try:
        return _main(arguments, command)
    except Stopped as exc:
        print(f"{command}: stopped: {exc}", file=sys.stderr)
        return exc.exit_code


def _main(arguments: list[str], command: str) -> int:
    from nimbus_scenarios.errors import NimbusError
    from nimbus_scenarios.language.errors import ScenarioError

    try:
        args = build_parser().parse_args(seed_form(arguments))
        return _dispatch(args)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    except NimbusError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{command}: stopped (SIGINT)", file=sys.stderr)
        return ExitCode.ABORTED
    except Exception as exc:
        log = _crash_log(exc)
        where = f"; the traceback is in {log}" if log else ""
        print(f"{command}: internal error: {type(exc).__name__}: {exc}{where}", file=sys.stderr)
        return ExitCode.INFRASTRUCTURE


def _crash_log(exc: BaseException) -> str | None:
    """Write the traceback of a crash to a file of its own; its path, or None if impossible."""
    import tempfile
    import traceback

    try:
        with tempfile.NamedTemporaryFile(
            "w", prefix="nimbus-scenarios-crash-", suffix=".log", delete=False
        ) as log:
            log.write("".join(traceback.format_exception(exc)))
            return log.name
    except OSError:
        return None


def _dispatch(args: argparse.Namespace) -> int:
    match args.command:
        case "validate":
            from nimbus_scenarios.cli_language import validate_command

            return validate_command(args, max_rate=max_rate(args))
        case "plan":
            from nimbus_scenarios.cli_language import plan_command

            return plan_command(args, max_rate=max_rate(args))
        case "list":
            from nimbus_scenarios.cli_language import list_command

            return list_command()
        case "fmt":
            from nimbus_scenarios.cli_language import fmt_command

            return fmt_command(args)
        case "run":
            from nimbus_scenarios.cli_run import run_command

            return run_command(args, max_rate=max_rate(args))
        case "submit":
            from nimbus_scenarios.cli_submit import submit_command

            return submit_command(args, max_rate=max_rate(args))
        case "merge":
            from nimbus_scenarios.cli_results import merge_command

            return merge_command(args)
        case "report":
            from nimbus_scenarios.cli_results import report_command

            return report_command(args)
        case "wait":
            from nimbus_scenarios.wait import wait_command

            return wait_command(args)
        case _:
            build_parser().print_help(sys.stderr)
            return ExitCode.USAGE


def max_rate(args: argparse.Namespace) -> float:
    """`--max-rate`, or the default; nan, inf, values at or below zero and values above
    `MAX_RATE_CEILING` are refused."""
    from nimbus_scenarios.errors import UsageError
    from nimbus_scenarios.language.vocabulary import DEFAULT_MAX_RATE, MAX_RATE_CEILING

    value: float | None = args.max_rate
    if value is None:
        return DEFAULT_MAX_RATE
    # `nan` and `inf` parse as floats but would switch the cap off (every comparison with nan
    # is false): refuse them like zero.
    if not math.isfinite(value) or value <= 0:
        raise UsageError("--max-rate must be above zero and finite")
    # A finite cap can be no cap at all (`1e308`): one process holds about 30,000/s.
    if value > MAX_RATE_CEILING:
        raise UsageError(
            f"--max-rate {value:g} is above the ceiling of {MAX_RATE_CEILING:,} requests/s "
            "per process; shard the run for more"
        )
    return value

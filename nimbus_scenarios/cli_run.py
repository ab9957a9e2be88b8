"""`nimbus-scenarios run`: load and compile the scenario, set up the target (or a local
consumer), run it, write the results and print the summary. Usage errors raise
`ScenarioError` (exit 2) before anything is sent."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from nimbus_scenarios.catalog import locate
from nimbus_scenarios.engine.dispatch import MissingEnvironment
from nimbus_scenarios.events import RunHandler
from nimbus_scenarios.language import compile_source
from nimbus_scenarios.language.errors import Diagnostic, ScenarioError, Source
from nimbus_scenarios.language.params import parse_overrides
from nimbus_scenarios.language.syntax import read_source
from nimbus_scenarios.language.validate import DEFAULT_MAX_RATE
from nimbus_scenarios.plan.timeline import Plan
from nimbus_scenarios.report.console import format_summary, make_monitor
from nimbus_scenarios.results import write_results
from nimbus_scenarios.runner import RunOptions, default_results_path, run_scenario

__all__ = ["run_command"]

MONITOR_INTERVAL_S = 10.0


def _fail(message: str) -> ScenarioError:
    return ScenarioError(Source("run", ""), [Diagnostic(message)])


def run_command(args: argparse.Namespace) -> int:
    """Run a scenario from parsed command-line arguments; return the exit code."""
    max_rate = DEFAULT_MAX_RATE if args.max_rate is None else args.max_rate
    if max_rate <= 0:
        raise _fail("--max-rate must be above zero")
    source = read_source(locate(args.scenario))
    plan = compile_source(source, parse_overrides(args.sets), max_rate=max_rate)
    url = _target(plan, args)
    try:
        return asyncio.run(_run(plan, source.text, url, args))
    except MissingEnvironment as exc:
        raise _fail(str(exc)) from None


def _target(plan: Plan, args: argparse.Namespace) -> str | None:
    if args.local:
        return None
    url: str | None = args.url
    if url is None and plan.target is not None:
        if plan.target.env is not None:
            url = os.environ.get(plan.target.env)
            if url is None:
                raise _fail(f"environment variable `{plan.target.env}` (the target) is not set")
        else:
            url = plan.target.value
    if url is None:
        raise _fail('no target: give `target "URL"` in the scenario or --url')
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise _fail(f"--url must be an http:// or https:// URL; got {url!r}")
    return url


async def _run(plan: Plan, text: str, url: str | None, args: argparse.Namespace) -> int:
    handlers: list[RunHandler] = []
    if args.monitor:
        handlers.append(make_monitor())
    consumer = None
    if url is None:
        from nimbus_scenarios.local.launch import start_consumer

        consumer = await start_consumer()
        url = consumer.url
        print(f"local reference consumer at {url}", file=sys.stderr)
    try:
        options = RunOptions(
            url=url,
            transport=args.transport,
            consumer_cleanup=args.cleanup,
            grace_s=args.grace,
            max_duration_s=args.max_duration,
            progress_interval_s=MONITOR_INTERVAL_S if args.monitor else None,
        )
        outcome = await run_scenario(plan, options, handlers=handlers, scenario_text=text)
    finally:
        if consumer is not None:
            await consumer.stop()
    path = Path(args.results) if args.results else default_results_path(outcome.document)
    written = _write(outcome.document, path)
    print(format_summary(outcome.document, str(written) if written else None), file=sys.stderr)
    return outcome.exit_code


def _write(document: dict[str, Any], path: Path) -> Path | None:
    """Write the results; on failure say why and print them to stdout instead."""
    try:
        return write_results(document, path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(
            f"nimbus-scenarios: cannot write results to {path}: {reason}; "
            "printing them to stdout instead",
            file=sys.stderr,
        )
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.write(json.dumps(document) + "\n")
            sys.stdout.flush()
        return None

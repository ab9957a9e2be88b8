"""The language commands: `validate`, `plan`, `list` and `fmt`. They import only the
language and plan stages, so that they start fast (no HTTP client, Kubernetes or telemetry)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nimbus_scenarios.exit_codes import ExitCode

__all__ = ["fmt_command", "list_command", "plan_command", "validate_command"]


def validate_command(args: argparse.Namespace, *, max_rate: float) -> int:
    """`validate FILE...`: every problem in every file; exit 2 if any file is invalid.

    A valid file is also compiled, so that the plan's own warnings (stress memory in flight,
    no target) are printed here as `plan` prints them."""
    from nimbus_scenarios.catalog import locate
    from nimbus_scenarios.language.errors import ScenarioError, render_all
    from nimbus_scenarios.language.params import parse_overrides
    from nimbus_scenarios.language.syntax import read_source
    from nimbus_scenarios.pipeline import check, compile_checked

    overrides = parse_overrides(args.sets)
    worst = ExitCode.OK
    for name in args.files:
        try:
            source = read_source(locate(name))
            checked = check(source, overrides, max_rate=max_rate)
        except ScenarioError as exc:
            print(exc, file=sys.stderr)
            worst = ExitCode.USAGE
            continue
        if checked.errors:
            print(render_all(source, checked.diagnostics), file=sys.stderr)
            worst = ExitCode.USAGE
            count = len(checked.errors)
            print(f"{source.name}: {count} error{'s' if count > 1 else ''}", file=sys.stderr)
            continue
        # In the order `plan` lists them: validation's in source order, then the plan's.
        warnings = compile_checked(checked, max_rate=max_rate).rendered_warnings()
        if warnings:
            print(warnings, file=sys.stderr)
        print(f"{source.name}: ok")
    return worst


def plan_command(args: argparse.Namespace, *, max_rate: float) -> int:
    """`plan FILE|NAME`: the compiled timeline as a table and chart, or as JSON, with every
    warning `validate` prints (one line each)."""
    from nimbus_scenarios.catalog import locate
    from nimbus_scenarios.language.params import parse_overrides
    from nimbus_scenarios.language.syntax import read_source
    from nimbus_scenarios.pipeline import plan_source
    from nimbus_scenarios.plan.render import plan_json, plan_table

    source = read_source(locate(args.scenario))
    compiled = plan_source(source, parse_overrides(args.sets), max_rate=max_rate)
    warnings = compiled.warning_texts
    if args.json:
        print(json.dumps(plan_json(compiled.plan, warnings), indent=2))
    else:
        print(plan_table(compiled.plan, warnings))
    return ExitCode.OK


def list_command() -> int:
    """`list`: the built-in scenarios with their planned durations."""
    from nimbus_scenarios.catalog import builtin_names, builtin_path
    from nimbus_scenarios.language.syntax import read_source
    from nimbus_scenarios.pipeline import compile_source
    from nimbus_scenarios.plan.render import clock_text

    rows = []
    for name in builtin_names():
        plan = compile_source(read_source(builtin_path(name)))
        rows.append((name, clock_text(plan.duration_s), plan.description))
    width = max((len(r[0]) for r in rows), default=4)
    for name, duration, description in rows:
        print(f"{name.ljust(width)}  {duration:>7}  {description}")
    return ExitCode.OK


def fmt_command(args: argparse.Namespace) -> int:
    """`fmt FILE...`: canonical formatting; `--check` exits 1 if a file would change."""
    from nimbus_scenarios.language.fmt import format_scenario
    from nimbus_scenarios.language.syntax import parse, read_source

    unformatted = []
    for name in args.files:
        source = read_source(name)
        text = format_scenario(parse(source), source)
        # Line endings are read as `\n`, so the text alone cannot show that CRLF needs rewriting.
        changed = text != source.text or source.foreign_newlines
        if args.check:
            if changed:
                unformatted.append(name)
                print(f"{name}: would reformat", file=sys.stderr)
        elif args.write:
            if changed:
                Path(name).write_text(text, encoding="utf-8")
                print(f"{name}: reformatted", file=sys.stderr)
        else:
            sys.stdout.write(text)
    return ExitCode.FAILED if unformatted else ExitCode.OK

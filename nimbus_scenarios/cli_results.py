"""`merge` and `report`, and the writing of results and reports that `submit` shares with them.

A write that fails is a results error (exit 2) naming the file, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.results.model import RunResults

__all__ = ["merge_command", "report_command", "write_reports", "writing"]

_T = TypeVar("_T")


def merge_command(args: argparse.Namespace) -> int:
    """`merge`: shard results (files or saved logs) into one document, judged; its exit code."""
    from nimbus_scenarios.merge import merge_results
    from nimbus_scenarios.report.console import format_summary
    from nimbus_scenarios.results.io import write_results
    from nimbus_scenarios.results.logwire import load_documents

    shards = []
    names: list[str] = []
    for path in args.results:
        documents = load_documents(Path(path))
        shards.extend(documents)
        names.extend(
            path if len(documents) == 1 else f"{path} (document {i + 1})"
            for i in range(len(documents))
        )
    merged = merge_results(shards, allow_partial=args.allow_partial, names=names)
    written = writing(write_results, merged, Path(args.output))
    write_reports(merged, args)
    print(format_summary(merged, str(written)), file=sys.stderr)
    return merged.exit_code


def report_command(args: argparse.Namespace) -> int:
    """`report`: HTML and/or JUnit reports of a results file."""
    from nimbus_scenarios.errors import UsageError
    from nimbus_scenarios.results.io import load_results

    if not args.html and not args.junit:
        raise UsageError("give --html PATH and/or --junit PATH")
    results = load_results(Path(args.results))
    for path in write_reports(results, args):
        print(f"wrote {path}", file=sys.stderr)
    return ExitCode.OK


def write_reports(results: RunResults, args: argparse.Namespace) -> list[Path]:
    """The `--html` and `--junit` reports asked for; the paths written."""
    from nimbus_scenarios.report.files import write_reports as write_files

    html = Path(args.html) if args.html else None
    junit = Path(args.junit) if args.junit else None
    if html is None and junit is None:
        return []
    return writing(write_files, results, html, junit)


def writing(write: Callable[..., _T], *args: object) -> _T:
    """Run a write; an OS error becomes a results error naming what could not be written."""
    from nimbus_scenarios.errors import ResultsError

    try:
        return write(*args)
    except OSError as exc:
        what = exc.filename or "a file"
        raise ResultsError(f"cannot write {what}: {exc.strerror or exc}") from None

"""The report files: `write_reports(results, html_path, junit_path)` renders the HTML and JUnit
reports asked for and writes each atomically (`results.io.write_atomic`: a temp file in the same
directory, fsync, rename; the mode `open()` would give).

Its place: the one module of `report` that writes; `html` and `junit` only render, and neither
imports the other. Everything asked for is rendered before anything is written, so a report
that fails to render leaves no file written or replaced.
"""

from __future__ import annotations

from pathlib import Path

from nimbus_scenarios.report.html import render_html
from nimbus_scenarios.report.junit import render_junit
from nimbus_scenarios.results.io import write_atomic
from nimbus_scenarios.results.model import RunResults

__all__ = ["write_reports"]


def write_reports(
    results: RunResults, html_path: Path | None, junit_path: Path | None
) -> list[Path]:
    """Write the HTML and/or JUnit report of `results`; the paths written, in that order.

    A path that is None is skipped.
    """
    outputs: list[tuple[Path, str]] = []
    if html_path is not None:
        outputs.append((Path(html_path), render_html(results)))
    if junit_path is not None:
        outputs.append((Path(junit_path), render_junit(results)))
    return [write_atomic(path, text) for path, text in outputs]

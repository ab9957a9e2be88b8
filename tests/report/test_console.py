"""The console: `--monitor` status lines and the end-of-run summary."""

from __future__ import annotations

import io
from typing import Any

from nimbus_scenarios.report.console import LineMonitor, format_summary, make_monitor

STATUS: dict[str, Any] = {
    "stage": "phases",
    "phase": "ramp",
    "elapsed_s": 75.0,
    "remaining_s": 45.0,
    "target_rate": 12.5,
    "achieved_rate": 12.0,
    "in_flight": 3,
    "p95_ms": 18.0,
    "sent": 700,
    "dropped": 2,
    "errors_pct": 0.5,
    "ready": 2,
    "desired": 3,
    "expectations": [("expect replicas >= 2 within 45s", "passed"), ("x", "open")],
}


def test_status_line_shows_phase_rates_replicas_and_expectations() -> None:
    """A progress event prints one line with the phase, target vs achieved, replicas, verdicts."""
    stream = io.StringIO()
    LineMonitor(stream).progress(STATUS)
    (line,) = stream.getvalue().splitlines()
    assert line.startswith("[01:15 +00:45 left] ramp")
    for part in (
        "target 12.5/s",
        "achieved 12/s",
        "in flight 3",
        "p95 18ms",
        "errors 0.5%",
        "dropped 2",
        "replicas 2/3",
        "expectations 1 passed, 0 failed, 1 open",
    ):
        assert part in line


def test_status_line_without_a_replica_source_omits_replicas() -> None:
    """No replica source: the line says nothing about replicas."""
    stream = io.StringIO()
    LineMonitor(stream).progress({**STATUS, "ready": None, "desired": None})
    assert "replicas" not in stream.getvalue()


def test_monitor_off_a_terminal_prints_lines() -> None:
    """Off a TTY (`kubectl logs`), the monitor is the line printer, not the rich panel."""
    assert isinstance(make_monitor(io.StringIO()), LineMonitor)


def test_summary_names_failed_expectations_and_the_results_path() -> None:
    """The summary shows the verdict, each expectation with its mark, and where results are."""
    document = {
        "scenario": "s",
        "run_id": "r1",
        "verdict": "failed",
        "exit_code": 1,
        "phases": [
            {
                "name": "p",
                "ran": True,
                "target_rate": 10.0,
                "achieved_rate": 9.9,
                "sent": 99,
                "dropped": 1,
                "failed": 0,
                "latency_ms": {"p50": 5.0, "p95": 9.0, "p99": 12.0},
            }
        ],
        "expectations": [
            {
                "scope": "p",
                "kind": "replicas",
                "text": "expect replicas >= 3 within 1m",
                "verdict": "failed",
                "detail": "never held in the window",
                "met_at_s": None,
            },
            {
                "scope": "scenario",
                "kind": "errors",
                "text": "expect errors < 1%",
                "verdict": "passed",
                "detail": "0/99 failed",
                "met_at_s": None,
            },
        ],
    }
    text = format_summary(document, "results/s-r1.json")
    assert "verdict FAILED (exit 1)" in text
    assert "FAIL  p: expect replicas >= 3 within 1m  never held in the window" in text
    assert "PASS  scenario: expect errors < 1%" in text
    assert text.endswith("results: results/s-r1.json")

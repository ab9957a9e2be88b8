"""The console: `--monitor` status lines from the typed progress events, and the end-of-run
summary from `RunResults`."""

from __future__ import annotations

import dataclasses
import io

import pytest

from nimbus_scenarios.events import Handlers, Progress, RequestErrors, WindowState, WindowStatus
from nimbus_scenarios.report.console import (
    LineMonitor,
    RichMonitor,
    format_summary,
    make_monitor,
    status_line,
)
from nimbus_scenarios.results.model import Stage
from nimbus_scenarios.scaling import MetricStatus, ScaleEvent, ScalingRecord, TargetKind
from tests.support.results import aborted_results, full_results, infra_results

STATUS = Progress(
    stage=Stage.PHASES,
    phase="ramp",
    elapsed_s=75.0,
    remaining_s=45.0,
    target_rate=12.5,
    achieved_rate=12.0,
    in_flight=3,
    p95_ms=18.0,
    sent=700,
    dropped=2,
    errors_pct=0.5,
    ready=2,
    desired=3,
    windows=(
        WindowStatus("expect replicas >= 2 within 45s", WindowState.PASSED),
        WindowStatus("expect ready replicas >= 2 throughout", WindowState.OPEN),
        WindowStatus("expect replicas <= 1 within 1m", WindowState.WAITING),
    ),
)


def test_status_line_shows_phase_rates_replicas_and_windows() -> None:
    """A progress event prints one line with the phase, target vs achieved, replicas, windows."""
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


def test_status_line_without_a_replica_source_or_phase() -> None:
    """No replica source: nothing about replicas; between phases the stage names where it is."""
    line = status_line(dataclasses.replace(STATUS, ready=None, desired=None, phase=None))
    assert "replicas" not in line
    assert line.startswith("[01:15 +00:45 left] phases ")
    long = status_line(dataclasses.replace(STATUS, elapsed_s=3725.0, p95_ms=12_345.0))
    assert long.startswith("[1:02:05 ")
    assert "p95 12.3s" in long


def test_status_line_names_the_failing_requests(capsys: pytest.CaptureFixture[str]) -> None:
    """Failures per request, each with its causes, only when some request failed."""
    assert "errors:" not in status_line(STATUS)
    failing = dataclasses.replace(
        STATUS,
        request_errors=(
            RequestErrors("work", 12, (("500", 10), ("timeout", 2))),
            RequestErrors("auth", 1),
        ),
    )
    line = status_line(failing)
    assert line.endswith("errors: work 12 (500 x10, timeout x2), auth 1")
    monitor = RichMonitor()
    monitor.progress(failing)
    monitor.run_ended(full_results())
    assert "work 12 (500 x10, timeout x2), auth 1" in capsys.readouterr().err


def test_phase_and_abort_lines() -> None:
    """A phase start prints its shape; an abort prints why, both stamped with the run clock."""
    stream = io.StringIO()
    monitor = LineMonitor(stream)
    phase = full_results().plan.phases[1]
    monitor.phase_started(phase, 10.0)
    monitor.aborted("guard fired", 12.4)
    assert stream.getvalue().splitlines() == [
        "[00:10] phase ramp: ramp 4/s -> 8/s",
        "[00:12] aborting: guard fired",
    ]


def test_monitor_off_a_terminal_prints_lines() -> None:
    """Off a TTY (`kubectl logs`), the monitor is the line printer, not the rich panel."""
    assert isinstance(make_monitor(io.StringIO()), LineMonitor)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_monitor_on_a_terminal_is_the_panel(capsys: pytest.CaptureFixture[str]) -> None:
    """On a TTY the monitor is the rich panel; it draws progress and stops at the run's end."""
    monitor = make_monitor(_Terminal())
    assert isinstance(monitor, RichMonitor)
    handlers = Handlers([monitor])
    handlers.progress(STATUS)
    assert monitor.started
    handlers.run_ended(full_results())
    assert not monitor.started
    assert handlers.failures == []
    assert "expect ready replicas >= 2 throughout" in capsys.readouterr().err


def test_summary_names_phases_expectations_kills_and_the_results_path() -> None:
    """The summary shows the verdict, a row per phase, each expectation with its mark, the kill,
    the trace id and where the results are."""
    text = format_summary(full_results(), "results/s-r1.json")
    lines = text.splitlines()
    assert lines[0] == "scenario checkout-autoscale  run 4d2c9a7b1e30  verdict FAILED (exit 1)"
    assert lines[2].split() == [
        "phase",
        "target/s",
        "achieved/s",
        "sent",
        "dropped",
        "failed",
        "p50",
        "p95",
        "p99",
    ]
    assert lines[3].split()[:6] == ["warmup", "4.0", "4.0", "40", "0", "0"]
    assert lines[6].split() == ["cooldown", "0.0", "0.0", "0", "0", "0", "-", "-", "-"]
    assert "  FAIL  scenario: expect p95 < 2s  3.441s" in lines
    assert "  PASS  ramp: expect replicas >= 2 within 25s  2 at +10s (run offset 20s)" in lines
    # a `before` check counts from its stage's start: no run offset
    assert "  PASS  before: expect replicas == 1 within 10s  1 replicas" in lines
    assert "kill at +38s: consumer-7d9f8b6c5-x2k4q" in lines
    assert "trace id: 4bf92f3577b34da6a3ce929d0e0e4736" in lines
    assert text.endswith("results: results/s-r1.json")


def test_summary_of_an_aborted_and_a_failed_run() -> None:
    """An abort says where and why; a phase that never ran says so; a pre-flight error is shown."""
    aborted = format_summary(aborted_results())
    assert "aborted at +3s: guard `abort when errors > 50% over 2s` fired" in aborted
    never = next(line for line in aborted.splitlines() if line.startswith("never"))
    assert never.split() == ["never", "5.0", "not", "run"]
    assert "results:" not in aborted
    infra = format_summary(infra_results())
    assert "verdict ERROR (exit 4)" in infra
    assert "error: target http://127.0.0.1:9 does not answer (connect error)" in infra
    assert "expectations:" not in infra


def test_the_summary_shows_the_documents_notes() -> None:
    """Notes (a partial merge's, say) are printed, one line each, after the expectations."""
    results = dataclasses.replace(full_results(), notes=("partial merge: 2 of 3 shards", "x"))
    lines = format_summary(results).splitlines()
    assert "note: partial merge: 2 of 3 shards" in lines
    assert lines.index("note: x") > lines.index("expectations:")


SCALE_UP = ScaleEvent(
    from_replicas=1,
    to_replicas=3,
    decided_s=21.0,
    load_change='phase "ramp" started',
    load_change_s=10.0,
    metric="rps per replica",
    metric_value=7.2,
    metric_target=5.0,
    metric_above_s=18.0,
    pods_created_s=22.0,
    ready_s=35.0,
    pod_startups_s=(12.0, 13.0),
)


def test_the_summary_breaks_down_each_scale_event() -> None:
    """With a `scaling` section, a line per scale event follows the expectations and kills,
    and its notes follow; without one, nothing about scale events is printed."""
    assert "scale events" not in format_summary(full_results())
    scaling = ScalingRecord(
        pods_watched=False,
        events=(dataclasses.replace(SCALE_UP, pods_created_s=None, pod_startups_s=()),),
        notes=("the pods were not watched (no permission): their steps are missing",),
    )
    lines = format_summary(dataclasses.replace(full_results(), scaling=scaling)).splitlines()
    first = lines.index("scale events:")
    assert first > lines.index("kill at +38s: consumer-7d9f8b6c5-x2k4q")
    assert lines[first + 1] == (
        '  +2 desired (1 -> 3) at 0:21, 11 s after phase "ramp" started: '
        "rps per replica 7.2 > 5 since 0:18; pods not watched; ready at 0:35"
    )
    assert lines[first + 2] == (
        "note: the pods were not watched (no permission): their steps are missing"
    )
    empty = dataclasses.replace(full_results(), scaling=ScalingRecord(pods_watched=True))
    assert "scale events: none (desired replicas never rose)" in format_summary(empty)


METRICS = (
    MetricStatus("rps per replica", TargetKind.AVERAGE_VALUE, 5.0, 7.2),
    MetricStatus("cpu", TargetKind.UTILIZATION, 80.0, 40.0),
)


def test_the_monitor_shows_each_metric_against_its_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--monitor` shows the autoscaler's metrics next to the replicas, on the line and in the
    panel; nothing when the source records no autoscaler."""
    assert "/5" not in status_line(STATUS)
    line = status_line(dataclasses.replace(STATUS, metrics=METRICS))
    assert "replicas 2/3  rps per replica 7.2/5, cpu 40%/80%  expectations" in line
    monitor = RichMonitor()
    monitor.progress(dataclasses.replace(STATUS, metrics=METRICS))
    monitor.run_ended(full_results())
    assert "rps per replica 7.2/5, cpu 40%/80%" in capsys.readouterr().err

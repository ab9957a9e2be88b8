"""Tests of the structlog output: `LoggingHandler` events, renderers, a real stdout pipe."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from nimbus_scenarios.events import PodChange, Progress
from nimbus_scenarios.results.model import Stage
from nimbus_scenarios.runner import RunOptions, run_scenario
from nimbus_scenarios.scaling import (
    AutoscalerSample,
    Condition,
    MetricStatus,
    PodRecord,
    ScaleEvent,
    ScalingRecord,
    TargetKind,
)
from nimbus_scenarios.scaling_words import describe_event
from nimbus_scenarios.telemetry import context as run_context
from nimbus_scenarios.telemetry.logs import LoggingHandler, add_run_context, configure_logging
from tests.conftest import HttpServer
from tests.support.results import full_results
from tests.telemetry.conftest import compile_text, free_port

REPO = Path(__file__).resolve().parents[2]

SHORT = """\
scenario "logged" {
  request ok = GET "/ok"
  request bad = GET "/status/500"
  before {
    expect ok succeeds
  }
  phase "first" 0.6s {
    rate 20/s
    send ok
    expect errors == 0%
  }
  phase "second" 0.6s {
    rate 20/s
    send bad
    expect errors < 10%
  }
}
"""


@pytest.fixture(autouse=True)
def fresh_logging() -> Iterator[None]:
    """Each test starts and ends with structlog's defaults and an empty run context."""
    structlog.reset_defaults()
    run_context.reset()
    yield
    structlog.reset_defaults()
    run_context.reset()


def test_logging_handler_events(http_server: HttpServer) -> None:
    """A run logs named events with fields, every line with run id, scenario and phase."""
    plan = compile_text(SHORT)
    options = RunOptions(
        url=http_server.url, install_signal_handlers=False, progress_interval_s=0.25
    )
    with capture_logs(processors=[add_run_context]) as logs:
        outcome = asyncio.run(
            run_scenario(plan, options, handlers=[LoggingHandler()], scenario_text=SHORT)
        )
    run_id = outcome.results.run_id
    events = [e["event"] for e in logs]
    assert events[0] == "run_started"
    assert events[-1] == "run_ended"
    assert events.count("phase_started") == events.count("phase_ended") == 2
    assert "progress" in events
    assert all(e["run_id"] == run_id and e["scenario"] == "logged" for e in logs)
    first = next(e for e in logs if e["event"] == "phase_started")
    assert first["phase"] == "first"
    assert first["target_rate"] == 20.0
    assert first["shape"] == "rate 20/s"
    progress = next(e for e in logs if e["event"] == "progress")
    assert {"target_rate", "achieved_rate", "in_flight", "sent"} <= set(progress)
    assert progress["phase"] in ("first", "second")
    verdicts = {
        e["expectation"]: (e["verdict"], e["log_level"])
        for e in logs
        if e["event"] == "expectation_decided"
    }
    assert verdicts == {
        "expect ok succeeds": ("passed", "info"),
        "expect errors == 0%": ("passed", "info"),
        "expect errors < 10%": ("failed", "warning"),
    }
    ended = logs[-1]
    assert (ended["verdict"], ended["exit_code"], ended["log_level"]) == ("failed", 1, "warning")
    assert ended["sent"] == 24
    assert "phase" not in ended


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_renderers_follow_the_stream() -> None:
    """JSON lines off a TTY, readable key=value console lines on one."""
    ctx = run_context.current()
    ctx.run_id, ctx.scenario, ctx.phase = "r1", "s1", "p1"
    pipe = io.StringIO()
    configure_logging(stream=pipe)
    structlog.get_logger().info("phase_started", target_rate=5.0)
    line = json.loads(pipe.getvalue())
    assert line["event"] == "phase_started"
    assert (line["run_id"], line["scenario"], line["phase"]) == ("r1", "s1", "p1")
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")
    tty = _Tty()
    configure_logging(stream=tty, level="warning")
    structlog.get_logger().info("hidden")
    structlog.get_logger().warning("shown", target_rate=5.0)
    text = re.sub(r"\x1b\[[0-9;]*m", "", tty.getvalue())  # colours on a terminal
    assert "hidden" not in text
    assert "shown" in text
    assert "target_rate=5.0" in text
    assert not text.lstrip().startswith("{")


SUBPROCESS_RUN = """
import asyncio, sys
from nimbus_scenarios.runner import RunOptions, run_scenario
from nimbus_scenarios.telemetry import Telemetry, configure_logging
from tests.telemetry.conftest import compile_text

configure_logging()
text, url, endpoint = sys.argv[1], sys.argv[2], sys.argv[3]
plan = compile_text(text)
env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_TIMEOUT": "300"}
telemetry = Telemetry.start(plan, url=url, run_id="sub", environ=env)
options = RunOptions(url=url, install_signal_handlers=False)
asyncio.run(run_scenario(plan, options, scenario_text=text, telemetry=telemetry))
print(telemetry.trace_id, file=sys.stderr)
telemetry.shutdown(timeout_s=1.0)
"""


def test_json_lines_on_a_real_stdout_pipe(http_server: HttpServer) -> None:
    """Through a real pipe every stdout line is JSON with run_id and the run's trace_id."""
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens: ids exist all the same
    done = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_RUN, SHORT, http_server.url, endpoint],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    trace_id = done.stderr.strip().splitlines()[-1]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    events = [line["event"] for line in lines]
    assert "run_started" in events
    assert "run_ended" in events
    assert all(line["trace_id"] == trace_id for line in lines)
    assert all("run_id" in line and len(line["span_id"]) == 16 for line in lines)
    run_id = next(line["run_id"] for line in lines if line["event"] == "run_ended")
    assert all(line["run_id"] == run_id for line in lines[events.index("run_started") :])
    phase_lines = [line for line in lines if line["event"] == "phase_started"]
    assert [line["phase"] for line in phase_lines] == ["first", "second"]
    assert len({line["span_id"] for line in phase_lines}) == 2


def test_why_it_scaled_is_logged() -> None:
    """Each autoscaler status is an `autoscaler_changed` line with its metrics and conditions;
    pod changes are `pod_<change>` lines (a restart a warning); each scale event of the
    results is a `scale_event` line before `run_ended`, and each scaling note a line."""
    handler = LoggingHandler()
    metric = MetricStatus("rps per replica", TargetKind.AVERAGE_VALUE, 5.0, 7.2)
    sample = AutoscalerSample(
        12.0, 3, 1, (metric,), (Condition("ScalingLimited", "False", "DesiredWithinRange"),)
    )
    pod = PodRecord("c-1", created=3.5, ready=9.0, restarts=2, terminations=("OOMKilled",))
    event = ScaleEvent(from_replicas=1, to_replicas=3, decided_s=12.0, ready_s=30.0)
    scaling = ScalingRecord(pods_watched=False, events=(event,), notes=("pods not watched",))
    results = dataclasses.replace(full_results(), scaling=scaling)
    with capture_logs() as logs:
        handler.autoscaler_changed(sample, 2.0)
        handler.pod_changed(pod, PodChange.READY, 9.0)
        handler.pod_changed(pod, PodChange.RESTARTED, 10.0)
        handler.run_ended(results)
    changed, ready, restarted = logs[:3]
    assert changed == {
        "event": "autoscaler_changed",
        "log_level": "info",
        "desired": 3,
        "current": 1,
        "metrics": [
            {
                "name": "rps per replica",
                "target_kind": "AverageValue",
                "value": 7.2,
                "target": 5.0,
                "above": True,
            }
        ],
        "conditions": [
            {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange"}
        ],
        "at_s": 2.0,
    }
    assert ready == {
        "event": "pod_ready",
        "log_level": "info",
        "pod": "c-1",
        "at_s": 9.0,
        "startup_s": 5.5,
    }
    assert (restarted["event"], restarted["log_level"]) == ("pod_restarted", "warning")
    assert (restarted["restarts"], restarted["terminations"]) == (2, ["OOMKilled"])
    events = [e["event"] for e in logs]
    scaled = logs[events.index("scale_event")]
    assert events.index("scale_event") < events.index("scaling_note") < events.index("run_ended")
    assert (scaled["from_replicas"], scaled["to_replicas"], scaled["ready_s"]) == (1, 3, 30.0)
    assert "reaction_s" not in scaled  # no load change seen: no reaction
    assert scaled["summary"] == describe_event(event, pods_watched=False)
    assert "pods not watched" in scaled["summary"]


def test_progress_lines_carry_the_metrics() -> None:
    """A `progress` line has the autoscaler's metrics against their targets, when known."""
    metric = MetricStatus("rps per replica", TargetKind.AVERAGE_VALUE, 5.0, 7.2)
    status = Progress(
        stage=Stage.PHASES,
        phase="ramp",
        elapsed_s=10.0,
        remaining_s=20.0,
        target_rate=1.0,
        achieved_rate=1.0,
        in_flight=0,
        p95_ms=None,
        sent=10,
        dropped=0,
        errors_pct=0.0,
        ready=1,
        desired=3,
    )
    with capture_logs() as logs:
        LoggingHandler().progress(status)
        LoggingHandler().progress(dataclasses.replace(status, metrics=(metric,)))
    assert "metrics" not in logs[0]
    assert logs[1]["metrics"] == ["rps per replica 7.2/5"]

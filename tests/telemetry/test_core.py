"""Tests of `core.Telemetry`: the disabled path, what it imports, a run on a manual clock."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.engine.request import ErrorKind
from nimbus_scenarios.results.model import TelemetrySummary
from nimbus_scenarios.runner import RunOptions, run_scenario
from nimbus_scenarios.telemetry import context as run_context
from nimbus_scenarios.telemetry.core import Telemetry
from tests.support.fakes import ScriptedTransport, answer_by_path
from tests.support.otlp import OtlpSink, SpanRecord
from tests.telemetry.conftest import compile_text, otel_env, wait_until

REPO = Path(__file__).resolve().parents[2]
SCENARIO = (
    'scenario "c" {\n  request a = GET "/"\n  phase "p" 1s {\n    rate 1/s\n    send a\n  }\n}\n'
)
CLIENT = 3


@pytest.fixture(autouse=True)
def fresh_logging() -> Iterator[None]:
    """Each test starts and ends with structlog's defaults and an empty run context."""
    structlog.reset_defaults()
    run_context.reset()
    yield
    structlog.reset_defaults()
    run_context.reset()


def test_disabled_telemetry_is_inert() -> None:
    """With no endpoint: no observer, no headers, no trace id, one debug line, a zero summary."""
    with capture_logs() as logs:
        telemetry = Telemetry.start(compile_text(SCENARIO), url="http://127.0.0.1:9", environ={})
    assert telemetry.observer is None
    assert telemetry.headers_for is None
    assert telemetry.trace_id is None
    assert not telemetry.enabled
    assert [(e["event"], e["log_level"]) for e in logs] == [("telemetry_disabled", "debug")]
    summary = telemetry.shutdown()
    assert summary == TelemetrySummary(enabled=False, trace_sample=100.0)
    assert telemetry.shutdown() is summary


@pytest.mark.skipif(
    importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None,
    reason="the optional gRPC exporter is installed",
)
def test_a_missing_grpc_exporter_leaves_telemetry_off_with_a_warning() -> None:
    """OTLP over gRPC without its optional package: one warning, and the run goes on untraced."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }
    with capture_logs() as logs:
        telemetry = Telemetry.start(compile_text(SCENARIO), environ=env)
    assert not telemetry.enabled
    assert telemetry.observer is None
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert warning["event"] == "telemetry_disabled"
    assert "grpc exporter not installed" in warning["reason"]


def _modules_after(code: str) -> set[str]:
    script = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _roots(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_validate_plan_and_disabled_run_never_import_opentelemetry(tmp_path: Path) -> None:
    """`validate`, `plan` and a disabled `Telemetry.start` import no OpenTelemetry."""
    path = tmp_path / "c.scn"
    path.write_text(SCENARIO)
    cli = (
        "import contextlib, io\n"
        "from nimbus_scenarios.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['validate', {str(path)!r}])\n"
        f"    main(['plan', {str(path)!r}])\n"
        "import nimbus_scenarios.telemetry\n"
    )
    assert not _roots(_modules_after(cli)) & {"opentelemetry", "structlog"}
    disabled = (
        "from nimbus_scenarios.pipeline import compile_source\n"
        "from nimbus_scenarios.language.errors import Source\n"
        "from nimbus_scenarios.telemetry import Telemetry\n"
        f"plan = compile_source(Source('c.scn', {SCENARIO!r}))\n"
        "Telemetry.start(plan, environ={}).shutdown()\n"
    )
    assert "opentelemetry" not in _roots(_modules_after(disabled))


def test_telemetry_imports_no_http_client() -> None:
    """Neither `telemetry.core` nor an enabled run's telemetry loads aiohttp or httpx."""
    assert not _roots(_modules_after("import nimbus_scenarios.telemetry.core")) & {
        "aiohttp",
        "httpx",
    }
    enabled = (
        "from nimbus_scenarios.pipeline import compile_source\n"
        "from nimbus_scenarios.language.errors import Source\n"
        "from nimbus_scenarios.telemetry import Telemetry\n"
        f"plan = compile_source(Source('c.scn', {SCENARIO!r}))\n"
        "env = {'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://127.0.0.1:9'}\n"
        "t = Telemetry.start(plan, url='http://127.0.0.1:9', environ=env)\n"
        "assert t.enabled and t.observer is not None\n"
        "t.shutdown(timeout_s=0.5)\n"
    )
    loaded = _roots(_modules_after(enabled))
    assert "opentelemetry" in loaded
    assert not loaded & {"aiohttp", "httpx"}


# ---------------------------------------------------------------------------- a manual clock
WALL_START = 2_000_000_000.0
"""The manual clock's wall time at zero: years away from the real clock, so a timestamp taken
from the wrong clock cannot pass for a right one."""
URL = "http://target.test"
MANUAL = """\
scenario "manual" {
  settings {
    trace_sample 100%
  }
  request work = GET "/work"
  request slow = GET "/slow"
  phase "one" 10s {
    rate 2/s
    send work
  }
  phase "two" 5s {
    rate 2/s
    send slow
  }
}
"""


@pytest.fixture(scope="module")
def sink() -> Iterator[OtlpSink]:
    """An OTLP sink, no collector in front of it."""
    server = OtlpSink().start()
    yield server
    server.stop()


def _within(span: SpanRecord, outer: SpanRecord) -> bool:
    return outer.start_ns <= span.start_ns <= span.end_ns <= outer.end_ns


def _starts_within(span: SpanRecord, outer: SpanRecord) -> bool:
    """A request sent in a phase may be answered after the phase stopped scheduling."""
    return outer.start_ns <= span.start_ns <= outer.end_ns


def test_a_run_on_a_manual_clock_is_stamped_with_its_clock(sink: OtlpSink) -> None:
    """Spans and logs of a run on a `ManualClock` carry the clock's times, exactly."""
    sink.clear()
    clock = ManualClock(wall_start=WALL_START)
    plan = compile_text(MANUAL)
    env = otel_env(sink.url, OTEL_METRICS_EXPORTER="none")
    telemetry = Telemetry.start(plan, url=URL, run_id="manual0001", environ=env, clock=clock)
    transport = ScriptedTransport(
        clock, answer_by_path({"work": (0.25, 200), "slow": (1.0, ErrorKind.timeout)})
    )
    options = RunOptions(url=URL, install_signal_handlers=False)

    async def main() -> None:
        await clock.run(
            run_scenario(
                plan,
                options,
                transport=transport,
                clock=clock,
                telemetry=telemetry,
                scenario_text="",
            )
        )

    asyncio.run(main())
    end_s = clock.now()
    summary = telemetry.shutdown(timeout_s=5.0)
    assert summary.spans_exported == 1 + 2 + 30
    assert summary.spans_dropped == 0
    assert wait_until(lambda: any(r.body == "run_ended" for r in sink.logs))

    start_ns, last_ns = round(WALL_START * 1e9), round((WALL_START + end_s) * 1e9)
    (root,) = [s for s in sink.spans if s.name == "scenario manual"]
    phases = {s.name: s for s in sink.spans if s.name.startswith("phase ")}
    requests = [s for s in sink.spans if s.kind == CLIENT]
    assert root.start_ns == start_ns
    assert root.end_ns == last_ns
    for phase in phases.values():
        assert _within(phase, root)
        offset_ns = round(float(phase.attributes["nimbus.phase.start_s"]) * 1e9)
        assert phase.start_ns - root.start_ns == pytest.approx(offset_ns, abs=1_000)
    assert len(requests) == 30
    for span in requests:
        parent = phases[f"phase {span.attributes['nimbus.phase']}"]
        assert span.parent_id == parent.span_id
        assert _starts_within(span, parent)
        assert _within(span, root)
        took_s = 0.25 if span.attributes["nimbus.template"] == "work" else 1.0
        assert span.end_ns - span.start_ns == pytest.approx(took_s * 1e9, abs=1_000)
    assert all(start_ns <= r.time_ns <= last_ns for r in sink.logs)

    # Each line about a phase's end is inside that phase's span; the run's end is on the root.
    ended = {str(r.attributes["phase"]): r for r in sink.logs if r.body == "phase_ended"}
    assert {name: r.span_id for name, r in ended.items()} == {
        "one": phases["phase one"].span_id,
        "two": phases["phase two"].span_id,
    }
    (run_ended,) = [r for r in sink.logs if r.body == "run_ended"]
    assert run_ended.span_id == root.span_id
    # Every request named its own span in the traceparent it carried.
    sent = {s.headers[0][1].split("-")[2] for s in transport.sent if s.headers}
    assert sent == {s.span_id for s in requests}

"""Tests of the telemetry configuration, the Grafana link, the disabled path and lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import structlog
from structlog.testing import capture_logs

from nimbus_scenarios.results.model import TelemetrySummary
from nimbus_scenarios.telemetry.config import parse_key_values, resolve_config
from nimbus_scenarios.telemetry.core import Telemetry
from nimbus_scenarios.telemetry.links import explore_link, trace_summary
from tests.telemetry.conftest import compile_text

REPO = Path(__file__).resolve().parents[2]
SCENARIO = (
    'scenario "c" {\n  request a = GET "/"\n  phase "p" 1s {\n    rate 1/s\n    send a\n  }\n}\n'
)


def test_no_endpoint_means_disabled() -> None:
    """Without an endpoint (or with OTEL_SDK_DISABLED) telemetry is off and says why."""
    assert resolve_config({}).reason == "no OTLP endpoint"
    assert not resolve_config({}).enabled
    disabled = resolve_config({"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"})
    assert not disabled.enabled
    assert disabled.reason == "OTEL_SDK_DISABLED is true"
    none = resolve_config(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }
    )
    assert not none.enabled


def test_standard_variables_are_read() -> None:
    """Endpoint, protocol, headers, service, resource attributes and limits come from OTEL_*."""
    config = resolve_config(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://alloy:4318/",
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc, x-scope-orgid=t1,broken",
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,deployment.environment=ci",
            "OTEL_SERVICE_NAME": "loadgen",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1500",
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_LOGS_EXPORTER": "none",
        }
    )
    assert config.enabled
    assert config.protocol == "http/protobuf"
    assert config.signal_endpoint("traces") == "http://alloy:4318/v1/traces"
    assert dict(config.headers) == {"Authorization": "Bearer abc", "x-scope-orgid": "t1"}
    assert config.service_name == "loadgen"
    assert config.resource_attributes["deployment.environment"] == "ci"
    assert config.timeout_s == 1.5
    assert config.span_queue_size == 100
    assert (config.traces, config.metrics, config.logs) == (True, True, False)
    assert any("broken" in w for w in config.warnings)


def test_override_protocols_and_defaults() -> None:
    """--otlp-endpoint wins over the variable; grpc keeps the address; bad values warn."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    config = resolve_config(env, otlp_endpoint="collector:4317")
    assert config.endpoint == "http://collector:4317"
    assert config.signal_endpoint("logs") == "http://collector:4317"
    assert config.service_name == "nimbus-scenarios"
    odd = resolve_config(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
    )
    assert odd.protocol == "http/protobuf"
    assert odd.warnings
    assert parse_key_values("a=1,,b = 2 ,=x") == ({"a": "1", "b": "2"}, ["=x"])


def test_explore_link_points_at_tempo() -> None:
    """The Explore link opens the trace id on the Tempo datasource (uid tempo)."""
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    link = explore_link("http://grafana:3000/", trace_id)
    parts = urlsplit(link)
    assert link.startswith("http://grafana:3000/explore?")
    panes = json.loads(parse_qs(parts.query)["panes"][0])
    (pane,) = panes.values()
    assert pane["datasource"] == "tempo"
    assert pane["queries"][0]["query"] == trace_id
    assert pane["queries"][0]["datasource"] == {"type": "tempo", "uid": "tempo"}
    assert trace_summary(None, "http://g") == []
    assert trace_summary(trace_id) == [f"trace id: {trace_id}"]
    assert trace_summary(trace_id, "http://g")[1] == f"trace: {explore_link('http://g', trace_id)}"


def test_disabled_telemetry_is_inert() -> None:
    """With no endpoint: no observer, no headers, no trace id, one debug line, zero counters."""
    structlog.reset_defaults()
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
    structlog.reset_defaults()


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
    loaded = _modules_after(cli)
    assert not any(m.startswith(("opentelemetry", "structlog")) for m in loaded)
    disabled = (
        "from nimbus_scenarios.pipeline import compile_source\n"
        "from nimbus_scenarios.language.errors import Source\n"
        "from nimbus_scenarios.telemetry import Telemetry\n"
        f"plan = compile_source(Source('c.scn', {SCENARIO!r}))\n"
        "Telemetry.start(plan, environ={}).shutdown()\n"
    )
    assert not any(m.startswith("opentelemetry") for m in _modules_after(disabled))

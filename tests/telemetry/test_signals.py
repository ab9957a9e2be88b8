"""Per-signal endpoints end to end: each combination exports to the right place, or says why not.

A short run on a `ManualClock` (milliseconds of real time) with telemetry from a variable set:
only a traces endpoint, only a logs endpoint, the base endpoint through the real rotel collector
plus a traces override straight to a second sink, the base with one exporter `none`, and an
exporter the tool cannot honour (named in the results' notes). The sinks decode what arrives,
so a signal that went to the wrong place, or nowhere, fails the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping

import pytest

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.results.model import RunResults, TelemetrySummary
from nimbus_scenarios.runner import RunOptions, run_scenario
from nimbus_scenarios.telemetry.core import Telemetry
from tests.deploy.support import GRAFANA, load_documents
from tests.support.fakes import ScriptedTransport, answer_by_path
from tests.support.otlp import OtlpSink
from tests.support.wait import wait_until
from tests.telemetry.conftest import Rotel, compile_text

URL = "http://target.test"
CLIENT = 3
SCENARIO = """\
scenario "signals" {
  settings {
    trace_sample 100%
  }
  request work = GET "/work"
  phase "one" 3s {
    rate 2/s
    send work
  }
}
"""
SHORT = {"OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_EXPORTER_OTLP_TIMEOUT": "1000"}


@pytest.fixture
def sinks() -> Iterator[tuple[OtlpSink, OtlpSink]]:
    """Two fresh OTLP sinks."""
    first, second = OtlpSink().start(), OtlpSink().start()
    yield first, second
    first.stop()
    second.stop()


def _play(environ: Mapping[str, str]) -> tuple[RunResults, TelemetrySummary]:
    """Run SCENARIO on a manual clock with telemetry from `environ`; results and summary."""
    clock = ManualClock(wall_start=2_000_000_000.0)
    plan = compile_text(SCENARIO)
    telemetry = Telemetry.start(plan, url=URL, run_id="signals001", environ=environ, clock=clock)
    transport = ScriptedTransport(clock, answer_by_path({"work": (0.1, 200)}))

    async def main() -> RunResults:
        outcome = await clock.run(
            run_scenario(
                plan,
                RunOptions(url=URL, install_signal_handlers=False),
                transport=transport,
                clock=clock,
                telemetry=telemetry,
                scenario_text="",
            )
        )
        return outcome.results

    results = asyncio.run(main())
    return results, telemetry.shutdown(timeout_s=5.0)


def _signals(sink: OtlpSink) -> set[str]:
    """Which signals arrived at `sink` (by the path they were posted to)."""
    return {path.rsplit("/", 1)[-1] for path, _ in list(sink.bodies)}


def test_only_a_traces_endpoint_exports_traces_there(sinks: tuple[OtlpSink, OtlpSink]) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT alone (used as is): spans there, nothing else."""
    sink, _ = sinks
    env = {**SHORT, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sink.url + "/v1/traces"}
    results, summary = _play(env)
    assert summary.enabled
    assert summary.endpoint == sink.url + "/v1/traces"
    assert summary.spans_exported == 1 + 1 + 6
    assert len(sink.spans) == summary.spans_exported
    assert {s.trace_id for s in sink.spans} == {results.trace_id}
    assert _signals(sink) == {"traces"}
    assert results.notes == ()
    # The Tempo datasource's correlations read attributes these spans really carry.
    (document,) = load_documents(GRAFANA / "datasources.yaml")
    (tempo,) = [d["jsonData"] for d in document["datasources"] if d["type"] == "tempo"]
    requests = [s for s in sink.spans if s.kind == CLIENT]
    assert requests
    for tag in tempo["tracesToMetrics"]["tags"]:
        assert all(tag["key"] in s.attributes for s in requests), tag
    for tag in tempo["tracesToLogsV2"]["tags"]:
        assert all(s.resource.get(tag["key"]) == "nimbus-scenarios" for s in requests), tag


def test_only_a_logs_endpoint_exports_logs_there(sinks: tuple[OtlpSink, OtlpSink]) -> None:
    """OTEL_EXPORTER_OTLP_LOGS_ENDPOINT alone: log records there, no spans, no metrics, and no
    trace (so the results carry no trace id)."""
    sink, _ = sinks
    env = {**SHORT, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": sink.url + "/v1/logs"}
    results, summary = _play(env)
    assert summary.enabled
    assert summary.logs_exported > 0
    assert wait_until(lambda: any(r.body == "run_ended" for r in sink.logs))
    assert _signals(sink) == {"logs"}
    assert results.trace_id is None
    assert summary.spans_exported == 0


def test_base_through_rotel_plus_a_traces_override(sinks: tuple[OtlpSink, OtlpSink]) -> None:
    """The base endpoint (rotel, forwarding to one sink) gets metrics and logs; the traces
    override sends spans straight to the other sink, and nothing else goes there."""
    collected, direct = sinks
    rotel = Rotel(collected.url).start()
    try:
        env = {
            **SHORT,
            "OTEL_EXPORTER_OTLP_ENDPOINT": rotel.endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": direct.url + "/v1/traces",
            "OTEL_METRIC_EXPORT_INTERVAL": "100000",  # one export, at shutdown
        }
        results, summary = _play(env)
        assert summary.spans_exported == 8
        assert wait_until(lambda: any(r.body == "run_ended" for r in collected.logs), 10.0)
        assert wait_until(lambda: "nimbus.run.info" in collected.metrics, 10.0)
    finally:
        rotel.stop()
    assert _signals(direct) == {"traces"}
    assert {s.trace_id for s in direct.spans} == {results.trace_id}
    assert "traces" not in _signals(collected)
    assert _signals(collected) == {"logs", "metrics"}
    # Logs carry the trace context although the spans went elsewhere.
    assert {r.trace_id for r in collected.logs if r.trace_id} == {results.trace_id}


def test_an_exporter_set_to_none_is_not_exported(sinks: tuple[OtlpSink, OtlpSink]) -> None:
    """OTEL_METRICS_EXPORTER=none with the base endpoint: spans and logs, no metrics."""
    sink, _ = sinks
    env = {**SHORT, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, "OTEL_METRICS_EXPORTER": "none"}
    _, summary = _play(env)
    assert summary.metric_exports == 0
    assert wait_until(lambda: any(r.body == "run_ended" for r in sink.logs))
    assert _signals(sink) == {"traces", "logs"}


def test_a_setting_not_honoured_is_in_the_notes_and_not_exported(
    sinks: tuple[OtlpSink, OtlpSink],
) -> None:
    """OTEL_TRACES_EXPORTER=zipkin cannot be honoured: no spans, and the results say why."""
    sink, _ = sinks
    env = {
        **SHORT,
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
        "OTEL_TRACES_EXPORTER": "zipkin",
        "OTEL_LOGS_EXPORTER": "none",
    }
    results, summary = _play(env)
    assert summary.enabled
    assert summary.spans_exported == 0
    (note,) = results.notes
    assert note.startswith("telemetry settings not honoured: OTEL_TRACES_EXPORTER='zipkin'")
    assert _signals(sink) == {"metrics"}

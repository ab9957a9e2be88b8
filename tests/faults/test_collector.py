"""The OTLP collector down from the start or killed mid-run: telemetry loses (and counts) what
it cannot deliver, and the run's verdict, exit code and counts are those of a run without a
collector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Child, assert_outcome, run_cli, write_scenario
from tests.support.http import HttpServer, free_port
from tests.support.otlp import OtlpSink

SCENARIO = """
scenario "collector" {
  request h = GET "/h"
  phase "warm" 1s {
    rate 10/s
    send h
  }
  phase "load" 3s {
    rate 20/s
    send h
    expect errors < 1%
  }
  expect p95 < 2s
}
"""
# Export early and often, so that a collector killed mid-run has received something first.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_METRIC_EXPORT_INTERVAL": "500"}


def essentials(document: dict[str, Any]) -> dict[str, Any]:
    """What a collector must not change: verdicts, exit code and every count."""
    counts = ("scheduled", "sent", "dropped", "succeeded", "failed")
    return {
        "verdict": document["verdict"],
        "exit_code": document["exit_code"],
        "expectations": [(e["text"], e["verdict"]) for e in document["expectations"]],
        "phases": [{k: p[k] for k in ("name", "ran", *counts)} for p in document["phases"]],
        "totals": {k: document["totals"][k] for k in counts},
    }


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the same run gives with no collector configured."""
    directory = tmp_path_factory.mktemp("baseline")
    server = HttpServer().start()
    try:
        results = directory / "baseline.json"
        scenario = write_scenario(directory, SCENARIO)
        finished = run_cli("run", str(scenario), "--url", server.url, "--results", str(results))
    finally:
        server.stop()
    document = assert_outcome(finished, results, code=0, verdict="passed")
    assert document["trace_id"] is None
    assert document["totals"]["sent"] == 70
    return essentials(document)


def test_collector_down_from_the_start(
    server: HttpServer, tmp_path: Path, expected: dict[str, Any]
) -> None:
    """Nothing listens at OTEL_EXPORTER_OTLP_ENDPOINT: spans are dropped, the run is unchanged."""
    scenario = write_scenario(tmp_path, SCENARIO)
    results = tmp_path / "results.json"
    endpoint = f"http://127.0.0.1:{free_port()}"
    finished = run_cli(
        "run",
        str(scenario),
        "--url",
        server.url,
        "--results",
        str(results),
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, **FAST_EXPORT},
    )
    document = assert_outcome(finished, results, code=0, verdict="passed")
    assert essentials(document) == expected
    assert document["trace_id"] is not None
    telemetry = document["telemetry"]
    assert telemetry["enabled"] is True
    assert telemetry["spans_exported"] == 0
    assert telemetry["spans_dropped"] > 0
    assert telemetry["export_errors"] > 0
    assert finished.elapsed_s < 20  # the shutdown flush is bounded (5 s)


def test_collector_killed_mid_run(
    server: HttpServer, tmp_path: Path, expected: dict[str, Any]
) -> None:
    """The collector receives the first exports, then dies: the run goes on unchanged."""
    scenario = write_scenario(tmp_path, SCENARIO)
    sink = OtlpSink().start()
    results = tmp_path / "results.json"
    args = ["run", str(scenario), "--url", server.url, "--results", str(results)]
    try:
        with Child(*args, env={"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, **FAST_EXPORT}) as child:
            child.wait_for("load", lambda: bool(server.paths("/h")))
            # Batches are exported one after another: a second one means the first was answered.
            child.wait_for("two span exports", lambda: len(sink.received("/v1/traces")) >= 2, 10)
            sink.stop()
            killed_with = len(sink.received())
            finished = child.finish()
    finally:
        sink.stop()
    document = assert_outcome(finished, results, code=0, verdict="passed")
    assert essentials(document) == expected
    assert killed_with > 0
    telemetry = document["telemetry"]
    assert telemetry["spans_exported"] > 0  # before the kill
    assert telemetry["spans_dropped"] > 0  # after it: at least the run and phase spans
    assert finished.elapsed_s < 25

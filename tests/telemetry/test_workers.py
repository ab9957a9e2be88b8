"""Request spans of `run --workers 2`, end to end: the CLI traces through the real rotel
collector into the decoding sink while both processes send to the loopback recording server.

Every request, whichever process sent it, carries a `traceparent` in the run's trace and has
exactly one request span, under the parent's span of its phase, saying which process sent it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from nimbus_scenarios.plan.arrivals import shard_share
from tests.support.cli import assert_outcome, run_cli, write_scenario
from tests.support.http import HttpServer, free_port
from tests.support.otlp import OtlpSink, SpanRecord
from tests.telemetry.conftest import Rotel, compile_text, otel_env, wait_until

CLIENT = 3

TWO_PHASES = """\
scenario "workers-traced" {
  settings {
    trace_sample 100%
  }
  request a = GET "/a"
  request b = GET "/b"
  phase "first" 1s {
    rate 30/s
    send a
  }
  phase "second" 1s {
    rate 20/s
    send 50% a, 50% b
  }
}
"""


def _requests(sink: OtlpSink) -> list[SpanRecord]:
    return [s for s in list(sink.spans) if s.kind == CLIENT]


@pytest.mark.timeout(60)
def test_every_workers_request_has_a_span_in_the_runs_trace(
    collector: Rotel, sink: OtlpSink, http_server: HttpServer, tmp_path: Path
) -> None:
    """One request span per request sent, all in the run's trace under the parent's phase
    spans, each saying its process; the server saw the same trace on every request."""
    scenario = write_scenario(tmp_path, TWO_PHASES)
    results = tmp_path / "results.json"
    finished = run_cli(
        *("run", str(scenario), "--url", http_server.url, "--results", str(results)),
        *("--workers", "2"),
        env=otel_env(collector.endpoint),
    )
    document = assert_outcome(finished, results, code=0, verdict="passed")
    trace_id = document["trace_id"]
    sent = document["totals"]["sent"]
    assert sent == document["totals"]["scheduled"] > 0
    assert document["telemetry"]["spans_dropped"] == 0
    assert document["telemetry"]["export_errors"] == 0

    assert wait_until(lambda: len(_requests(sink)) >= sent, 10.0)
    spans = list(sink.spans)
    requests = _requests(sink)
    assert len(requests) == sent
    assert len({s.span_id for s in requests}) == sent
    assert {s.trace_id for s in spans} == {trace_id}
    assert {s.resource["service.name"] for s in spans} == {"nimbus-test"}

    # Parented as the parent's own requests are: under the (parent's) span of their phase.
    phases = {s.attributes["nimbus.phase"]: s for s in spans if s.name.startswith("phase ")}
    assert set(phases) == {"first", "second"}
    for span in requests:
        assert span.parent_id == phases[span.attributes["nimbus.phase"]].span_id
        assert span.attributes["nimbus.run_id"] == document["run_id"]

    # Each process sent its shard of the plan, and its spans say so.
    plan = compile_text(TWO_PHASES)
    expected = {w: sum(shard_share(p.scheduled_total, w, 2) for p in plan.phases) for w in range(2)}
    assert Counter(s.attributes["nimbus.worker"] for s in requests) == expected

    # The server saw a traceparent naming the run's trace, and that request's span, every time.
    hits = [h for h in http_server.hits if h.path != "/"]  # `/`: the parent's pre-flight
    assert len(hits) == sent
    traceparents = [h.headers.get("traceparent", "") for h in hits]
    assert all(tp.split("-")[1:2] == [trace_id] and tp.endswith("-01") for tp in traceparents)
    assert {tp.split("-")[2] for tp in traceparents} == {s.span_id for s in requests}


ONE_PHASE = """\
scenario "workers-dead-collector" {
  settings {
    trace_sample 100%
  }
  request a = GET "/a"
  phase "only" 1s {
    rate 20/s
    send a
  }
}
"""


@pytest.mark.timeout(60)
def test_a_dead_collector_costs_the_workers_spans_not_the_run(
    http_server: HttpServer, tmp_path: Path
) -> None:
    """With nothing listening at the OTLP endpoint the run passes as without telemetry, in
    bounded time, and the results count every process's spans as dropped."""
    scenario = write_scenario(tmp_path, ONE_PHASE)
    results = tmp_path / "results.json"
    finished = run_cli(
        *("run", str(scenario), "--url", http_server.url, "--results", str(results)),
        *("--workers", "2"),
        env=otel_env(f"http://127.0.0.1:{free_port()}"),
        timeout_s=40.0,
    )
    document = assert_outcome(finished, results, code=0, verdict="passed")
    sent = document["totals"]["sent"]
    assert sent == document["totals"]["scheduled"] > 0
    assert len([h for h in http_server.hits if h.path != "/"]) == sent
    assert all("traceparent" in h.headers for h in http_server.hits if h.path != "/")
    telemetry = document["telemetry"]
    assert telemetry["spans_exported"] == 0
    # Both processes' request spans (and the parent's run and phase spans) are counted lost.
    assert telemetry["spans_dropped"] == sent + 2
    # The run's warning says the same: every process's drops, not the parent's alone.
    warned = [
        json.loads(line) for line in finished.stdout.splitlines() if "telemetry_dropped" in line
    ]
    assert [w["spans_dropped"] for w in warned] == [sent + 2]

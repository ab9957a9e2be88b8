"""The runner for real: a loopback HTTP server, the event loop's clock and the aiohttp
transport. The logic is tested on a manual clock (test_stages.py); these few runs check that
the real seams play it the same way, and that the document they produce is the contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.results.io import (
    EXPECTATION_FIELDS,
    PHASE_FIELDS,
    REQUIRED_FIELDS,
    SCHEMA_VERSION,
    load_results,
    to_json_data,
    write_results,
)
from nimbus_scenarios.results.model import RunVerdict, Stage, Verdict
from nimbus_scenarios.runner import RunOutcome
from tests.support.http import HttpServer, free_port

Run = Callable[..., RunOutcome]

TWO_PHASES = """
scenario "doc" {
  request h = GET "/h"
  phase "one" 1s {
    rate 10/s
    send h
    expect errors == 0%
  }
  phase "two" 1s {
    users 2 think 100ms
    send h
  }
  expect p99 < 5s
  expect achieved >= 99%
}
"""


def test_a_real_run_writes_the_contracted_document(
    http_server: HttpServer, run: Run, tmp_path: Path
) -> None:
    """Two phases against a loopback server: the plan is sent, every contracted field is there,
    and the document written reads back equal."""
    outcome = run(TWO_PHASES, http_server.url)
    results = outcome.results
    assert outcome.exit_code is ExitCode.OK
    assert results.verdict is RunVerdict.PASSED
    assert results.stage_reached is Stage.PHASES
    assert len(http_server.paths("/h")) == results.totals.sent
    one, two = results.phases
    assert (one.load.sent, one.planned, one.target_rate) == (10, 10, 10.0)
    assert two.target_rate is None  # closed model: no planned rate
    assert two.load.sent > 0
    assert [(j.expectation.scope, j.verdict) for j in results.expectations] == [
        ("one", Verdict.PASSED),
        ("scenario", Verdict.PASSED),
        ("scenario", Verdict.PASSED),
    ]
    data = to_json_data(results)
    assert data["schema_version"] == SCHEMA_VERSION
    assert set(REQUIRED_FIELDS) <= set(data)
    phases = data["phases"]
    assert isinstance(phases, list)
    for phase in phases:
        assert isinstance(phase, dict)
        assert set(PHASE_FIELDS) <= set(phase)
    expectations = data["expectations"]
    assert isinstance(expectations, list)
    for entry in expectations:
        assert isinstance(entry, dict)
        assert set(EXPECTATION_FIELDS) <= set(entry)
    path = write_results(results, tmp_path / "doc.json")
    assert load_results(path) == results


def test_replica_windows_without_a_source_are_not_judged(http_server: HttpServer, run: Run) -> None:
    """With `watch` but no replica source, every window is not judged, never passed: exit 4."""
    outcome = run(
        """
scenario "replicas" {
  watch deployment "consumer"
  request h = GET "/h"
  phase "p" 1s {
    rate 10/s
    send h
    expect replicas >= 1 within 2s
  }
  expect ready replicas <= 3 throughout
  expect p95 < 5s
}
""",
        http_server.url,
    )
    verdicts = {j.expectation.text: j.verdict for j in outcome.results.expectations}
    assert verdicts == {
        "expect replicas >= 1 within 2s": Verdict.NOT_JUDGED,
        "expect ready replicas <= 3 throughout": Verdict.NOT_JUDGED,
        "expect p95 < 5s": Verdict.PASSED,
    }
    assert outcome.exit_code is ExitCode.INFRASTRUCTURE
    assert outcome.results.verdict is RunVerdict.ERROR


def test_a_target_down_at_start_sends_nothing(run: Run) -> None:
    """Nothing listening at the URL: exit 4, the URL and the error kind in `error`."""
    url = f"http://127.0.0.1:{free_port()}"
    outcome = run(TWO_PHASES, url)
    results = outcome.results
    assert outcome.exit_code is ExitCode.INFRASTRUCTURE
    assert results.error == f"target {url} does not answer (connect error)"
    assert results.totals.sent == 0
    assert not any(p.ran for p in results.phases)
    assert results.seconds == ()


def test_credential_values_appear_nowhere_in_the_results(http_server: HttpServer, run: Run) -> None:
    """Literal Authorization and Cookie values are masked in the source, params and plan, but
    were sent."""
    outcome = run(
        """
scenario "secrets" {
  param token = "Bearer p4ram-s3cret"
  request a = GET "/a" {
    header "Authorization" = $token
  }
  request b = GET "/b" {
    header "Cookie" = "session=lit3ral-s3cret"
  }
  phase "p" 1s {
    rate 4/s
    send 50% a, 50% b
  }
}
""",
        http_server.url,
    )
    text = json.dumps(to_json_data(outcome.results))
    assert "s3cret" not in text
    assert outcome.results.params["token"] == "***"
    assert outcome.exit_code is ExitCode.OK
    assert http_server.paths("/a")


def test_a_real_run_records_the_event_loop_it_ran_on(http_server: HttpServer, run: Run) -> None:
    """The document and the console name the loop the engine ran on (here asyncio's own, on
    which the test runs it)."""
    from nimbus_scenarios.report.console import format_summary

    results = run(TWO_PHASES, http_server.url).results
    assert results.event_loop == "asyncio"
    assert "event loop: asyncio" in format_summary(results).splitlines()

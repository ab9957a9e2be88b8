"""The runner's verdicts and exit codes: precedence, the steady-state hypothesis, guards, the
deadline, failing and unjudgeable expectations, and what the results document records."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest

from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.judge.expectations import Judgement, Verdict
from nimbus_scenarios.plan.model import ExpectationPlan
from nimbus_scenarios.runner import RunOutcome, exit_code_for
from tests.conftest import HttpServer

Run = Callable[..., RunOutcome]

P95 = ExpectationPlan("expect p95 < 1s", "scenario", "latency", "p95", "<", 1.0)
PASSED = Judgement(P95, Verdict.PASSED, 0.1)
FAILED = Judgement(P95, Verdict.FAILED, 2.0)
NOT_JUDGED = Judgement(P95, Verdict.NOT_JUDGED)


def expectation(document: dict[str, Any], text: str) -> dict[str, Any]:
    """The results entry of the expectation written as `text`."""
    found = [e for e in document["expectations"] if e["text"] == text]
    assert len(found) == 1, document["expectations"]
    return found[0]


@pytest.mark.parametrize(
    ("aborted", "judgements", "infrastructure", "code"),
    [
        (False, [], False, ExitCode.OK),
        (False, [PASSED, PASSED], False, ExitCode.OK),
        (False, [PASSED, FAILED], False, ExitCode.FAILED),
        (False, [PASSED, NOT_JUDGED], False, ExitCode.INFRASTRUCTURE),
        (False, [PASSED], True, ExitCode.INFRASTRUCTURE),
        (False, [FAILED, NOT_JUDGED], True, ExitCode.FAILED),
        (True, [PASSED], False, ExitCode.ABORTED),
        (True, [FAILED, NOT_JUDGED], True, ExitCode.ABORTED),
    ],
)
def test_exit_code_precedence(
    aborted: bool, judgements: list[Judgement], infrastructure: bool, code: int
) -> None:
    """Aborted beats failed, failed beats not judged or infrastructure, and only all-pass is 0."""
    assert exit_code_for(aborted=aborted, judgements=judgements, infrastructure=infrastructure) == (
        code
    )


def test_replica_expectations_without_a_source_are_not_judged(
    http_server: HttpServer, run: Run
) -> None:
    """With `watch` but no replica source, replica windows are not_judged (never passed): exit 4."""
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
  expect desired replicas == 1 at end
  expect p95 < 5s
}
""",
        http_server.url,
    )
    document = outcome.document
    for text in (
        "expect replicas >= 1 within 2s",
        "expect ready replicas <= 3 throughout",
        "expect desired replicas == 1 at end",
    ):
        entry = expectation(document, text)
        assert entry["verdict"] == "not_judged", entry
        assert entry["met_at_s"] is None
    assert expectation(document, "expect p95 < 5s")["verdict"] == "passed"
    assert outcome.exit_code == ExitCode.INFRASTRUCTURE
    assert document["exit_code"] == 4
    assert document["verdict"] == "error"


def test_failing_before_hypothesis_skips_the_phases(http_server: HttpServer, run: Run) -> None:
    """`expect health succeeds within 2s` against a 503 fails the run (exit 1) with no load."""
    outcome = run(
        """
scenario "before" {
  request health = GET "/status/503"
  request work = GET "/work"
  before {
    expect health succeeds within 2s
  }
  phase "p" 1s {
    rate 10/s
    send work
  }
}
""",
        http_server.url,
    )
    document = outcome.document
    entry = expectation(document, "expect health succeeds within 2s")
    assert entry["scope"] == "before"
    assert entry["verdict"] == "failed"
    assert "503" in entry["detail"]
    assert outcome.exit_code == ExitCode.FAILED
    assert document["phases"][0]["ran"] is False
    assert document["phases"][0]["sent"] == 0
    assert http_server.paths("/work") == []
    # retried about once a second for the whole window, the last try at its end
    assert len(http_server.paths("/status/503")) == 3


def test_before_hypothesis_retries_until_the_window_end(http_server: HttpServer, run: Run) -> None:
    """A service that starts answering 1.5 s in passes `succeeds within 2s`, and load follows."""
    outcome = run(
        """
scenario "before" {
  request health = GET "/flaky/1500"
  request work = GET "/work"
  before {
    expect health succeeds within 2s
  }
  phase "p" 1s {
    rate 10/s
    send work
  }
}
""",
        http_server.url,
    )
    entry = expectation(outcome.document, "expect health succeeds within 2s")
    assert entry["verdict"] == "passed", entry
    assert 1.5 <= entry["met_at_s"] <= 2.5
    assert outcome.exit_code == ExitCode.OK
    assert len(http_server.paths("/work")) == 10


def test_error_guard_aborts_the_run(http_server: HttpServer, run: Run) -> None:
    """`abort when errors > 50% over 1s` against a 500-answering server stops the run: exit 3."""
    outcome = run(
        """
scenario "guard" {
  request bad = GET "/status/500"
  phase "p" 4s {
    rate 50/s
    send bad
  }
  abort when errors > 50% over 1s
}
""",
        http_server.url,
    )
    document = outcome.document
    assert outcome.exit_code == ExitCode.ABORTED
    assert document["verdict"] == "aborted"
    assert "abort when errors > 50% over 1s" in document["abort"]["reason"]
    assert 1.0 <= document["abort"]["at_s"] < 3.0
    phase = document["phases"][0]
    assert phase["failed"] == phase["sent"]
    assert phase["sent"] < 150  # stopped well before the phase's 200
    assert phase["ran_s"][1] < 3.0


def test_max_duration_aborts_the_run(http_server: HttpServer, run: Run) -> None:
    """A 1 s deadline stops a 4 s phase: exit 3, the reason names the deadline."""
    outcome = run(
        """
scenario "deadline" {
  request h = GET "/h"
  phase "p" 4s {
    rate 50/s
    send h
  }
  expect achieved > 99%
}
""",
        http_server.url,
        max_duration_s=1.0,
    )
    document = outcome.document
    assert outcome.exit_code == ExitCode.ABORTED
    assert "max-duration" in document["abort"]["reason"]
    phase = document["phases"][0]
    assert 40 <= phase["sent"] <= 60
    assert phase["scheduled"] == phase["sent"] + phase["dropped"]
    # judged against what was due before the stop, not the whole phase
    assert expectation(document, "expect achieved > 99%")["verdict"] == "passed"


def test_failing_latency_expectation(http_server: HttpServer, run: Run) -> None:
    """A 200 ms server fails `expect p95 < 50ms` (exit 1), with the observed p95 recorded."""
    outcome = run(
        """
scenario "latency" {
  request slow = GET "/delay/200"
  phase "p" 1s {
    rate 20/s
    send slow
    expect p50 < 1s
  }
  expect p95 < 50ms
}
""",
        http_server.url,
    )
    document = outcome.document
    assert outcome.exit_code == ExitCode.FAILED
    assert document["verdict"] == "failed"
    entry = expectation(document, "expect p95 < 50ms")
    assert entry["verdict"] == "failed"
    assert entry["scope"] == "scenario"
    assert 0.2 <= entry["observed"] < 1.0
    phase_entry = expectation(document, "expect p50 < 1s")
    assert phase_entry["scope"] == "p"
    assert phase_entry["verdict"] == "passed"


def test_target_down_at_start_is_an_infrastructure_error(run: Run) -> None:
    """Nothing listening at the URL: exit 4, the URL and error in `error`, no load sent."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    outcome = run(
        """
scenario "down" {
  request h = GET "/h"
  phase "p" 2s {
    rate 50/s
    send h
  }
  expect p95 < 1s
}
""",
        url,
    )
    document = outcome.document
    assert outcome.exit_code == ExitCode.INFRASTRUCTURE
    assert document["verdict"] == "error"
    assert url in document["error"]
    assert "connect" in document["error"]
    assert document["totals"]["sent"] == 0
    assert all(not p["ran"] and p["sent"] == 0 for p in document["phases"])
    assert document["seconds"] == []


def test_credential_headers_are_masked_in_the_results(http_server: HttpServer, run: Run) -> None:
    """Literal Authorization values appear nowhere in the results (source and params included)."""
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
    text = json.dumps(outcome.document)
    assert "s3cret" not in text
    assert outcome.document["params"]["token"] == "***"
    assert outcome.exit_code == ExitCode.OK

"""The JUnit report: readable by a JUnit parser, counts and times right, every string escaped."""

from __future__ import annotations

import copy
import os
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from nimbus_scenarios.report.junit import render_junit
from tests.report.conftest import HOSTILE, hostile_document, load_document, minimal_document

try:
    import junitparser
except ImportError:  # CI installs the dev extra, which pins junitparser==5.0.3
    if os.environ.get("CI"):
        raise
    pytest.skip("junitparser is not installed (dev extra)", allow_module_level=True)


def _suite(xml: str) -> Any:
    parsed = junitparser.JUnitXml.fromstring(xml)
    suites = list(parsed)
    assert len(suites) == 1
    return suites[0]


def _results(case: Any) -> list[tuple[str, str | None]]:
    return [(type(r).__name__, r.message) for r in case.result]


def test_full_run_counts_and_names() -> None:
    """A finished run gives one test case per expectation, named by scope and text, 2 failures."""
    document = load_document("run_full")
    suite = _suite(render_junit(document))
    assert suite.name == "nimbus-scenarios.checkout-autoscale"
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (10, 2, 0, 0)
    assert suite.time == pytest.approx(document["duration_s"], abs=1e-3)
    cases = list(suite)
    assert [(c.classname, c.name) for c in cases] == [
        (e["scope"], e["text"]) for e in document["expectations"]
    ]
    failed = {c.name: _results(c) for c in cases if not c.is_passed}
    assert failed == {
        "expect p95 < 2s": [("Failure", "observed 3.44s, expected < 2s")],
        "expect p99 < 1500ms": [("Failure", "observed 5.69s, expected < 1.5s")],
    }
    failure = next(c for c in cases if c.name == "expect p95 < 2s").result[0]
    assert failure.text == "3.441s"


def test_counts_match_what_a_parser_recounts() -> None:
    """The suite's tests/failures/errors/skipped attributes equal a recount of its cases."""
    for name in ("run_full", "run_aborted", "run_infra"):
        suite = _suite(render_junit(load_document(name)))
        stated = (suite.tests, suite.failures, suite.errors, suite.skipped)
        suite.update_statistics()
        assert (suite.tests, suite.failures, suite.errors, suite.skipped) == stated, name


def test_not_judged_is_skipped_with_the_reason() -> None:
    """A not-judged expectation is a skipped case whose message starts with `not judged:`."""
    document = load_document("run_full")
    for e in document["expectations"]:
        if e["kind"] == "replicas":
            e.update(verdict="not_judged", observed=None, met_at_s=None, detail="no samples")
    suite = _suite(render_junit(document))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (10, 2, 0, 4)
    skipped = [c for c in suite if c.is_skipped]
    assert {_results(c)[0] for c in skipped} == {("Skipped", "not judged: no samples")}


def test_aborted_run_has_an_error_case() -> None:
    """An aborted run adds a `run`/`abort` case with an error giving where and why."""
    document = load_document("run_aborted")
    suite = _suite(render_junit(document))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, 1, 1, 0)
    abort = next(c for c in suite if c.classname == "run")
    assert abort.name == "abort"
    ((kind, message),) = _results(abort)
    assert kind == "Error"
    assert message == f"aborted at +3.0s: {document['abort']['reason']}"
    assert suite.name == "nimbus-scenarios." + document["scenario"]


def test_infrastructure_error_has_an_error_case() -> None:
    """A run stopped at pre-flight is one `run`/`infrastructure` error case with the message."""
    document = load_document("run_infra")
    suite = _suite(render_junit(document))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (1, 0, 1, 0)
    (case,) = list(suite)
    assert (case.classname, case.name) == ("run", "infrastructure")
    assert _results(case) == [("Error", document["error"])]


def test_lost_replica_source_is_an_infrastructure_error() -> None:
    """A replica source lost mid-run is reported as an infrastructure error case."""
    document = load_document("run_full")
    document["replica_source"]["lost_at_s"] = 41.5
    suite = _suite(render_junit(document))
    case = next(c for c in suite if c.classname == "run")
    assert _results(case) == [
        ("Error", "replica source deployment nimbusguard/consumer lost at +41.5s")
    ]


def test_case_times() -> None:
    """A held `within` window's time is until it held; a phase's load expectation its run time."""
    document = load_document("run_full")
    document["expectations"].append(
        {
            "text": "expect errors < 5%",
            "scope": "hold",
            "kind": "errors",
            "verdict": "passed",
            "observed": 4.86,
            "expected": "< 5",
            "met_at_s": None,
            "window": None,
            "window_s": None,
            "detail": "7/144 failed",
        }
    )
    times = {(c.classname, c.name): c.time for c in _suite(render_junit(document))}
    assert times[("ramp", "expect replicas >= 2 within 25s")] == pytest.approx(9.8)
    assert times[("hold", "expect ready replicas >= 2 throughout")] == pytest.approx(15.0)
    hold = next(p for p in document["phases"] if p["name"] == "hold")
    assert times[("hold", "expect errors < 5%")] == pytest.approx(
        hold["ran_s"][1] - hold["ran_s"][0], abs=1e-3
    )
    assert times[("scenario", "expect p95 < 2s")] == pytest.approx(60.0, abs=0.01)


def test_hostile_strings_are_escaped() -> None:
    """Markup and quotes round-trip as text; control characters are spelled out, not emitted."""
    document = hostile_document()
    xml = render_junit(document)
    assert "<script>" not in xml
    assert "&lt;script&gt;" in xml
    assert "\x00" not in xml
    assert "\x1b" not in xml
    root = ET.fromstring(xml.encode("utf-8"))  # well-formed
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("name") == "nimbus-scenarios." + document["scenario"]
    names = [case.get("name") for case in suite.iter("testcase")]
    assert all(HOSTILE in (name or "") for name in names[:-2])
    infrastructure = suite.find("testcase[@name='infrastructure']/error")
    assert infrastructure is not None
    assert infrastructure.get("message") == f"boom {HOSTILE}\\x00\\x1b[31m"
    parsed = _suite(xml)
    assert parsed.tests == len(document["expectations"]) + 2


def test_lone_surrogates_and_odd_values() -> None:
    """A lone surrogate or a non-string value does not break the XML."""
    document = copy.deepcopy(load_document("run_full"))
    document["scenario"] = "bad\ud800name"
    document["expectations"][0]["text"] = 12345
    document["expectations"][0]["detail"] = None
    xml = render_junit(document)
    root = ET.fromstring(xml.encode("utf-8"))
    assert root.find("testsuite").get("name") == "nimbus-scenarios.bad\\ud800name"  # type: ignore[union-attr]


def test_minimal_document() -> None:
    """A document with only the required fields is an empty, valid suite."""
    suite = _suite(render_junit(minimal_document()))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (0, 0, 0, 0)
    assert suite.time == 0.0

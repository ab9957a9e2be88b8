"""The JUnit report: readable by a JUnit parser, counts and times right, every string escaped."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from typing import Any

import junitparser
import pytest

from nimbus_scenarios.language.vocabulary import ExpectationKind
from nimbus_scenarios.report.junit import failure_message, render_junit
from nimbus_scenarios.results.model import Judgement, RunResults, Verdict
from tests.support.results import (
    HOSTILE,
    Outcome,
    aborted_results,
    full_results,
    hostile_results,
    infra_results,
    make_results,
    replica_source,
)


def _suite(xml: str) -> Any:
    parsed = junitparser.JUnitXml.fromstring(xml)
    suites = list(parsed)
    assert len(suites) == 1
    return suites[0]


def _results(case: Any) -> list[tuple[str, str | None]]:
    return [(type(r).__name__, r.message) for r in case.result]


def test_full_run_counts_and_names() -> None:
    """A finished run gives one test case per expectation, named by scope and text, 2 failures."""
    results = full_results()
    suite = _suite(render_junit(results))
    assert suite.name == "nimbus-scenarios.checkout-autoscale"
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (10, 2, 0, 0)
    assert suite.time == pytest.approx(results.duration_s, abs=1e-3)
    assert suite.timestamp == "2026-11-26T09:44:43"
    cases = list(suite)
    assert [(c.classname, c.name) for c in cases] == [
        (j.expectation.scope, j.expectation.text) for j in results.expectations
    ]
    failed = {c.name: _results(c) for c in cases if not c.is_passed}
    assert failed == {
        "expect p95 < 2s": [("Failure", "observed 3.44s, expected < 2s")],
        "expect p99 < 1500ms": [("Failure", "observed 5.69s, expected < 1.5s")],
    }
    failure = next(c for c in cases if c.name == "expect p95 < 2s").result[0]
    assert failure.text == "3.441s"


def test_properties_name_the_run() -> None:
    """Run id, verdict, exit code, trace id, target and Grafana URL are properties."""
    root = ET.fromstring(render_junit(full_results()))
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties == {
        "run_id": "4d2c9a7b1e30",
        "verdict": "failed",
        "exit_code": "1",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "target": "http://127.0.0.1:8000",
        "grafana_url": "http://grafana.example.test:3000",
    }


@pytest.mark.parametrize(
    ("text", "observed", "message"),
    [
        ("expect achieved >= 95%", 80.0, "observed 80%, expected >= 95%"),
        ("expect errors < 10%", 12.5, "observed 12.5%, expected < 10%"),
        ("expect replicas >= 2 within 25s", 1.0, "observed 1, expected >= 2"),
        ("expect health succeeds", 0.0, "observed did not succeed, expected succeeds"),
        ("expect p95 < 2s", None, "observed nothing, expected < 2s"),
    ],
)
def test_failure_messages_from_the_typed_expectation(
    text: str, observed: float | None, message: str
) -> None:
    """The failure message spells both values in the unit, from the comparator and value."""
    judgement = next(j for j in full_results().expectations if j.expectation.text == text)
    failed = dataclasses.replace(judgement, verdict=Verdict.FAILED, observed=observed)
    assert failure_message(failed) == message


def test_counts_match_what_a_parser_recounts() -> None:
    """The suite's tests/failures/errors/skipped attributes equal a recount of its cases."""
    for results in (full_results(), aborted_results(), infra_results(), hostile_results()):
        suite = _suite(render_junit(results))
        stated = (suite.tests, suite.failures, suite.errors, suite.skipped)
        suite.update_statistics()
        assert (suite.tests, suite.failures, suite.errors, suite.skipped) == stated


def _not_judged(judgement: Judgement) -> Judgement:
    if judgement.expectation.kind is not ExpectationKind.REPLICAS:
        return judgement
    return dataclasses.replace(
        judgement, verdict=Verdict.NOT_JUDGED, observed=None, met_at_s=None, detail="no samples"
    )


def test_not_judged_is_skipped_with_the_reason() -> None:
    """A not-judged expectation is a skipped case whose message starts with `not judged:`."""
    results = full_results()
    results = dataclasses.replace(
        results, expectations=tuple(_not_judged(j) for j in results.expectations)
    )
    suite = _suite(render_junit(results))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (10, 2, 0, 4)
    skipped = [c for c in suite if c.is_skipped]
    assert {_results(c)[0] for c in skipped} == {("Skipped", "not judged: no samples")}


def test_aborted_run_has_an_error_case() -> None:
    """An aborted run adds a `run`/`abort` case with an error giving where and why."""
    results = aborted_results()
    suite = _suite(render_junit(results))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, 1, 1, 0)
    abort = next(c for c in suite if c.classname == "run")
    assert abort.name == "abort"
    assert abort.time == pytest.approx(3.005)
    ((kind, message),) = _results(abort)
    assert kind == "Error"
    assert results.abort is not None
    assert message == f"aborted at +3.0s: {results.abort.reason}"
    assert suite.name == "nimbus-scenarios." + results.scenario


def test_infrastructure_error_has_an_error_case() -> None:
    """A run stopped at pre-flight is one `run`/`infrastructure` error case with the message."""
    results = infra_results()
    suite = _suite(render_junit(results))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (1, 0, 1, 0)
    (case,) = list(suite)
    assert (case.classname, case.name) == ("run", "infrastructure")
    assert _results(case) == [("Error", results.error)]


def test_lost_replica_source_is_an_infrastructure_error() -> None:
    """A replica source lost mid-run is reported as an infrastructure error case."""
    suite = _suite(render_junit(full_results(replica_source=replica_source(lost_at_s=41.5))))
    case = next(c for c in suite if c.classname == "run")
    assert _results(case) == [
        ("Error", "replica source deployment nimbusguard/consumer lost at +41.5s")
    ]


def test_case_times() -> None:
    """A held `within` window's time is until it held; a phase's load expectation its run time;
    the scenario's from the first phase's start to the last one's end; `after` until it held."""
    text = (
        'scenario "t" {\n target "http://h"\n watch deployment "d" namespace "n"\n'
        ' request r = GET "/"\n'
        ' phase "a" 10s {\n  rate 2/s\n  send r\n  expect replicas >= 2 within 8s\n }\n'
        ' phase "b" 10s {\n  rate 2/s\n  send r\n  expect errors < 5%\n'
        "  expect ready replicas >= 2 throughout\n }\n"
        " after {\n  expect r succeeds\n }\n expect p95 < 2s\n}\n"
    )
    results = make_results(
        text,
        outcomes={
            "expect replicas >= 2 within 8s": Outcome(Verdict.PASSED, 2.0, 6.5),
            "expect r succeeds": Outcome(Verdict.PASSED, 1.0, 0.25),
        },
        phases_run={"a": (0.0, 10.0), "b": (10.0, 19.5)},
    )
    times = {(c.classname, c.name): c.time for c in _suite(render_junit(results))}
    assert times[("a", "expect replicas >= 2 within 8s")] == pytest.approx(6.5)
    assert times[("b", "expect ready replicas >= 2 throughout")] == pytest.approx(10.0)
    assert times[("b", "expect errors < 5%")] == pytest.approx(9.5)
    assert times[("scenario", "expect p95 < 2s")] == pytest.approx(19.5)
    assert times[("after", "expect r succeeds")] == pytest.approx(0.25)


def test_hostile_strings_are_escaped() -> None:
    """Markup and quotes round-trip as text; control characters are spelled out, not emitted."""
    results = hostile_results()
    xml = render_junit(results)
    assert "<script>" not in xml
    assert "&lt;script&gt;" in xml
    assert "\x00" not in xml
    assert "\x1b" not in xml
    assert "\x07" not in xml
    root = ET.fromstring(xml.encode("utf-8"))  # well-formed
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("name") == "nimbus-scenarios." + results.scenario
    names = [case.get("name") for case in suite.iter("testcase")]
    assert all(HOSTILE in (name or "") for name in names[:-2])
    infrastructure = suite.find("testcase[@name='infrastructure']/error")
    assert infrastructure is not None
    assert infrastructure.get("message") == f"boom {HOSTILE}\\x00\\x1b[31m"
    assert _suite(xml).tests == len(results.expectations) + 2


def test_lone_surrogates_are_spelled_out() -> None:
    """A lone surrogate in a name does not break the XML."""
    results: RunResults = dataclasses.replace(full_results(), scenario="bad\ud800name")
    root = ET.fromstring(render_junit(results).encode("utf-8"))
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("name") == "nimbus-scenarios.bad\\ud800name"


def test_nothing_judged_is_an_empty_suite() -> None:
    """A run with no expectations, no abort and no error is an empty, valid suite."""
    results = dataclasses.replace(infra_results(), error=None, duration_s=0.0)
    suite = _suite(render_junit(results))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (0, 0, 0, 0)
    assert suite.time == 0.0


def test_a_per_request_expectation_is_grouped_by_its_request() -> None:
    """`expect p95 of work < 2s` is a case of class `SCOPE.work` with a `request` property; an
    expectation over every request keeps its scope as class."""
    results = full_results()
    first = results.expectations[0]
    scoped = next(j for j in results.expectations if j.expectation.kind.over_load)
    per_request = dataclasses.replace(
        scoped,
        expectation=dataclasses.replace(
            scoped.expectation, request="work", text="expect p95 of work < 2s"
        ),
    )
    results = dataclasses.replace(results, expectations=(first, per_request))
    xml = render_junit(results)
    cases = list(_suite(xml))
    assert [c.classname for c in cases] == [
        first.expectation.scope,
        f"{scoped.expectation.scope}.work",
    ]
    root = ET.fromstring(xml)
    element = root.find(".//testcase[@name='expect p95 of work < 2s']")
    assert element is not None
    assert [(p.get("name"), p.get("value")) for p in element.iter("property")] == [
        ("request", "work")
    ]
    assert all(c.find("properties") is None for c in root.iter("testcase") if c is not element)

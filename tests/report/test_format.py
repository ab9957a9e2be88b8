"""The shared formatters: durations, offsets, rates, counts, expectation values, verdict words."""

from __future__ import annotations

import math

import pytest

from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.language.nodes import Comparator
from nimbus_scenarios.language.vocabulary import ExpectationKind
from nimbus_scenarios.report import _format as fmt
from nimbus_scenarios.results.model import RunVerdict, Verdict
from tests.support.results import plan_of

_DASH = "\u2013"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, _DASH),
        (math.nan, _DASH),
        (math.inf, _DASH),
        (0.0, "0s"),
        (0.003653, "3.65ms"),
        (0.191, "191ms"),
        (4.613, "4.61s"),
        (125.0, "2m05s"),
        (3720.0, "1h02m"),
        (-2.5, "-2.5s"),
    ],
)
def test_duration(seconds: float | None, text: str) -> None:
    """Durations read in the largest unit that keeps three figures; nothing is a dash."""
    assert fmt.duration(seconds) == text


def test_offsets_latency_rates_and_counts() -> None:
    """Offsets carry a sign, latency in ms reads as a duration, rates and counts group digits."""
    assert fmt.offset(19.8) == "+19.8s"
    assert fmt.offset(-4.2) == "-4.2s"
    assert fmt.offset(125.0) == "+2m05s"
    assert fmt.offset(None) == _DASH
    assert fmt.millis(3440.639) == "3.44s"
    assert fmt.millis(None) == _DASH
    assert fmt.rate(9.6) == "9.6"
    assert fmt.rate(1234.4) == "1,234"
    assert fmt.rate(math.nan) == _DASH
    assert fmt.count(12345) == "12,345"
    assert fmt.count(None) == _DASH


@pytest.mark.parametrize(
    ("kind", "value", "text"),
    [
        (ExpectationKind.LATENCY, 3.441, "3.44s"),
        (ExpectationKind.LATENCY, 0.003653, "3.65ms"),
        (ExpectationKind.ERRORS, 52.380952, "52.4%"),
        (ExpectationKind.ACHIEVED, 100.0, "100%"),
        (ExpectationKind.REPLICAS, 2.0, "2"),
        (ExpectationKind.REACTION, 10.000236, "10s"),
        (ExpectationKind.POD_STARTUP, 2.471, "2.47s"),
        (ExpectationKind.SUCCEEDS, 1.0, "succeeded"),
        (ExpectationKind.SUCCEEDS, 0.0, "did not succeed"),
        (ExpectationKind.LATENCY, None, "nothing"),
        (ExpectationKind.ERRORS, math.nan, "nothing"),
    ],
)
def test_expectation_value_in_its_unit(
    kind: ExpectationKind, value: float | None, text: str
) -> None:
    """Observed and expected values read in the expectation kind's unit."""
    assert fmt.expectation_value(kind, value) == text


def test_expected_value_from_the_typed_comparator() -> None:
    """What an expectation asks for comes from its Comparator and float value, in its unit."""
    plan = plan_of(
        'scenario "s" {\n target "http://h"\n request r = GET "/"\n'
        ' phase "p" 10s {\n  rate 1/s\n  send r\n }\n'
        " after {\n  expect r succeeds\n }\n"
        " expect p99 < 1500ms\n expect achieved >= 95%\n expect errors != 3%\n}\n"
    )
    by_text = {e.text: e for e in plan.all_expectations}
    p99 = by_text["expect p99 < 1500ms"]
    assert p99.comparator is Comparator.LT
    assert fmt.expected_value(p99) == "< 1.5s"
    achieved = by_text["expect achieved >= 95%"]
    assert fmt.expected_value(achieved) == "\u2265 95%"
    assert fmt.expected_value(achieved, symbol=False) == ">= 95%"
    assert fmt.expected_value(by_text["expect errors != 3%"]) == "\u2260 3%"
    assert fmt.expected_value(by_text["expect r succeeds"]) == "succeeds"


def test_every_comparator_has_a_symbol() -> None:
    """Each comparator reads as people write it."""
    symbols = {c: fmt.comparator_symbol(c) for c in Comparator}
    assert symbols == {
        Comparator.EQ: "=",
        Comparator.NE: "\u2260",
        Comparator.GE: "\u2265",
        Comparator.LE: "\u2264",
        Comparator.GT: ">",
        Comparator.LT: "<",
    }


def test_verdict_words_marks_and_exit_meanings() -> None:
    """Verdicts read as words, marks are four columns wide, every exit code has a meaning."""
    assert fmt.verdict_word(Verdict.NOT_JUDGED) == "not judged"
    assert fmt.verdict_word(RunVerdict.ABORTED) == "aborted"
    assert [fmt.verdict_mark(v) for v in Verdict] == ["PASS", "FAIL", "N/J "]
    assert fmt.exit_meaning(ExitCode.FAILED) == "an expectation failed"
    assert all(fmt.exit_meaning(code) for code in ExitCode)


def test_printable_replaces_lone_surrogates() -> None:
    """A lone surrogate (possible in a JSON string) becomes `?`, so the text encodes."""
    assert fmt.printable("a\udfffb") == "a?b"
    assert fmt.printable("caf\u00e9") == "caf\u00e9"

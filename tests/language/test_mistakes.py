"""Syntax errors a first-time user makes are named from the text at the error position, with the
caret on the offending text; text that only looks similar gets the general message."""

from __future__ import annotations

import unicodedata

import pytest

from nimbus_scenarios.language.errors import Diagnostic, ScenarioError, Source
from nimbus_scenarios.language.syntax import parse


def syntax_error(line: str, *, in_phase: bool = True) -> tuple[Diagnostic, str]:
    """The one diagnostic of a scenario with `line` in a phase (or at scenario level), and the
    text its caret covers."""
    body = f"    {line}\n    send work\n" if in_phase else ""
    outer = "" if in_phase else f"  {line}\n"
    text = (
        'scenario "t" {\n  request work = GET "/w"\n'
        f'{outer}  phase "p" 1m {{\n    rate 1/s\n{body}  }}\n}}\n'
    )
    source = Source("t.scn", text)
    with pytest.raises(ScenarioError) as caught:
        parse(source)
    (diagnostic,) = caught.value.diagnostics
    span = diagnostic.span
    assert span.line == span.end_line
    return diagnostic, source.line(span.line)[span.column - 1 : span.end_column - 1]


@pytest.mark.parametrize(
    ("line", "covered", "hint"),
    [
        ("expect p95 =< 2s", "=<", "<="),
        ("expect p95 => 2s", "=>", ">="),
        ("expect p95 < 2 s", "2 s", "2s"),
        ("expect p95 < 250 ms", "250 ms", "250ms"),
        ("expect errors < 5 %", "5 %", "5%"),
        ("spike 5 /s for 1s at 10s", "5 /s", "5/s"),
    ],
)
def test_replacement_hints(line: str, covered: str, hint: str) -> None:
    """`=<`, `=>` and a unit apart from its number get "did you mean" with the fix."""
    diagnostic, shown = syntax_error(line)
    assert shown == covered
    assert diagnostic.hint == hint


@pytest.mark.parametrize(
    ("line", "covered", "written"),
    [
        ("spike 1e3/s for 1s at 10s", "1e3/s", "1000/s"),
        ("spike 2.5E-3/s for 1s at 10s", "2.5E-3/s", "0.0025/s"),
        ("spike 2/s for 1e-3s at 10s", "1e-3s", "0.001s"),
    ],
)
def test_exponent_is_written_out(line: str, covered: str, written: str) -> None:
    """A value with an exponent that stops lark is named with its value written out."""
    diagnostic, shown = syntax_error(line)
    assert shown == covered
    assert diagnostic.message.endswith(f"write `{written}`")


def test_huge_exponent_is_not_written_out() -> None:
    """An exponent too large for any value gets the rule, not a 400-digit number."""
    diagnostic, shown = syntax_error("spike 1e400/s for 1s at 10s")
    assert shown == "1e400/s"
    assert "write" not in diagnostic.message
    assert "without an exponent" in diagnostic.message


@pytest.mark.parametrize(
    ("line", "covered", "quotes"),
    [
        ("description “heavy”", "“heavy”", "`“` and `”`"),
        ("description \u2018heavy\u2019", "\u2018heavy\u2019", "`\u2018` and `\u2019`"),
        ('description "heavy”', '"heavy”', "`”`"),
        ("description “heavy", "“", "`“`"),
    ],
)
def test_curly_quotes(line: str, covered: str, quotes: str) -> None:
    """Curly quotes are named, the caret covers the quoted text, and the advice says which."""
    diagnostic, shown = syntax_error(line, in_phase=False)
    assert shown == covered
    assert diagnostic.advice == f'use straight quotes: `"` instead of {quotes}'


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("phase warmup 60s {", "warmup"),
        ("phase ramp 60s {", "ramp"),
        ("watch deployment web-app", "web-app"),
        ('watch deployment "app" namespace prod', "prod"),
    ],
)
def test_unquoted_names(line: str, name: str) -> None:
    """A bare word where a statement takes a name as a string says so with that word quoted."""
    text = f'scenario "t" {{\n  {line}\n}}\n'
    with pytest.raises(ScenarioError) as caught:
        parse(Source("t.scn", text))
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.advice == f'names are quoted strings: `"{name}"`'
    assert diagnostic.span.end_column - diagnostic.span.column == len(name)


@pytest.mark.parametrize(
    "char", ["\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", "\u00a0", "\u202f", "\u2028"]
)
def test_invisible_characters_are_named(char: str) -> None:
    """A zero-width or non-breaking space is named by its code point and Unicode name."""
    diagnostic, shown = syntax_error(f"expect p95{char} < 2s")
    assert shown == char
    assert f"U+{ord(char):04X} {unicodedata.name(char)}" in diagnostic.message


@pytest.mark.parametrize(
    "line",
    [
        "rate zzz",  # a bare word where a value goes is not a name
        "expect replicas = 2",  # a single `=` is not guessed at
        "expect p95 < 2 sec",  # not one of our units
        "spike 1e3 /s for 1s at 10s",  # neither a bare number nor a value with an exponent
    ],
)
def test_no_hint_for_look_alikes(line: str) -> None:
    """Text that only looks like one of the mistakes gets no hint and no advice."""
    diagnostic, _ = syntax_error(line)
    assert diagnostic.hint is None
    assert diagnostic.advice is None


def test_comparison_hint_only_where_a_comparison_goes() -> None:
    """`=<` in a param definition is not called a comparison."""
    with pytest.raises(ScenarioError) as caught:
        parse(Source("t.scn", 'scenario "t" {\n  param x =< 3\n}\n'))
    (diagnostic,) = caught.value.diagnostics
    assert "comparison" not in diagnostic.message
    assert diagnostic.hint is None


def test_number_and_name_that_parse_are_left_alone() -> None:
    """`send 50 s` is a weight and a request called `s`: valid, so there is nothing to hint."""
    text = (
        'scenario "t" {\n  request s = GET "/s"\n  phase "p" 1m {\n'
        "    rate 1/s\n    send 50 s\n  }\n}\n"
    )
    assert parse(Source("t.scn", text)).phases[0].sends

"""Robustness: no input makes the language raise anything but `ScenarioError` (Hypothesis)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nimbus_scenarios.language.errors import ScenarioError, Source, render_all
from nimbus_scenarios.language.fmt import format_scenario
from nimbus_scenarios.language.grammar import grammar_text
from nimbus_scenarios.language.syntax import MAX_FILE_BYTES, decode, parse
from nimbus_scenarios.pipeline import check, compile_source

ROOT = Path(__file__).resolve().parents[2]
CORPUS = [
    p.read_text(encoding="utf-8")
    for p in sorted((ROOT / "tests" / "data" / "valid").glob("*.scn"))
    + sorted((ROOT / "scenarios").glob("*.scn"))
]

# Every quoted keyword and punctuation of the grammar, read from the grammar file itself.
KEYWORDS = sorted(set(re.findall(r'"([^"\s]+)"', grammar_text())))
VALUES = [
    "0",
    "1",
    "3",
    "0.5",
    "12.5%",
    "100%",
    "5s",
    "1m30s",
    "250ms",
    "2h",
    "20/s",
    "300/m",
    "0/s",
    "150MB",
    "10KB",
    "1GB",
    "2xx",
    "700",
    "5sec",
    "1.5.5",
    "99999999999999999999999999999999/s",
    '"x"',
    '"/work"',
    '"http://svc.example"',
    '"a\\"b"',
    '"bad \\q"',
    '"',
    "$peak",
    "$nope",
    'env("X")',
    "work",
    "health",
    "a",
    "b",
    "#c",
    "-",
    "@",
    "\t",
    "{",
    "}",
    "\n",
    "\n\n",
    "->",
]
TOKENS = KEYWORDS + VALUES


def outcome(text: str) -> None:
    """Run the whole language on `text`; only `ScenarioError` may escape."""
    source = Source("fuzz.scn", text)
    try:
        checked = check(source)
    except ScenarioError:
        event("refused by the syntax stage")
        return
    render_all(source, checked.diagnostics)
    format_scenario(checked.scenario, source)
    if checked.errors:
        event("refused by validation")
        with pytest.raises(ScenarioError):
            compile_source(source)
        return
    event("compiled")
    assert compile_source(source).phases


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    """Any text is either a scenario or a `ScenarioError`, never another exception."""
    outcome(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=80), st.sampled_from([" ", "\n", ""]))
def test_token_soup(tokens: list[str], glue: str) -> None:
    """Sequences of the language's own words reach deep into the parser without a crash."""
    outcome(glue.join(["scenario", '"x"', "{", *tokens]))


@st.composite
def mutated_corpus(draw: st.DrawFn) -> str:
    """A valid scenario with a few of its words replaced, deleted, duplicated or inserted."""
    words = re.split(r"( |\n)", draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(words) - 1))
        action = draw(st.sampled_from(["replace", "delete", "insert", "duplicate"]))
        if action == "replace":
            words[index] = draw(st.sampled_from(TOKENS))
        elif action == "delete":
            del words[index]
        elif action == "insert":
            words.insert(index, draw(st.sampled_from(TOKENS)) + " ")
        else:
            words.insert(index, words[index])
        if not words:
            break
    return "".join(words)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_corpus())
def test_mutated_scenarios(text: str) -> None:
    """Near-valid scenarios get through validation and compilation without a crash."""
    outcome(text)


@settings(max_examples=150, deadline=None)
@given(st.binary())
def test_arbitrary_bytes_decode(data: bytes) -> None:
    """Any bytes decode to a `Source` with `\n` line endings, or raise `ScenarioError` at the
    first NUL or invalid byte, whichever comes first, with its line in the rendered text."""
    nul = data.find(b"\x00")
    try:
        bad = -1
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start
    if nul != -1 or bad != -1:
        first = min(x for x in (nul, bad) if x != -1)
        with pytest.raises(ScenarioError) as raised:
            decode("fuzz.scn", data)
        (problem,) = raised.value.diagnostics
        expected = "this is a binary file" if first == nul else "not UTF-8 text"
        assert problem.message.startswith(expected)
        before = data[:first].decode("utf-8").removeprefix("\ufeff")
        lines = before.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        assert (problem.span.line, problem.span.column) == (len(lines), len(lines[-1]) + 1)
        assert str(raised.value).startswith(f"fuzz.scn:{len(lines)}:{len(lines[-1]) + 1}: ")
        return
    source = decode("fuzz.scn", data)
    assert "\r" not in source.text
    expected_text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    assert source.text == expected_text
    outcome(source.text)


@pytest.mark.parametrize("depth", [10, 1000, 50_000])
def test_deep_nesting_is_a_syntax_error(depth: int) -> None:
    """Braces nested thousands deep give a syntax error, not a recursion error."""
    text = 'scenario "x" {' + "{" * depth + "}" * (depth + 1)
    with pytest.raises(ScenarioError, match="unexpected `\\{`"):
        parse(Source("deep.scn", text))
    unclosed = 'scenario "x" {\n  phase "p" 1s {\n' + "  settings {\n" * depth
    with pytest.raises(ScenarioError):
        parse(Source("deep.scn", unclosed))


def test_huge_text_is_refused_before_parsing() -> None:
    """Text over the limit (128 KB) is refused as a whole instead of being parsed; text of
    exactly the limit is parsed."""
    text = 'scenario "x" {\n' + "# filler\n" * 15_000 + "}\n"
    assert len(text) > MAX_FILE_BYTES
    with pytest.raises(ScenarioError, match="larger than 128 KB"):
        parse(Source("big.scn", text))
    head = 'scenario "x" {\n  target "http://h"\n'
    fits = head + "#" * (MAX_FILE_BYTES - len(head) - 3) + "\n}\n"
    assert len(fits) == MAX_FILE_BYTES
    assert parse(Source("fits.scn", fits)).name.string == "x"


def test_long_values_are_bounded() -> None:
    """A 100 000-digit number and a 100 000-character line fail cleanly and render briefly."""
    text = 'scenario "x" {\n  request a = GET "/"\n  phase "p" ' + "9" * 100_000 + "s {\n"
    text += "    idle\n  }\n}\n"
    source = Source("long.scn", text)
    (problem,) = check(source).errors
    assert problem.message == "the number `9999999999999999999999999999999999999...` is too long"
    shown = render_all(source, [problem])
    assert len(shown) < 600

"""Rendering of diagnostics: a hint is always "did you mean", advice is shown as written."""

from __future__ import annotations

from nimbus_scenarios.language.errors import Diagnostic, Source, render
from nimbus_scenarios.language.nodes import Span

SOURCE = Source("x.scn", "    expect raedy replicas >= 2\n")


def test_two_word_hint_says_did_you_mean() -> None:
    """A hint of two words is a suggestion like any other, not a sentence shown bare."""
    shown = render(SOURCE, Diagnostic("unknown", Span(1, 12, 1, 26), hint="ready replicas"))
    assert shown.endswith("^^^^^^^^^^^^^^ did you mean `ready replicas`?")


def test_advice_is_shown_as_written() -> None:
    """Advice is a sentence of its own, after the hint when there is one."""
    diagnostic = Diagnostic("bad", Span(1, 5, 1, 11), hint="expect", advice="then a subject")
    assert render(SOURCE, diagnostic).endswith("^^^^^^ did you mean `expect`? then a subject")
    alone = Diagnostic("bad", Span(1, 5, 1, 11), advice="use straight quotes")
    assert render(SOURCE, alone).endswith("^^^^^^ use straight quotes")


def test_hint_without_a_place() -> None:
    """A diagnostic with no place (a `--set` name) shows its hint on a line of its own."""
    shown = render(SOURCE, Diagnostic("no param `paek`", hint="peak"))
    assert shown == "x.scn: error: no param `paek`\n  did you mean `peak`?"

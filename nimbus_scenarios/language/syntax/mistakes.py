"""Syntax's error step, first part: mistakes a first-time user makes, recognised from the text.

lark only says which character or token it could not take; these checks look at the text at
that spot and name the mistake when it is unmistakable: curly quotes, an invisible character, a
name left unquoted, `=<` for `<=`, `30 s` for `30s`, `1e3/s` for `1000/s`. Each check reads
only what is at the error position (and the words just before it on the same line), so a check
that does not recognise the text says nothing and `diagnose` gives its general message.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.errors import Diagnostic, Source
from nimbus_scenarios.language.literals import (
    DURATION_UNITS,
    RATE_UNITS,
    SIZE_UNITS,
    exponent_problem,
)

__all__ = ["character_mistake", "token_mistake"]

_CURLY_QUOTES = frozenset("\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f")
_UNITS = "|".join(
    re.escape(unit)
    for unit in sorted(
        [*DURATION_UNITS, *SIZE_UNITS, "%", *(f"/{u}" for u in RATE_UNITS)],
        key=len,
        reverse=True,
    )
)
# A bare number, then blanks, up to the error position; and a unit standing alone after it.
_NUMBER_BEFORE = re.compile(r"(?:^|(?<=[\s,(]))([0-9]+(?:\.[0-9]+)?)[ \t]+$")
_UNIT_AFTER = re.compile(rf"(?:{_UNITS})(?![A-Za-z0-9_])")
# What a value with an exponent is made of (`1e3/s`, `2e-3s`, `1.5E+2%`).
_VALUE_CHAR = re.compile(r"[A-Za-z0-9_.%/+-]")
# The statements whose next word is a name written as a string.
_NAMED_BY_STRING = re.compile(
    r"^\s*(?:scenario|phase|header|watch\s+deployment|"
    r'watch\s+deployment\s+"(?:[^"\\]|\\.)*"\s+namespace)\s+$'
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def character_mistake(source: Source, line: int, column: int) -> Diagnostic | None:
    """The mistake behind a character lark could not read at `line`:`column`, if it is one."""
    checks: tuple[Callable[[str, int, int], Diagnostic | None], ...] = (
        _curly_quotes,
        _invisible,
        _exponent,
        _spaced_unit,
    )
    return _first(checks, source.line(line), line, column - 1)


def token_mistake(
    source: Source,
    token_text: str,
    line: int,
    column: int,
    *,
    comparison_expected: bool,
    string_expected: bool,
) -> Diagnostic | None:
    """The mistake behind a token lark did not expect at `line`:`column`, if it is one; what
    lark expected there decides which mistakes are possible."""
    text = source.line(line)
    index = column - 1
    if text[index : index + len(token_text)] != token_text:
        return None  # a token over several lines (none in this grammar) or a moved position
    checks: list[Callable[[str, int, int], Diagnostic | None]] = [_spaced_unit]
    if comparison_expected:
        checks.append(_reversed_comparison)
    if string_expected:
        checks.append(_unquoted_name)
    return _first(tuple(checks), text, line, index)


def _first(
    checks: tuple[Callable[[str, int, int], Diagnostic | None], ...],
    text: str,
    line: int,
    index: int,
) -> Diagnostic | None:
    if not 0 <= index < len(text):
        return None
    for check in checks:
        found = check(text, line, index)
        if found is not None:
            return found
    return None


def _span(line: int, start: int, end: int) -> n.Span:
    """A span on one line from 0-based `start` to `end` (exclusive)."""
    return n.Span(line, start + 1, line, end + 1)


def _curly_quotes(text: str, line: int, index: int) -> Diagnostic | None:
    """`“http://svc”` (double or single curly quotes, U+2018 to U+201F); also `"http://svc”`,
    a string whose closing quote is curly.

    The advice does not repeat what the quotes hold: it may be a credential header's value."""
    char = text[index]
    if char != '"' and char not in _CURLY_QUOTES:
        return None
    closing = next(
        (i for i in range(index + 1, len(text)) if text[i] in _CURLY_QUOTES or text[i] == '"'),
        None,
    )
    if char == '"':
        if closing is None or text[closing] == '"':
            return None
        return Diagnostic(
            f"this string ends with the curly quote `{text[closing]}`",
            _span(line, index, closing + 1),
            advice=f'use straight quotes: `"` instead of `{text[closing]}`',
        )
    curly = sorted({char, text[closing]} - {'"'}) if closing is not None else [char]
    return Diagnostic(
        f"unexpected curly quote `{char}`",
        _span(line, index, (closing if closing is not None else index) + 1),
        advice='use straight quotes: `"` instead of ' + " and ".join(f"`{q}`" for q in curly),
    )


def _invisible(text: str, line: int, index: int) -> Diagnostic | None:
    """A character that looks like a space or like nothing: named, since it cannot be seen."""
    char = text[index]
    category = unicodedata.category(char)
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    span = _span(line, index, index + 1)
    if category == "Zs":
        return Diagnostic(
            f"unexpected {code} {name}, a space that is not a plain space",
            span,
            advice="type a plain space instead",
        )
    if category in {"Cf", "Zl", "Zp"}:
        return Diagnostic(
            f"unexpected invisible character {code} {name}".rstrip(),
            span,
            advice="delete it (it is often pasted in with copied text)",
        )
    if category == "Cc" and char not in "\t\n\r":
        return Diagnostic(f"unexpected control character {code}", span, advice="delete it")
    return None


def _exponent(text: str, line: int, index: int) -> Diagnostic | None:
    """`1e3/s` stops lark at the `/` (and `2e-3s` at the `-`): the word around it has an
    exponent, which values never have."""
    start = index
    while start > 0 and _VALUE_CHAR.fullmatch(text[start - 1]):
        start -= 1
    end = index
    while end < len(text) and _VALUE_CHAR.fullmatch(text[end]):
        end += 1
    problem = exponent_problem(text[start:end])
    if problem is None:
        return None
    return Diagnostic(problem, _span(line, start, end))


def _spaced_unit(text: str, line: int, index: int) -> Diagnostic | None:
    """`30 s`, `5 /s`, `50 %`: a number and then its unit as a word of its own."""
    number = _NUMBER_BEFORE.search(text[:index])
    unit = _UNIT_AFTER.match(text, index)
    if number is None or unit is None:
        return None
    written = number.group(1) + unit.group()
    return Diagnostic(
        f"a number and its unit are written together: `{written}`",
        _span(line, number.start(1), unit.end()),
        hint=written,
    )


def _reversed_comparison(text: str, line: int, index: int) -> Diagnostic | None:
    """`=<` and `=>`: the comparisons are `<=` and `>=`."""
    pair = text[index : index + 2]
    if pair not in {"=<", "=>"}:
        return None
    return Diagnostic(
        f"`{pair}` is not a comparison", _span(line, index, index + 2), hint=pair[::-1]
    )


def _unquoted_name(text: str, line: int, index: int) -> Diagnostic | None:
    """`phase warmup 60s`, `scenario heavy`, `header Authorization = ...`: the name that
    follows these statements is a string, in double quotes."""
    word = _IDENTIFIER.match(text, index)
    if word is None or not _NAMED_BY_STRING.match(text[:index]):
        return None
    return Diagnostic(
        f"unexpected `{word.group()}`; expected a quoted string",
        _span(line, index, word.end()),
        advice=f'names are quoted strings: `"{word.group()}"`',
    )

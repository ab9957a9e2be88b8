"""Syntax's error step: lark's exceptions turned into one `Diagnostic` a user can act on.

lark reports the terminal names it expected (`RBRACE`, `_NL`, `VALUE`); the diagnostic says them
in the language's words (`}`, end of line, a value), grouped (a comparison, an HTTP method), with
a caret on the token, "did you mean" for a misspelt keyword, and, when the file ends early, where
the block that was never closed began. A first-time user's mistake recognised at the error
position (`mistakes.py`: curly quotes, `=<`, `30 s`, ...) is named instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.errors import Diagnostic, Source, closest
from nimbus_scenarios.language.grammar import parser
from nimbus_scenarios.language.syntax.mistakes import character_mistake, token_mistake

if TYPE_CHECKING:
    from lark import Token

__all__ = ["syntax_diagnostic"]

_COMPARISONS = frozenset({"==", "!=", ">=", "<=", ">", "<"})
_VALUE_TERMINALS = frozenset({"VALUE", "STRING", "PARAM_REF", "ENV", "TRUE", "FALSE"})
_DESCRIBED = {
    "VALUE": "a value",
    "STRING": "a string",
    "PARAM_REF": "a `$param`",
    "NAME": "a name",
    "_NL": "end of line",
    "$END": "end of file",
    "<END-OF-FILE>": "end of file",  # lark's name when nothing may follow (text after the `}`)
}


# `of` just before the unexpected token: a per-request scope whose request name is missing.
_AFTER_OF = re.compile(r"(?:^|\s)of\s*$")


def syntax_diagnostic(source: Source, exc: Any) -> Diagnostic:
    """The diagnostic for one of lark's `UnexpectedInput` errors raised parsing `source`."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    if isinstance(exc, UnexpectedCharacters):
        return _unexpected_character(source, exc)
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        return _unexpected_token(source, exc.token, set(exc.expected))
    expected = set(getattr(exc, "expected", ()) or ())
    if isinstance(exc, UnexpectedEOF | UnexpectedToken):
        return _unexpected_end(source, expected)
    return Diagnostic(str(exc).splitlines()[0])  # pragma: no cover - lark has no other kinds


def _unexpected_character(source: Source, exc: Any) -> Diagnostic:
    line, column = exc.line, exc.column
    char = source.text[exc.pos_in_stream] if exc.pos_in_stream < len(source.text) else ""
    span = n.Span(line, column, line, column + 1)
    mistake = character_mistake(source, line, column)
    if mistake is not None:
        return mistake
    if char == '"':
        return Diagnostic('unterminated string: add the closing `"` on this line', span)
    if char == "-":
        return Diagnostic(
            "unexpected `-`: negative values are not allowed (use `->` in ramps)", span
        )
    if char == "$":
        return Diagnostic("`$` must be followed by a param name, as in `$peak`", span)
    shown = char if char.isprintable() and not char.isspace() else repr(char)
    return Diagnostic(f"unexpected character `{shown}`", span)


def _unexpected_token(source: Source, token: Token, expected: set[str]) -> Diagnostic:
    found = str(token)
    span = n.Span(token.line or 0, token.column or 0, token.end_line or 0, token.end_column or 0)
    words = _expected_words(expected)
    keywords = _keywords(expected)
    if expected == {"NAME"} and _AFTER_OF.search(source.line(span.line)[: span.column - 1]):
        return Diagnostic(
            "`of` needs the name of a request template, as in `expect p95 of work < 2s`", span
        )
    patterns = _terminal_patterns()
    mistake = token_mistake(
        source,
        found,
        span.line,
        span.column,
        comparison_expected=any(patterns.get(t) in _COMPARISONS for t in expected),
        string_expected="STRING" in expected,
    )
    if mistake is not None:
        return mistake
    if "NAME" in expected and _is_keyword(token.type) and found.isidentifier():
        return Diagnostic(f"`{found}` is a reserved word and cannot be used as a name here", span)
    hint = closest(found, keywords) if token.type in {"NAME", *_KEYWORD_TYPES()} else None
    if token.type == "_NL":
        what = "end of line"
        span = n.Span(span.line, span.column, span.line, span.column + 1)
    elif token.type == "NAME" and hint:
        what = f"`{found}`"
    else:
        what = f"`{found}`"
    message = f"unexpected {what}; expected {words}"
    if token.type == "_NL" and "RBRACE" not in expected and "_NL" not in expected:
        message = f"this statement is incomplete; expected {words}"
    return Diagnostic(message, span, hint=hint)


def _unexpected_end(source: Source, expected: set[str]) -> Diagnostic:
    opened = _unclosed_brace(source.text)
    lines = source.text.split("\n")
    last = len(lines)
    end = n.Span(last, len(lines[-1]) + 1, last, len(lines[-1]) + 2)
    if opened is not None:
        return Diagnostic(
            f"the file ends before the block opened at line {opened[0]}, "
            f"column {opened[1]} is closed; add `}}`",
            n.Span(opened[0], opened[1], opened[0], opened[1] + 1),
        )
    return Diagnostic(f"the file ends too early; expected {_expected_words(expected)}", end)


def _unclosed_brace(text: str) -> tuple[int, int] | None:
    """Line and column of the innermost `{` never closed (strings and comments skipped)."""
    stack: list[tuple[int, int]] = []
    for match in re.finditer(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[{}]|\n', text):
        token = match.group()
        if token == "{":
            line = text.count("\n", 0, match.start()) + 1
            column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
            stack.append((line, column))
        elif token == "}" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _terminal_patterns() -> dict[str, str]:
    """Terminal name to the literal text of string terminals (keywords and punctuation)."""
    from lark.lexer import PatternStr

    return {
        t.name: t.pattern.value for t in parser().terminals if isinstance(t.pattern, PatternStr)
    }


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _is_keyword(terminal: str) -> bool:
    text = _terminal_patterns().get(terminal)
    return text is not None and _IDENTIFIER.fullmatch(text) is not None


def _KEYWORD_TYPES() -> set[str]:
    return {name for name in _terminal_patterns() if _is_keyword(name)}


def _keywords(expected: Iterable[str]) -> list[str]:
    patterns = _terminal_patterns()
    return [patterns[t] for t in expected if _is_keyword(t)]


def _expected_words(expected: Iterable[str]) -> str:
    patterns = _terminal_patterns()
    names = set(expected)
    words: list[str] = []
    if names & _VALUE_TERMINALS and len(names & _VALUE_TERMINALS) >= 3:
        words.append("a value")
        names -= _VALUE_TERMINALS
    if {"EQUAL", "MORETHAN", "LESSTHAN"} <= names or len(
        [t for t in names if patterns.get(t) in {"==", "!=", ">=", "<=", ">", "<"}]
    ) >= 4:
        words.append("a comparison (`==`, `!=`, `>=`, `<=`, `>`, `<`)")
        names = {t for t in names if patterns.get(t) not in {"==", "!=", ">=", "<=", ">", "<"}}
    methods = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}
    if {patterns.get(t) for t in names} >= methods:
        words.append("an HTTP method (GET, POST, PUT, PATCH, DELETE, HEAD)")
        names = {t for t in names if patterns.get(t) not in methods}
    keywords = sorted(f"`{patterns[t]}`" for t in names if t in patterns)
    others = sorted(_DESCRIBED.get(t, t.lower()) for t in names if t not in patterns)
    words.extend(others)
    words.extend(keywords)
    if len(words) == 1:
        return words[0]
    if len(words) == 2:
        return f"{words[0]} or {words[1]}"
    return "one of " + ", ".join(words)

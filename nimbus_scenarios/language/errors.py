"""Diagnostics and the project's error type for bad scenario input, with their rendering.

Every stage that reads user input reports problems as `Diagnostic`s pointing into a `Source`;
`ScenarioError` carries one or more of them. The rendered form is pinned by golden files:

    heavy.scn:12:5: error: unknown load shape `rmap`
       12 |     rmap 2/s -> $peak
          |     ^^^^ did you mean `ramp`?
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from nimbus_scenarios.errors import UsageError
from nimbus_scenarios.language.nodes import NO_SPAN, Span
from nimbus_scenarios.secrets import MASK, mask_urls_in_text, url_password_spans

__all__ = [
    "MAX_SHOWN_DIAGNOSTICS",
    "Diagnostic",
    "ScenarioError",
    "Severity",
    "Source",
    "closest",
    "render",
    "render_all",
    "summary",
]


class Severity(StrEnum):
    """Errors make a file invalid; warnings are printed and do not change the exit code."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Source:
    """A scenario's text and the name it is reported under (a path, `<string>` or `--set`)."""

    name: str
    text: str
    foreign_newlines: bool = False
    """The file ended lines with `\r\n` or a lone `\r`, read as `\n` (`fmt` rewrites them)."""

    @cached_property
    def _lines(self) -> list[str]:
        return self.text.split("\n")

    def line(self, number: int) -> str:
        """The 1-based line `number` without its line ending ('' when out of range)."""
        if 1 <= number <= len(self._lines):
            return self._lines[number - 1].rstrip("\r")
        return ""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem at one place, with an optional suggestion and an optional piece of advice.

    `hint` is what the user probably meant, written as they would write it (`ready replicas`,
    `5s`): it is always shown as "did you mean `...`?". `advice` is a sentence shown as it is
    ("use straight quotes ..."), for a mistake that no single replacement fixes.
    """

    message: str
    span: Span = NO_SPAN
    hint: str | None = None
    severity: Severity = Severity.ERROR
    advice: str | None = None

    @property
    def suggestion(self) -> str | None:
        """The text after the caret: "did you mean" for the hint, then the advice."""
        parts = [f"did you mean `{self.hint}`?" if self.hint else None, self.advice]
        shown = " ".join(part for part in parts if part)
        return shown or None


class ScenarioError(UsageError):
    """An invalid scenario or `--set` value, with every diagnostic (exit 2)."""

    def __init__(self, source: Source, diagnostics: Sequence[Diagnostic]) -> None:
        self.source = source
        self.diagnostics = tuple(diagnostics)
        super().__init__(render_all(source, self.diagnostics))


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to `word` when one is close enough to be a likely misspelling."""
    pool = sorted(set(candidates))
    found = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if found:
        return found[0]
    lowered = {c.lower(): c for c in pool}
    return lowered.get(word.lower())


_MAX_SHOWN_LINE = 200


def render(source: Source, diagnostic: Diagnostic) -> str:
    """The full text of one diagnostic: location, message, the source line and a caret."""
    span = diagnostic.span
    where = f"{source.name}:{span.line}:{span.column}" if span.line > 0 else source.name
    # A message may quote the input (`unexpected "http://user:pass@host"`): passwords in URLs
    # are masked in it as in the source line below.
    head = f"{where}: {diagnostic.severity}: {mask_urls_in_text(diagnostic.message)}"
    suggestion = diagnostic.suggestion and mask_urls_in_text(diagnostic.suggestion)
    if span.line <= 0:
        return head + (f"\n  {suggestion}" if suggestion else "")
    text = source.line(span.line).expandtabs(1)
    start = max(span.column - 1, 0)
    width = span.end_column - span.column if span.end_line == span.line else len(text) - start
    width = max(width, 1)
    text, start, width = _mask_credentials(text, start, width)
    if len(text) > _MAX_SHOWN_LINE:
        # A huge line (minified or binary input) is cut around the spot so output stays readable.
        left = max(start - 40, 0)
        right = left + _MAX_SHOWN_LINE
        prefix = "..." if left > 0 else ""
        suffix = "..." if right < len(text) else ""
        text = prefix + text[left:right] + suffix
        start = start - left + len(prefix)
        width = min(width, _MAX_SHOWN_LINE)
    text = _visible(text)
    gutter = str(span.line)
    pad = " " * len(gutter)
    # The caret line is padded by what the terminal shows, not by characters: a CJK character
    # or an emoji takes two columns, a combining mark none.
    caret = " " * _width(text[:start]) + "^" * max(_width(text[start : start + width]), 1)
    if suggestion:
        caret += f" {suggestion}"
    return f"{head}\n {gutter} | {text}\n {pad} | {caret}"


def _visible(text: str) -> str:
    """`text` safe to print on a terminal: control characters (a NUL, an escape) as their
    Control Pictures symbols, one character each so positions are kept."""
    return text.translate(_CONTROL_PICTURES)


_CONTROL_PICTURES = {code: 0x2400 + code for code in range(0x20)} | {0x7F: 0x2421}
_CONTROL_PICTURES |= dict.fromkeys(range(0x80, 0xA0), 0xFFFD)  # C1 controls: no symbol of their own


def _width(text: str) -> int:
    """The columns `text` takes in a terminal: East Asian wide and fullwidth characters (CJK,
    most emoji) two, combining marks and format characters (zero-width space, joiners,
    variation selectors) none, the rest one."""
    total = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in {"Mn", "Me", "Cf"}:
            continue
        total += 2 if unicodedata.east_asian_width(char) in {"W", "F"} else 1
    return total


# A credential header written with a literal value (`header "Cookie" = "..."`), as far as one
# line shows it; the value may be unterminated (the error may be about that very string), and
# the name or the value may be written with the mistakes a syntax error is about: the name
# unquoted, either in curly quotes.
_CREDENTIAL = re.compile(
    r'(?i)\bheader\s+["\u201c\u201d]?(?:authorization|proxy-authorization|cookie)["\u201c\u201d]?'
    r'\s*=\s*(?P<value>"(?:[^"\\]|\\.)*"?|[\u201c\u201d][^"\u201c\u201d]*[\u201c\u201d"]?)'
)
_MASK = f'"{MASK}"'


def _mask_credentials(text: str, start: int, width: int) -> tuple[str, int, int]:
    """The source line with literal credential header values shown as `"***"` and URL
    passwords as `***`, and the caret's start and width moved to match (a caret inside a value
    points at the mask)."""
    spans = [(*m.span("value"), _MASK) for m in _CREDENTIAL.finditer(text)]
    spans += [
        (low, high, MASK)
        for low, high in url_password_spans(text)
        if not any(a <= low < b for a, b, _ in spans)  # already inside a masked header value
    ]
    end = start + width
    for low, high, mask in sorted(spans, reverse=True):  # right to left: spans stay valid
        shift = (high - low) - len(mask)
        text = text[:low] + mask + text[high:]
        if start >= high:
            start -= shift
        elif start > low:
            start = low
        if end >= high:
            end -= shift
        elif end > low:
            end = low + len(mask)
    return text, start, max(end - start, 1)


def summary(diagnostic: Diagnostic) -> str:
    """One diagnostic on one line without the file's name: `line 12: message (did you mean
    ...)`, or the message alone when it has no place. For a list of warnings in `plan`."""
    where = f"line {diagnostic.span.line}: " if diagnostic.span.line > 0 else ""
    suggestion = f" ({diagnostic.suggestion})" if diagnostic.suggestion else ""
    return mask_urls_in_text(f"{where}{diagnostic.message}{suggestion}")


MAX_SHOWN_DIAGNOSTICS = 50
"""At most this many diagnostics are printed for one file; a line says how many more there are.
Each shows its source line, so thousands of them on one long line (a `send` of thousands of
templates with bad weights) would cost time quadratic in the file, and nobody reads past the
first screens: they are the same mistake repeated."""


def render_all(source: Source, diagnostics: Iterable[Diagnostic]) -> str:
    """The diagnostics rendered, in source order, separated by blank lines: the first
    `MAX_SHOWN_DIAGNOSTICS` of them, and then how many more there are."""
    ordered = sorted(diagnostics, key=lambda d: (d.span.line, d.span.column))
    shown = [render(source, d) for d in ordered[:MAX_SHOWN_DIAGNOSTICS]]
    hidden = len(ordered) - MAX_SHOWN_DIAGNOSTICS
    if hidden > 0:
        more = f"problem{'s' if hidden > 1 else ''}"
        shown.append(f"{source.name}: {hidden:,} more {more} not shown")
    return "\n\n".join(shown)

"""Syntax's first step: scenario bytes to a `Source`, and the inputs refused before lark sees them.

A file that is missing, a directory, binary, not UTF-8, empty or huge is refused here with one
plain diagnostic, and so is text with more phases than validation allows: parsing such input
would be slow at best, and lark's own error for it would say nothing a user can act on.
"""

from __future__ import annotations

import re
from pathlib import Path

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.errors import Diagnostic, ScenarioError, Source
from nimbus_scenarios.language.vocabulary import MAX_PHASES

__all__ = ["MAX_FILE_BYTES", "decode", "read_source", "refuse_unparseable"]

MAX_FILE_BYTES = 128 * 1024
"""Scenario files are hand-written (the built-in ones are under 2 KB); anything larger is
refused rather than parsed slowly. Parsing costs a few microseconds per token, and a line such
as `send 1% a, 1% b, ...` packs a token in every two or three bytes: at 128 KB the densest
valid file still validates and plans in about a second (bench/language.py measures it)."""

_LIMIT_TEXT = f"{MAX_FILE_BYTES // 1024} KB"


def read_source(path: str | Path) -> Source:
    """Read a scenario file as UTF-8 text, refusing missing, huge and binary files clearly.

    A regular file's size is known before it is read; a device or a pipe (`/dev/zero`, a FIFO,
    `<(...)`) tells nothing, so at most one byte over the limit is ever read."""
    name = str(path)
    file = Path(path)
    limit = f"scenario files are limited to {_LIMIT_TEXT}"
    try:
        size = file.stat().st_size
        if file.is_dir():
            raise _fail(name, f"`{name}` is a directory, not a scenario file")
        if size > MAX_FILE_BYTES:
            raise _fail(name, f"the file is too large ({_size(size)}); {limit}")
        with file.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise _fail(name, f"the file is larger than {_LIMIT_TEXT}; {limit}")
    except FileNotFoundError:
        raise _fail(name, "no such file") from None
    except PermissionError:
        raise _fail(name, "permission denied") from None
    except OSError as exc:
        raise _fail(name, f"cannot read the file: {exc.strerror or exc}") from None
    return decode(name, data)


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB"
    return f"{size / 1024:.0f} KB"


def decode(name: str, data: bytes) -> Source:
    """Bytes to a `Source` with `\n` line endings, refusing binary content and invalid UTF-8 at
    their line and column.

    `\r\n` and a lone `\r` (old Mac files) are line breaks like `\n`: they become `\n` here, so
    that lark, the line table and every message count the same lines. Columns count characters,
    as lark's do."""
    nul = data.find(b"\x00")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if nul == -1 or nul > exc.start:
            shown = _byte_source(name, data)
            line, column = _place(data[: exc.start])
            raise ScenarioError(
                shown,
                [
                    Diagnostic(
                        f"not UTF-8 text: invalid byte 0x{data[exc.start]:02x} "
                        "(scenario files are UTF-8)",
                        n.Span(line, column, line, column + 1),
                    )
                ],
            ) from None
    if nul != -1:
        line, column = _place(data[:nul])
        raise ScenarioError(
            _byte_source(name, data),
            [
                Diagnostic(
                    "this is a binary file, not scenario text "
                    f"(a NUL byte at line {line}, column {column})",
                    n.Span(line, column, line, column + 1),
                )
            ],
        )
    text = text.removeprefix("\ufeff")
    return Source(name, _lines(text), foreign_newlines="\r" in text)


def _lines(text: str) -> str:
    """`text` with `\r\n` and lone `\r` line breaks as `\n`."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _byte_source(name: str, data: bytes) -> Source:
    """The text of undecodable input, for showing its lines: bad bytes as U+FFFD."""
    return Source(name, _lines(data.decode("utf-8", errors="replace").removeprefix("\ufeff")))


def _place(before: bytes) -> tuple[int, int]:
    """The 1-based line and column (in characters) of the byte that follows `before`, which
    is valid UTF-8."""
    text = _lines(before.decode("utf-8").removeprefix("\ufeff"))
    start = text.rfind("\n") + 1
    return text.count("\n", 0, start) + 1, len(text) - start + 1


def _fail(name: str, message: str) -> ScenarioError:
    return ScenarioError(Source(name, ""), [Diagnostic(message)])


def refuse_unparseable(source: Source) -> None:
    """Raise `ScenarioError` for text too large, empty (or only comments) or with too many
    phases to be worth parsing; return quietly for anything else."""
    if len(source.text.encode("utf-8")) > MAX_FILE_BYTES:
        raise _fail(source.name, f"the scenario text is larger than {_LIMIT_TEXT}")
    if not source.text.strip() or _only_comments(source.text):
        raise ScenarioError(
            source,
            [
                Diagnostic(
                    'the file is empty: expected `scenario "NAME" { ... }`', n.Span(1, 1, 1, 1)
                )
            ],
        )
    _refuse_too_many_phases(source)


_PHASE_LINE = re.compile(r'^[ \t]*phase[ \t]+"', re.MULTILINE)


def _refuse_too_many_phases(source: Source) -> None:
    """Refuse more phases than validation allows before lark parses them all. Counts only
    lines that start with `phase "`, which in a file are always phase statements (strings hold
    no line breaks, comments start with `#`), so it never refuses a file validation would
    accept; validation counts the rest exactly."""
    starts = [m.start() for m in _PHASE_LINE.finditer(source.text)]
    if len(starts) <= MAX_PHASES:
        return
    line = source.text.count("\n", 0, starts[MAX_PHASES]) + 1  # each match starts a line
    text = source.line(line)
    column = len(text) - len(text.lstrip()) + 1
    raise ScenarioError(
        source,
        [
            Diagnostic(
                f"the scenario has {len(starts):,} phases; the limit is {MAX_PHASES:,}",
                n.Span(line, column, line + 1, 1),
            )
        ],
    )


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())

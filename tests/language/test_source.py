"""Byte-level input and where its errors point: NUL bytes, invalid UTF-8, CR and CRLF line
endings, and carets under wide text."""

from __future__ import annotations

from pathlib import Path

import pytest

from nimbus_scenarios.cli import main
from nimbus_scenarios.language.errors import Diagnostic, ScenarioError, Source, render
from nimbus_scenarios.language.nodes import Span
from nimbus_scenarios.language.syntax import decode, parse

SCENARIO = (
    'scenario "x" {',
    '  target "http://svc.example"',
    '  request a = GET "/"',
    '  phase "p" 10s {',
    "    rate 1/s",
    "    send a",
    "  }",
    "}",
)


def _refusal(data: bytes) -> tuple[str, Span]:
    """The one diagnostic `decode` refuses `data` with: its message and span."""
    with pytest.raises(ScenarioError) as raised:
        decode("f.scn", data)
    (problem,) = raised.value.diagnostics
    return problem.message, problem.span


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending_parses_to_the_same_nodes_and_spans(newline: str) -> None:
    """LF, CRLF and lone CR give the same scenario, with the same line and column for each
    node (a CR-only file used to be one line)."""
    lf = parse(decode("f.scn", ("\n".join(SCENARIO) + "\n").encode()))
    other = parse(decode("f.scn", (newline.join(SCENARIO) + newline).encode()))
    assert other == lf
    assert [p.span for p in other.phases] == [p.span for p in lf.phases]
    assert other.phases[0].span.line == 4


def test_mixed_line_endings_each_end_one_line() -> None:
    """`\\r\\n` is one break, not two; a lone `\\r` and `\\n` are one each."""
    source = decode("f.scn", b"a\r\nb\rc\nd\r\r\ne")
    assert source.text == "a\nb\nc\nd\n\ne"
    assert [source.line(i) for i in range(1, 7)] == ["a", "b", "c", "d", "", "e"]
    assert source.foreign_newlines
    assert not decode("f.scn", b"a\nb\n").foreign_newlines


def test_error_line_in_a_cr_only_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An error on the seventh line of a CR-only file is reported at line 7, with that line."""
    lines = [*SCENARIO[:4], "    rate 1/s", "    send a", "    sendd a", "  }", "}"]
    path = tmp_path / "cr.scn"
    path.write_bytes(("\r".join(lines) + "\r").encode())
    assert main(["validate", str(path)]) == 2
    head, shown = capsys.readouterr().err.splitlines()[:2]
    assert head.startswith(f"{path}:7:")
    assert shown == " 7 |     sendd a"


@pytest.mark.parametrize(
    ("data", "line", "column"),
    [
        (b"\x00", 1, 1),
        (b'scenario "x" {\n  target "a"\x00\n}', 2, 13),
        (b'scenario "x" {\r\n  target "\xc3\xa9"\x00', 2, 13),  # columns count characters
        (b"\xef\xbb\xbfs\rcaf\xc3\xa9\r\r   \x00", 4, 4),  # a BOM is not a column; CR ends lines
    ],
)
def test_nul_byte_is_refused_at_its_line_and_column(data: bytes, line: int, column: int) -> None:
    """A NUL byte refuses the file as binary at the NUL's place."""
    message, span = _refusal(data)
    assert message == (
        f"this is a binary file, not scenario text (a NUL byte at line {line}, column {column})"
    )
    assert span == Span(line, column, line, column + 1)


@pytest.mark.parametrize(
    ("data", "byte", "line", "column"),
    [
        (b"\xff", 0xFF, 1, 1),
        (b'scenario "x" {\n  description "\xe6\x97\xa5\xe6\x9c\xac \xc3"\n}', 0xC3, 2, 19),
        (b"a\rb\r\ncaf\xc3\xa9\xe2\x82", 0xE2, 3, 5),  # a cut-off sequence
        (b"ok\n\xc3\x28", 0xC3, 2, 1),
    ],
)
def test_invalid_utf8_is_refused_at_its_line_and_column(
    data: bytes, byte: int, line: int, column: int
) -> None:
    """The first byte that is not UTF-8 is reported at its line and its column in characters."""
    message, span = _refusal(data)
    assert message == f"not UTF-8 text: invalid byte 0x{byte:02x} (scenario files are UTF-8)"
    assert span == Span(line, column, line, column + 1)


def test_first_of_nul_and_bad_byte_is_reported() -> None:
    """With both a NUL and a bad byte, the one that comes first is the one reported."""
    assert _refusal(b"a\x00b\xff")[0].startswith("this is a binary file")
    assert _refusal(b"a\xffb\x00")[0].startswith("not UTF-8 text")


def test_binary_line_is_shown_with_control_pictures() -> None:
    """A binary line is shown with visible symbols for control characters, never raw (an
    escape sequence must not reach the terminal), and the caret under the NUL."""
    with pytest.raises(ScenarioError) as raised:
        decode("f.bin", b"\x7fELF\x1b[2J\x00\x01")
    head, shown, caret = str(raised.value).splitlines()
    assert head.startswith("f.bin:1:9: error: this is a binary file")
    assert shown == " 1 | \u2421ELF\u241b[2J\u2400\u2401"
    assert caret == "   |         ^"
    assert "\x1b" not in str(raised.value)


@pytest.mark.parametrize(
    ("line", "column", "width", "pad", "marks"),
    [
        ('  description "日本語🎉" @', 22, 1, 25, 1),  # 3 CJK and an emoji: 4 columns more
        ('  header "X-名前" = "v"', 10, 6, 9, 8),  # the caret covers the wide characters
        ('  description "\uff54\uff45\uff53\uff54" @', 22, 1, 25, 1),  # fullwidth letters
        ('  description "e\u0301e\u0301" @', 22, 1, 19, 1),  # combining marks take none
        ('  description "a\u200bb" @', 21, 1, 19, 1),  # a zero-width space takes none
        ('\tdescription "x" @', 18, 1, 17, 1),  # a tab is shown as one space
    ],
)
def test_caret_is_padded_by_display_width(
    line: str, column: int, width: int, pad: int, marks: int
) -> None:
    """The caret sits under the spot as a terminal shows the line: wide characters take two
    columns, combining and zero-width ones none."""
    source = Source("w.scn", f"{line}\n")
    shown = render(source, Diagnostic("x", Span(1, column, 1, column + width)))
    caret = shown.splitlines()[2]
    assert caret == "   | " + " " * pad + "^" * marks

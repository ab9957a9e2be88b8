"""`fmt`: a fixed point that means what its input meant and keeps every comment."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from nimbus_scenarios.cli import main
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.language.fmt import format_scenario
from nimbus_scenarios.language.syntax import parse, read_source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.render import plan_json

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = sorted((ROOT / "scenarios").glob("*.scn"))
CORPUS = sorted((ROOT / "tests" / "data" / "valid").glob("*.scn"))
FILES = BUILTIN + CORPUS

# Strings first, so that a `#` inside a string is not taken for a comment.
_LEXEME = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')


def comments(text: str) -> list[str]:
    """Every comment in scenario text, stripped, in order of appearance."""
    return [m.group().strip() for m in _LEXEME.finditer(text) if m.group().startswith("#")]


def fmt(text: str, name: str = "<string>") -> str:
    """The canonical form of scenario text."""
    source = Source(name, text)
    return format_scenario(parse(source), source)


def file_id(path: Path) -> str:
    """A readable test id: `scenarios/heavy` or `valid/spikes`."""
    return f"{path.parent.name}/{path.stem}"


def test_there_are_files_to_format() -> None:
    """The round-trip tests run over all 8 built-ins and the whole valid corpus."""
    assert len(BUILTIN) == 8
    assert len(CORPUS) >= 12


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_fmt_is_idempotent(path: Path) -> None:
    """Formatting formatted text changes nothing: fmt(fmt(x)) == fmt(x)."""
    once = fmt(read_source(path).text)
    assert fmt(once) == once


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_fmt_keeps_the_meaning(path: Path) -> None:
    """The formatted text parses to the same nodes: parse(fmt(x)) == parse(x)."""
    source = read_source(path)
    formatted = Source(source.name, fmt(source.text))
    assert parse(formatted) == parse(source)


@pytest.mark.parametrize("path", CORPUS, ids=file_id)
def test_fmt_keeps_the_plan(path: Path) -> None:
    """A valid file and its formatted text compile to the same plan."""
    source = read_source(path)
    formatted = Source(source.name, fmt(source.text))
    assert plan_json(compile_source(formatted)) == plan_json(compile_source(source))


@pytest.mark.parametrize("path", FILES, ids=file_id)
def test_fmt_keeps_every_comment(path: Path) -> None:
    """Every comment of the input is in the output, as many times as before."""
    text = read_source(path).text
    before = comments(text)
    after = comments(fmt(text))
    assert len(after) == len(before)
    assert sorted(after) == sorted(before)


def test_comment_corpus_keeps_comment_order_and_places() -> None:
    """In the comments corpus file (already in statement order) comments stay in order and place."""
    path = ROOT / "tests" / "data" / "valid" / "comments.scn"
    text = path.read_text(encoding="utf-8")
    out = fmt(text)
    assert comments(out) == comments(text)
    assert len(comments(text)) == 39
    assert '  description "Comments everywhere"  # trailing on a statement\n' in out
    assert '    header "X-A" = "a # not a comment"  # but this is one\n' in out
    assert "    # before the phase's closing brace\n  }\n" in out
    assert out.endswith("}  # after the closing brace\n# after the scenario\n")


def test_builtins_pass_fmt_check(capsys: pytest.CaptureFixture[str]) -> None:
    """`fmt --check` exits 0 on every built-in scenario: they are committed formatted."""
    code = main(["fmt", "--check", *map(str, BUILTIN)])
    captured = capsys.readouterr()
    assert (code, captured.out, captured.err) == (0, "", "")


def test_builtins_are_their_own_canonical_form() -> None:
    """Each built-in equals its formatted text byte for byte."""
    for path in BUILTIN:
        text = path.read_text(encoding="utf-8")
        assert fmt(text) == text, path.name


def test_fmt_check_flags_unformatted_files(capsys: pytest.CaptureFixture[str]) -> None:
    """`fmt --check` exits 1 and names a file whose layout is not canonical."""
    layout = ROOT / "tests" / "data" / "valid" / "layout.scn"
    code = main(["fmt", "--check", str(layout)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err == f"{layout}: would reformat\n"


def test_fmt_prints_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`fmt` prints the canonical text; `fmt --write` rewrites the file so `--check` then passes."""
    copy = tmp_path / "layout.scn"
    shutil.copy(ROOT / "tests" / "data" / "valid" / "layout.scn", copy)
    original = copy.read_text(encoding="utf-8")
    assert main(["fmt", str(copy)]) == 0
    printed = capsys.readouterr().out
    assert printed == fmt(original)
    assert copy.read_text(encoding="utf-8") == original
    assert main(["fmt", "--write", str(copy)]) == 0
    assert capsys.readouterr().err == f"{copy}: reformatted\n"
    assert copy.read_text(encoding="utf-8") == printed
    assert main(["fmt", "--check", str(copy)]) == 0


def test_fmt_normalises_line_endings_bom_and_tabs(tmp_path: Path) -> None:
    """CRLF line endings, a byte-order mark and tabs format to the same text as clean input."""
    clean = (ROOT / "scenarios" / "heavy.scn").read_text(encoding="utf-8")
    messy = "\ufeff" + clean.replace("\n", "\r\n").replace("  ", "\t")
    path = tmp_path / "messy.scn"
    path.write_bytes(messy.encode("utf-8"))
    source = read_source(path)
    assert fmt(source.text) == clean
    assert parse(source) == parse(Source("clean", clean))


def test_fmt_keeps_escapes_and_env() -> None:
    """Strings keep their escapes and `env(...)` stays a reference when formatted."""
    text = (
        'scenario "a \\"quoted\\" name" {\n'
        '  target env("URL")\n'
        "\n"
        '  request a = POST "/x" {\n'
        '    header "X-Tab" = "a\\tb"\n'
        '    body "line\\nnext \\\\ end"\n'
        "  }\n"
        "\n"
        '  phase "p" 1s {\n'
        "    idle\n"
        "  }\n"
        "}\n"
    )
    assert fmt(text) == text


def test_fmt_refuses_invalid_syntax(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`fmt` of a file that does not parse exits 2 with the syntax error and writes nothing."""
    bad = tmp_path / "bad.scn"
    bad.write_text('scenario "x" {\n  rmap 1/s\n}\n', encoding="utf-8")
    code = main(["fmt", "--write", str(bad)])
    captured = capsys.readouterr()
    assert code == 2
    assert f"{bad}:2:3: error: unexpected `rmap`" in captured.err
    assert bad.read_text(encoding="utf-8") == 'scenario "x" {\n  rmap 1/s\n}\n'


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_fmt_check_flags_and_write_fixes_foreign_line_endings(
    newline: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lines are read with `\\n` whatever ends them, but a canonical file with CRLF or lone-CR
    endings is still not canonical: `--check` flags it and `--write` rewrites it with `\\n`."""
    clean = (ROOT / "scenarios" / "heavy.scn").read_text(encoding="utf-8")
    path = tmp_path / "endings.scn"
    path.write_bytes(clean.replace("\n", newline).encode("utf-8"))
    assert main(["fmt", "--check", str(path)]) == 1
    assert main(["fmt", "--write", str(path)]) == 0
    assert path.read_bytes() == clean.encode("utf-8")
    assert main(["fmt", "--check", str(path)]) == 0
    capsys.readouterr()

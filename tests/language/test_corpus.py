"""Golden corpora of the scenario language, run through the real command line.

`tests/data/valid/*.scn` must validate (exit 0) and plan to exactly `<name>.plan.json`;
`tests/data/invalid/*.scn` must fail validation (exit 2) with exactly `<name>.err` on stderr.
A `<name>.args` file beside a scenario holds command-line arguments given after it (`--set`
overrides, one per line), for what only the command line can get wrong.
The golden files are written by `tests/data/regen.py` and checked by hand against the language
page; `tests/plan/test_corpus_arithmetic.py` re-derives the counts in them independently.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from nimbus_scenarios.cli import main
from nimbus_scenarios.language.errors import ScenarioError, Source
from nimbus_scenarios.language.syntax import parse

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
VALID = sorted((DATA / "valid").glob("*.scn"))
INVALID = sorted((DATA / "invalid").glob("*.scn"))


def rel(path: Path) -> str:
    """The path as the golden files spell it (relative to the repository root)."""
    return path.relative_to(ROOT).as_posix()


def args_of(scn: Path) -> list[str]:
    """The arguments `<name>.args` gives after the file (shell words, `#` lines skipped)."""
    extra = scn.with_suffix(".args")
    if not extra.exists():
        return []
    lines = extra.read_text(encoding="utf-8").splitlines()
    return [word for line in lines if not line.startswith("#") for word in shlex.split(line)]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return exit code, stdout and stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_corpora_are_large_enough() -> None:
    """The issue asks for at least 12 valid and 45 invalid scenario files."""
    assert len(VALID) >= 12
    assert len(INVALID) >= 45


def test_every_golden_file_has_its_scenario() -> None:
    """No golden file is left over from a scenario that was renamed or removed."""
    stale = [
        golden
        for pattern in ("valid/*.plan.json", "valid/*.warn", "*/*.args", "invalid/*.err")
        for golden in DATA.glob(pattern)
        if not golden.with_name(golden.name.split(".")[0] + ".scn").exists()
    ]
    assert stale == []


def test_byte_inputs_match_the_regen_script() -> None:
    """The byte-level inputs on disk (NUL, invalid UTF-8, CR and CRLF line endings) are the
    ones regen.py writes."""
    spec = importlib.util.spec_from_file_location("corpus_regen", DATA / "regen.py")
    assert spec is not None
    assert spec.loader is not None
    regen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(regen)
    for name, data in regen.BYTE_INPUTS.items():
        assert (DATA / name).read_bytes() == data


@pytest.mark.parametrize("scn", VALID, ids=lambda p: p.stem)
def test_valid_scenario_plans_to_its_golden_json(
    scn: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`plan --json` of a valid corpus file exits 0 and prints exactly its golden plan."""
    code, out, err = run(capsys, "plan", "--json", rel(scn), *args_of(scn))
    assert (code, err) == (0, "")
    expected = scn.with_suffix(".plan.json").read_text(encoding="utf-8")
    assert out == expected
    assert json.loads(out)["scenario"] == scn.stem


@pytest.mark.parametrize("scn", VALID, ids=lambda p: p.stem)
def test_valid_scenario_validates(scn: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`validate` of a valid corpus file exits 0, says ok, and prints only its golden warnings."""
    code, out, err = run(capsys, "validate", rel(scn), *args_of(scn))
    assert code == 0
    assert out == f"{rel(scn)}: ok\n"
    warn = scn.with_suffix(".warn")
    assert err == (warn.read_text(encoding="utf-8") if warn.exists() else "")


def test_some_valid_scenarios_warn() -> None:
    """At least one valid file exercises warnings that do not fail validation."""
    warned = [p for p in VALID if p.with_suffix(".warn").exists()]
    assert warned
    for scn in warned:
        text = scn.with_suffix(".warn").read_text(encoding="utf-8")
        assert ": warning: " in text
        assert ": error: " not in text


@pytest.mark.parametrize("scn", INVALID, ids=lambda p: p.stem)
def test_invalid_scenario_reports_its_golden_errors(
    scn: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`validate` of an invalid corpus file exits 2 and prints exactly its golden diagnostics."""
    code, out, err = run(capsys, "validate", rel(scn), *args_of(scn))
    assert code == 2
    assert out == ""
    assert err == scn.with_suffix(".err").read_text(encoding="utf-8")
    # Errors in the command line itself (a param given twice) are reported under `--set`.
    assert err.startswith(f"{rel(scn)}:") or (bool(args_of(scn)) and err.startswith("--set:"))
    assert "Traceback" not in err


@pytest.mark.parametrize("scn", INVALID, ids=lambda p: p.stem)
def test_invalid_scenario_cannot_be_planned(scn: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`plan` refuses every invalid corpus file with exit 2 and prints no plan."""
    code, out, err = run(capsys, "plan", "--json", rel(scn), *args_of(scn))
    assert code == 2
    assert out == ""
    assert ": error: " in err


def test_multiple_errors_are_all_reported_in_source_order() -> None:
    """A file with many unrelated problems reports every one of them, sorted by position."""
    text = (DATA / "invalid" / "multiple_errors.err").read_text(encoding="utf-8")
    heads = [line for line in text.splitlines() if ": error: " in line]
    positions = [tuple(int(x) for x in line.split(":")[1:3]) for line in heads]
    assert len(heads) == 12
    assert positions == sorted(positions)
    assert text.endswith("tests/data/invalid/multiple_errors.scn: 12 errors\n")


def test_error_count_line_ignores_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    """A file with warnings and errors counts only the errors on its final line."""
    scn = DATA / "invalid" / "errors_and_warnings.scn"
    code, _, err = run(capsys, "validate", rel(scn))
    assert code == 2
    assert err.count(": warning: ") == 1
    assert err.count(": error: ") == 1
    assert err.endswith(f"{rel(scn)}: 1 error\n")


def test_oversized_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A scenario file over 128 KB is refused with exit 2 before it is parsed; its size is
    given in KB, or in MB from 1 MB up."""
    big = tmp_path / "big.scn"
    filler = "# " + "x" * 1000 + "\n"
    for lines, size in ((140, "137 KB"), (1100, "1.1 MB")):
        big.write_text('scenario "big" {\n' + filler * lines + "}\n", encoding="utf-8")
        code, out, err = run(capsys, "validate", str(big))
        assert (code, out) == (2, "")
        assert err == (
            f"{big}: error: the file is too large ({size}); scenario files are limited to 128 KB\n"
        )


def test_missing_file_and_directory_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path that is missing or a directory gives exit 2 and a one-line error."""
    code, _, err = run(capsys, "validate", str(tmp_path / "nope.scn"))
    assert code == 2
    assert err == f"{tmp_path / 'nope.scn'}: error: no such file\n"
    folder = tmp_path / "dir.scn"
    folder.mkdir()
    code, _, err = run(capsys, "validate", str(folder))
    assert code == 2
    assert err == f"{folder}: error: `{folder}` is a directory, not a scenario file\n"


def test_validate_reports_every_file_and_exits_with_the_worst(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Validating a valid and an invalid file together checks both and exits 2."""
    good, bad = VALID[0], DATA / "invalid" / "rate_zero.scn"
    code, out, err = run(capsys, "validate", rel(good), rel(bad))
    assert code == 2
    assert out == f"{rel(good)}: ok\n"
    assert err == bad.with_suffix(".err").read_text(encoding="utf-8")


SUBPROCESS_CASES = [
    "binary",
    "invalid_utf8",
    "cr_only",
    "deep_nesting",
    "unclosed_block",
    "empty",
    "multiple_errors",
]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_cli_subprocess_prints_golden_errors_without_traceback(name: str) -> None:
    """`python -m nimbus_scenarios validate` in a real process prints the golden text only."""
    scn = DATA / "invalid" / f"{name}.scn"
    done = subprocess.run(
        [sys.executable, "-m", "nimbus_scenarios", "validate", rel(scn)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr == scn.with_suffix(".err").read_text(encoding="utf-8")


def test_console_script_plans_a_valid_file() -> None:
    """The installed `nimbus-scenarios` script prints the golden plan and exits 0."""
    script = Path(sys.executable).with_name("nimbus-scenarios")
    if not script.exists():
        pytest.skip("the console script is not installed next to this interpreter")
    scn = DATA / "valid" / "spikes.scn"
    done = subprocess.run(
        [str(script), "plan", "--json", rel(scn)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == scn.with_suffix(".plan.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("tail", ["", " " + "b" * 300])
def test_long_line_is_cut_around_the_error(tail: str) -> None:
    """A long source line is shown cut around the error, with `...` only where text was cut."""
    line = '  description "' + "a" * 300 + '" @' + tail
    source = Source("long.scn", 'scenario "x" {\n' + line + "\n}\n")
    with pytest.raises(ScenarioError) as raised:
        parse(source)
    head, shown, caret = str(raised.value).splitlines()
    assert head == f"long.scn:2:{line.index('@') + 1}: error: unexpected character `@`"
    text = shown.split(" | ", 1)[1]
    marks = caret.split(" | ", 1)[1]
    assert text.startswith("...a")
    assert text.endswith("..." if tail else "@")
    assert len(text) <= 206
    assert marks.index("^") == text.index("@")
    assert marks.strip() == "^"

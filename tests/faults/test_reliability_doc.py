"""docs/reliability.md against the tests: every test the document names exists (as
`file::test` in tests/faults, or `tests/path/file.py::test` anywhere), and every test of
tests/faults is named in it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
FAULTS = ROOT / "tests" / "faults"
REFERENCE = re.compile(r"`(test_\w+\.py)::(test_\w+)`")
QUALIFIED = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def functions_in(path: Path) -> set[str]:
    """The names of the test functions defined at the top of `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


def defined_tests() -> set[tuple[str, str]]:
    """(file, function) of every test function in tests/faults."""
    return {
        (path.name, name)
        for path in sorted(FAULTS.glob("test_*.py"))
        for name in functions_in(path)
    }


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The body rows of the first table under `heading`, as lists of cells."""
    section = text.split(f"\n{heading}\n", 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("## "):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows[1:]  # without the header row


def test_every_named_test_exists() -> None:
    """Each `file::test` the document names is a test function in that file of tests/faults."""
    named = set(REFERENCE.findall(DOC.read_text(encoding="utf-8")))
    assert named, "no test references found"
    missing = named - defined_tests()
    assert not missing, f"docs/reliability.md names tests that do not exist: {sorted(missing)}"


def test_every_test_named_by_its_path_exists() -> None:
    """Each `tests/.../file.py::test` the document names is a test function in that file."""
    named = set(QUALIFIED.findall(DOC.read_text(encoding="utf-8")))
    assert named, "no path-qualified test references found"
    missing = {
        (path, name)
        for path, name in named
        if not (ROOT / path).is_file() or name not in functions_in(ROOT / path)
    }
    assert not missing, f"docs/reliability.md names tests that do not exist: {sorted(missing)}"


def test_every_fault_test_is_documented() -> None:
    """Each test of tests/faults (but this file's) is named somewhere in the document."""
    named = set(REFERENCE.findall(DOC.read_text(encoding="utf-8")))
    own = Path(__file__).name
    undocumented = {t for t in defined_tests() if t[0] != own} - named
    assert not undocumented, f"add to docs/reliability.md: {sorted(undocumented)}"


def test_the_fault_matrix_is_a_table_of_fault_behaviour_and_test() -> None:
    """Every row of the fault matrix has a fault, an expected behaviour naming an exit code or
    outcome, and exactly one test; the matrix covers every matrix test file."""
    rows = table_rows(DOC.read_text(encoding="utf-8"), "## The fault matrix")
    assert len(rows) >= 18
    files = set()
    for fault, behaviour, test in rows:
        assert fault
        assert behaviour
        references = REFERENCE.findall(test)
        assert len(references) == 1, test
        files.add(references[0][0])
    matrix = {"test_target.py", "test_collector.py", "test_kube.py", "test_signals.py"}
    assert matrix | {"test_results_path.py"} <= files


def test_the_stage_table_names_one_test_per_stop() -> None:
    """Every row of the stage-by-stage table has a stop, its expected behaviour and exactly one
    test named by its path."""
    rows = table_rows(DOC.read_text(encoding="utf-8"), "## A stop, stage by stage")
    assert len(rows) >= 5
    for stop, behaviour, test in rows:
        assert stop
        assert behaviour
        assert len(QUALIFIED.findall(test)) == 1, test

"""Results that travel through a pod log (`run --print-results`, `merge LOG`), as child
processes: a log whose results lines are damaged is refused by `merge` (exit 2, naming the run,
the shard and the chunk, nothing written, no traceback); a run whose results cannot be written
still prints them as lines that `merge` reads; a run with stdout closed says the lines went
nowhere and keeps its exit code."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from nimbus_scenarios.results.io import load_results
from nimbus_scenarios.results.logwire import PREFIX, encode_lines, load_documents
from tests.support.cli import (
    assert_no_traceback,
    assert_outcome,
    run_cli,
    run_cli_without_stdout,
    write_scenario,
)
from tests.support.http import HttpServer
from tests.support.logs import forge, longest_results, pod_log

SCENARIO = """
scenario "printed" {
  request h = GET "/h"
  phase "load" 1s {
    rate 10/s
    send h
  }
  expect errors < 1%
}
"""


def _drop_chunk_3(lines: list[str]) -> list[str]:
    return lines[:2] + lines[3:]


def _flip_in_chunk_3(lines: list[str]) -> list[str]:
    line = lines[2]
    return [*lines[:2], line[:-9] + ("A" if line[-9] != "A" else "B") + line[-8:], *lines[3:]]


def _cut_chunk_3(lines: list[str]) -> list[str]:
    return [*lines[:2], lines[2][:5000], *lines[3:]]


def _wrong_sha256(lines: list[str]) -> list[str]:
    wrong = hashlib.sha256(b"not this document").hexdigest()
    return [forge(line, sha256=wrong) for line in lines]


DAMAGE: dict[str, tuple[Callable[[list[str]], list[str]], str]] = {
    "missing": (_drop_chunk_3, "chunk 3 of {n} is missing"),
    "flipped": (_flip_in_chunk_3, "chunk 3/{n} is corrupt (line 5: its crc32 does not match)"),
    "truncated": (_cut_chunk_3, "chunk 3/{n} is corrupt (line 5: its crc32 does not match)"),
    "checksum": (_wrong_sha256, "its chunks do not add up to the document"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_merge_refuses_a_log_with_a_damaged_results_chunk(tmp_path: Path, case: str) -> None:
    """The longest built-in scenario's results as lines in a pod's log, one of them left out,
    changed, cut, or all of them naming another payload's sha256: `merge LOG` exits 2 naming
    the run and the chunk, writes nothing and prints no traceback."""
    results = longest_results()
    lines = list(encode_lines(results))
    damage, expected = DAMAGE[case]
    log = tmp_path / "pod.log"
    log.write_text("".join(f"{line}\n" for line in pod_log(damage(lines))), encoding="utf-8")
    output = tmp_path / "merged.json"
    finished = run_cli("merge", str(log), "-o", str(output))
    assert finished.code == 2, finished.stderr
    assert f"{log}: " in finished.stderr
    assert f"results of run {results.run_id}" in finished.stderr
    assert expected.format(n=len(lines)) in finished.stderr
    assert_no_traceback(finished.stderr)
    assert_no_traceback(finished.stdout)
    assert not output.exists()


def test_printed_results_survive_an_unwritable_results_file(
    server: HttpServer, tmp_path: Path
) -> None:
    """`--results /dev/full --print-results` (a pod whose disk is full or read-only): one
    stderr line, no JSON fallback, the results as `nimbus-results` lines on stdout, which
    `merge` reads from the saved log; the exit code is the verdict's."""
    full = Path("/dev/full")
    if not full.is_char_device():
        pytest.skip("no /dev/full on this system")
    scenario = write_scenario(tmp_path, SCENARIO)
    finished = run_cli(
        "run", str(scenario), "--url", server.url, "--results", str(full), "--print-results"
    )
    assert "cannot write results to /dev/full: No space left on device; they are printed to " in (
        finished.stderr
    )
    assert '"schema_version"' not in finished.stdout
    log = tmp_path / "pod.log"
    log.write_text(finished.stdout + finished.stderr, encoding="utf-8")
    (document,) = load_documents(log)
    saved = tmp_path / "from-log.json"
    assert run_cli("merge", str(log), "-o", str(saved)).code == 0
    outcome = assert_outcome(finished, saved, code=0, verdict="passed")
    assert outcome["totals"]["sent"] == document.totals.sent == 10


def test_print_results_with_stdout_closed_says_so(server: HttpServer, tmp_path: Path) -> None:
    """`run --print-results >&-`: the run is judged and written, stderr says the results were
    not printed and where they are, no traceback, exit 0."""
    scenario = write_scenario(tmp_path, SCENARIO)
    results = tmp_path / "results.json"
    argv = ["run", str(scenario), "--url", server.url, "--results", str(results)]
    process = run_cli_without_stdout(*argv, "--print-results")
    assert process.code == 0, process.stderr
    assert_no_traceback(process.stderr)
    assert f"stdout is closed, the results were not printed; they are in {results}" in (
        process.stderr
    )
    assert load_results(results).totals.sent == 10
    assert PREFIX not in process.stderr

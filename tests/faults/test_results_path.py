"""Results that cannot be written: a full disk (`/dev/full`) and a read-only place. The run's
verdict and exit code stand, stderr says why in one line, and the whole results document goes to
stdout as JSON instead."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import Finished, assert_outcome, run_cli, write_scenario
from tests.support.http import HttpServer

SCENARIO = """
scenario "unwritable" {
  request h = GET "/h"
  phase "load" 1s {
    rate 10/s
    send h
  }
  expect errors < 1%
}
"""


def rescued(finished: Finished, directory: Path) -> Path:
    """The results document printed on stdout, saved to a file so it can be loaded.

    stdout also carries the run's structured log lines (JSON objects too): the results are the
    one line holding a `schema_version`.
    """
    documents = [
        line
        for line in finished.stdout.splitlines()
        if line.startswith("{") and '"schema_version"' in line
    ]
    assert len(documents) == 1, finished.stdout[-2000:]
    saved = directory / "from-stdout.json"
    saved.write_text(documents[0], encoding="utf-8")
    return saved


def test_results_on_a_full_disk_go_to_stdout(server: HttpServer, tmp_path: Path) -> None:
    """`--results /dev/full` (every write: ENOSPC): a clear error, the results JSON on stdout."""
    full = Path("/dev/full")
    if not full.is_char_device():
        pytest.skip("no /dev/full on this system")
    scenario = write_scenario(tmp_path, SCENARIO)
    finished = run_cli("run", str(scenario), "--url", server.url, "--results", str(full))
    assert "cannot write results to /dev/full: No space left on device" in finished.stderr
    assert "printing them to stdout instead" in finished.stderr
    document = assert_outcome(finished, rescued(finished, tmp_path), code=0, verdict="passed")
    assert document["phases"][0]["sent"] == 10
    assert full.is_char_device()  # written to, never replaced by a regular file


def _writable(directory: Path) -> bool:
    try:
        handle, name = tempfile.mkstemp(dir=directory)
    except OSError:
        return False
    os.close(handle)
    Path(name).unlink()
    return True


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory this process cannot create files in: a 0555 one, or, for root (whom modes do
    not stop), a kernel filesystem such as /sys."""
    made = tmp_path / "read-only"
    made.mkdir()
    made.chmod(0o555)
    try:
        if not _writable(made):
            yield made
            return
        for system in (Path("/sys"), Path("/proc")):
            if system.is_dir() and not _writable(system):
                yield system
                return
        pytest.skip("no directory here refuses this process's writes")
    finally:
        made.chmod(0o755)


def test_results_in_a_read_only_place_go_to_stdout(
    server: HttpServer, tmp_path: Path, read_only_dir: Path
) -> None:
    """An unwritable --results directory: a clear error, the results JSON on stdout, exit 0."""
    scenario = write_scenario(tmp_path, SCENARIO)
    results = read_only_dir / "nimbus-faults.json"
    finished = run_cli("run", str(scenario), "--url", server.url, "--results", str(results))
    assert f"cannot write results to {results}" in finished.stderr
    assert "printing them to stdout instead" in finished.stderr
    document = assert_outcome(finished, rescued(finished, tmp_path), code=0, verdict="passed")
    assert document["phases"][0]["sent"] == 10
    assert not results.exists()
    assert not [p for p in read_only_dir.iterdir() if p.name.startswith(".nimbus-faults")]


def test_results_under_a_file_go_to_stdout(server: HttpServer, tmp_path: Path) -> None:
    """A --results path under a regular file (not a directory): a clear error, JSON on stdout."""
    scenario = write_scenario(tmp_path, SCENARIO)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory\n", encoding="utf-8")
    results = blocker / "results.json"
    finished = run_cli("run", str(scenario), "--url", server.url, "--results", str(results))
    assert f"cannot write results to {results}" in finished.stderr
    document = assert_outcome(finished, rescued(finished, tmp_path), code=0, verdict="passed")
    assert document["scenario"] == "unwritable"


def test_reports_on_a_full_disk_fail_cleanly(server: HttpServer, tmp_path: Path) -> None:
    """`--html /dev/full --junit /dev/full`: one stderr line, the results file and exit code
    unaffected, the device left a device."""
    full = Path("/dev/full")
    if not full.is_char_device():
        pytest.skip("no /dev/full on this system")
    scenario = write_scenario(tmp_path, SCENARIO)
    results = tmp_path / "results.json"
    finished = run_cli(
        "run", str(scenario), "--url", server.url, "--results", str(results),
        "--html", str(full), "--junit", str(full),
    )  # fmt: skip
    assert "cannot write a report" in finished.stderr
    assert "No space left on device" in finished.stderr
    document = assert_outcome(finished, results, code=0, verdict="passed")
    assert document["phases"][0]["sent"] == 10
    assert full.is_char_device()

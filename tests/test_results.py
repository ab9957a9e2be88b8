"""The results document: its required fields (a contract with other tools), the atomic write
and reading it back."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from nimbus_scenarios.results import (
    EXPECTATION_FIELDS,
    PHASE_FIELDS,
    REQUIRED_FIELDS,
    SCHEMA_VERSION,
    ResultsError,
    load_results,
    write_results,
)
from tests.conftest import HttpServer, run_text

TOP = {"schema_version", "run_id", "scenario", "verdict", "exit_code", "trace_id", "phases"}
TOP |= {"expectations", "replicas"}
PHASE = {"name", "start_s", "end_s", "target_rate", "achieved_rate", "scheduled", "sent"}
PHASE |= {"dropped", "succeeded", "failed", "latency_ms"}
LATENCY = {"p50", "p90", "p95", "p99", "max", "mean"}
EXPECTATION = {"text", "scope", "verdict", "observed", "met_at_s"}


@pytest.fixture(scope="module")
def document(module_server: HttpServer) -> dict[str, Any]:
    """The results of a short two-phase run with expectations in both scopes."""
    outcome = run_text(
        """
scenario "doc" {
  request h = GET "/h"
  phase "one" 1s {
    rate 10/s
    send h
    expect errors == 0%
  }
  phase "two" 1s {
    users 2 think 100ms
    send h
  }
  expect p99 < 5s
  expect achieved >= 99%
}
""",
        module_server.url,
    )
    assert outcome.exit_code == 0, outcome.document
    return outcome.document


def test_document_has_the_required_fields(document: dict[str, Any]) -> None:
    """Every field the contract names is present, with the phase and expectation fields."""
    assert set(REQUIRED_FIELDS) >= TOP
    assert set(REQUIRED_FIELDS) <= set(document)
    assert set(PHASE_FIELDS) >= PHASE
    assert set(EXPECTATION_FIELDS) >= EXPECTATION
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["scenario"] == "doc"
    assert document["verdict"] == "passed"
    assert document["exit_code"] == 0
    assert isinstance(document["run_id"], str)
    assert document["run_id"]
    assert document["replicas"] == []
    assert [p["name"] for p in document["phases"]] == ["one", "two"]
    for phase in document["phases"]:
        assert set(PHASE_FIELDS) <= set(phase), phase
        assert set(phase["latency_ms"]) == LATENCY
        assert phase["start_s"] < phase["end_s"]
    assert document["phases"][0]["target_rate"] == 10.0
    assert document["phases"][1]["target_rate"] is None  # closed model: no planned rate
    assert len(document["expectations"]) == 3
    for entry in document["expectations"]:
        assert set(EXPECTATION_FIELDS) <= set(entry), entry
        assert entry["verdict"] == "passed"
    scopes = {e["text"]: e["scope"] for e in document["expectations"]}
    assert scopes == {
        "expect errors == 0%": "one",
        "expect p99 < 5s": "scenario",
        "expect achieved >= 99%": "scenario",
    }


def test_document_round_trips_through_a_file(document: dict[str, Any], tmp_path: Path) -> None:
    """Written results read back equal, and leave no temporary file behind."""
    path = tmp_path / "out" / "doc.json"
    assert write_results(document, path) == path
    assert load_results(path) == json.loads(json.dumps(document))
    assert [p.name for p in path.parent.iterdir()] == ["doc.json"]


def test_results_file_mode_follows_the_umask(document: dict[str, Any], tmp_path: Path) -> None:
    """The results file gets the mode open() would give it (not the temp file's 0600)."""
    previous = os.umask(0o022)
    try:
        path = write_results(document, tmp_path / "doc.json")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    """A write that fails half-way leaves the previous results intact and no temp file."""
    path = tmp_path / "doc.json"
    path.write_text('{"old": true}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="JSON"):
        write_results({"bad": float("nan")}, path)
    blocker = tmp_path / "dir.json"
    blocker.mkdir()
    with pytest.raises(IsADirectoryError):  # the final rename onto a directory fails
        write_results({"ok": 1}, blocker)
    assert path.read_text(encoding="utf-8") == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.json", "doc.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("not json", "not a results file"),
        ("[1, 2]", "not a JSON object"),
        ('{"schema_version": 99}', "schema version 99"),
        ('{"schema_version": 1, "run_id": "x"}', "missing fields: scenario"),
    ],
)
def test_load_results_rejects_what_is_not_results(
    tmp_path: Path, content: str | None, message: str
) -> None:
    """Reading back names the problem: missing file, not JSON, wrong version, missing fields."""
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ResultsError, match=message):
        load_results(path)

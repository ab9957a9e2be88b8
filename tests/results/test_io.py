"""The results document on disk: written atomically, read back equal, refused when it is not
a results document of this schema version, with the JSON path of the first wrong field."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest

from nimbus_scenarios.engine.histogram import LatencyHistogram
from nimbus_scenarios.engine.records import SecondLatencySummary, SecondRecord
from nimbus_scenarios.errors import ResultsError
from nimbus_scenarios.results import io
from nimbus_scenarios.results.io import (
    REQUIRED_FIELDS,
    SCHEMA_VERSION,
    from_json,
    load_results,
    to_json,
    write_results,
)
from nimbus_scenarios.results.model import Judgement, Verdict
from tests.support.results import make_results, per_request_results, plan_of, results_of


def judged() -> list[Judgement]:
    """A verdict on each of the factory plan's expectations."""
    plan = plan_of()
    return [Judgement(e, Verdict.PASSED, 1.0, None, "ok") for e in plan.all_expectations]


def test_written_document_reads_back_equal(tmp_path: Path) -> None:
    """write -> load gives an equal document, and writing it again gives the same text."""
    results = results_of(judgements=judged())
    path = write_results(results, tmp_path / "r.json")
    loaded = load_results(path)
    assert loaded == results
    assert to_json(loaded) == path.read_text(encoding="utf-8")


def test_document_names_its_schema_version_and_required_fields(tmp_path: Path) -> None:
    """Version 2 first, then every field other tools rely on."""
    data = json.loads(to_json(results_of(judgements=judged())))
    assert next(iter(data)) == "schema_version"
    assert data["schema_version"] == SCHEMA_VERSION == 2
    assert set(REQUIRED_FIELDS) <= set(data)
    phase = data["phases"][0]
    assert [phase["name"], phase["sent"], phase["failed"]] == ["warm", 20, 1]
    assert [r["name"] for r in phase["requests"]] == ["work", "health"]
    expectation = data["expectations"][0]
    assert expectation["expected"] == ">= 1"
    assert expectation["id"] == 0


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    """A literal credential header is masked in the source, the params and the embedded plan."""
    text = to_json(results_of(judgements=judged()))
    assert "s3cret" not in text
    assert '"value": "***"' in text


def test_expectations_refer_to_the_embedded_plan(tmp_path: Path) -> None:
    """Read back, each judgement holds the plan's own expectation (comparator, value)."""
    loaded = from_json(to_json(results_of(judgements=judged())))
    assert [j.expectation for j in loaded.expectations] == list(loaded.plan.all_expectations)
    assert str(loaded.expectations[0].expectation.comparator) == ">="


def document() -> dict[str, object]:
    """A valid document as JSON data, to break."""
    data: dict[str, object] = json.loads(to_json(results_of(judgements=judged())))
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema_version=1), "version 1 (nimbus-scenarios 0.1) is not read"),
        (lambda d: d.update(schema_version=7), "schema version 7 is not supported"),
        (lambda d: d.pop("phases"), "missing fields: phases"),
        (lambda d: d["phases"][1].update(sent="many"), "$.phases[1].sent: expected a whole"),
        (lambda d: d.update(phases="p"), "$.phases: expected an array, found a string"),
        (lambda d: d["totals"].pop("sent") and d["totals"].update(x=1), "$.totals.x: unknown"),
        (lambda d: d["expectations"][0].update(id=99), "the plan has no expectation 99"),
        (lambda d: d["expectations"][0].update(text="other"), "does not match the plan's"),
        (lambda d: d["expectations"][0].update(verdict="maybe"), "expected one of 'passed'"),
        (lambda d: d.update(exit_code=9), "$.exit_code: expected one of 0, 1, 2, 3, 4"),
        (lambda d: d["stats"].update(phases={}), "$.stats.phases: expected an array"),
        (lambda d: d.pop("stats"), "$.stats: missing"),
        (lambda d: d["phases"][0].update(sent=10**4000), "$.phases[0].sent: a number too large"),
        (lambda d: d["phases"][0].update(target_rate=1e300), "$.phases[0].target_rate: a number"),
        (lambda d: d["seconds"][-1].update(second=10**9), "$.seconds[2].second: expected a sec"),
        (lambda d: d["stats"]["seconds"][0].update(second=-1), "$.stats.seconds[0].second"),
        (lambda d: d["seconds"][1].update(second=0), "after the previous record's (0)"),
    ],
)
def test_a_wrong_document_is_refused_with_its_path(change: object, message: str) -> None:
    """Each broken field is a ResultsError naming what is wrong, and where."""
    data = document()
    change(data)  # type: ignore[operator]
    with pytest.raises(ResultsError) as caught:
        from_json(json.dumps(data), "r.json")
    assert message in str(caught.value)
    assert str(caught.value).startswith("r.json: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "not a JSON object"),
        ("{", "not a results file"),
        ('{"x": NaN}', "NaN is not a number JSON allows"),
        ('{"x": -Infinity}', "-Infinity is not a number JSON allows"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"schema_version": 2, "n": ' + "9" * 5000 + "}", "not a results file"),
    ],
)
def test_text_that_is_no_document_is_refused(text: str, message: str) -> None:
    """Garbage, NaN, Infinity, deep nesting and huge numbers are usage errors, never crashes."""
    with pytest.raises(ResultsError, match=message):
        from_json(text)


def test_a_file_over_the_size_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A results file larger than the limit is refused before parsing."""
    monkeypatch.setattr(io, "MAX_RESULTS_BYTES", 100)
    path = tmp_path / "big.json"
    path.write_text("{" + " " * 200 + "}", encoding="utf-8")
    with pytest.raises(ResultsError, match="larger than"):
        load_results(path)


def test_missing_file_is_a_results_error(tmp_path: Path) -> None:
    """No such file: a ResultsError, not an OSError."""
    with pytest.raises(ResultsError, match="no such file"):
        load_results(tmp_path / "nope.json")


def test_results_file_mode_follows_the_umask(tmp_path: Path) -> None:
    """The atomic write's temp file does not leave the file 0600."""
    old = os.umask(0o022)
    try:
        path = write_results(results_of(), tmp_path / "r.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails midway leaves the previous file as it was and no temp file."""
    path = write_results(results_of(run_id="old"), tmp_path / "r.json")
    before = path.read_text(encoding="utf-8")

    def fail(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="No space"):
        write_results(results_of(run_id="new"), path)
    assert path.read_text(encoding="utf-8") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


@pytest.mark.parametrize(
    ("scenario", "stem"),
    [
        ("heavy", "heavy"),
        ("/srv/x", "_srv_x"),
        ("../../../y", "_.._.._y"),
        ("..", "_"),
        ("", "_"),
        ("a b\x00c\u00e9", "a_b_c_"),
        ("x" * 300, "x" * 100),
    ],
)
def test_the_default_path_is_always_a_file_in_results(scenario: str, stem: str) -> None:
    """Whatever the scenario's name (a document may come from anywhere), the default path is a
    file directly in `results/` with a safe name; the run id is reduced the same way."""
    results = dataclasses.replace(results_of(), scenario=scenario, run_id="../r1")
    path = io.default_results_path(results)
    assert path == Path("results") / f"{stem}-_r1.json"
    assert path.parent == Path("results")


def test_a_file_of_too_many_values_is_refused_unparsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small file dense with values (what costs memory) is refused before parsing; a run's
    own document, with a limit it meets, is read."""
    monkeypatch.setattr(io, "MAX_RESULTS_VALUES", 1000)
    path = tmp_path / "dense.json"
    path.write_text('{"schema_version": 2, "x": [' + "{}," * 1000 + "{}]}", encoding="utf-8")
    with pytest.raises(ResultsError, match=r"more than the 1,000 JSON values .* \(2,006\)"):
        load_results(path)
    document = write_results(results_of(judgements=judged()), tmp_path / "r.json")
    values = sum(document.read_bytes().count(byte) for byte in b"{[,:")
    monkeypatch.setattr(io, "MAX_RESULTS_VALUES", values)
    assert load_results(document) == results_of(judgements=judged())


def test_a_run_document_meets_the_size_limit_before_the_value_limit() -> None:
    """The two limits agree for a long run's document, which is mostly per-second records
    (each with its own latency histogram): it holds fewer values per byte than the limits
    allow, so its size is what bounds it."""
    histogram = LatencyHistogram(2)
    for value_us in (40_000, 55_000, 61_000, 90_000, 250_000):
        histogram.record(value_us)
    latency = SecondLatencySummary(5, 61.0, 250.0, 250.0, 250.0)
    seconds = tuple(SecondRecord(s, 5, 5, 0, 5, 0, latency, histogram.encode()) for s in range(600))
    text = to_json(make_results(LONG_SCENARIO, seconds=seconds))
    values = sum(text.count(c) for c in "{[,:")
    assert len(text) / values > io.MAX_RESULTS_BYTES / io.MAX_RESULTS_VALUES


LONG_SCENARIO = """\
scenario "long" {
  request work = GET "/work"
  phase "p" 10m {
    rate 5/s
    send work
  }
}
"""


def test_template_series_round_trip_and_older_documents_load() -> None:
    """Each template's per-second series is written under `stats.requests` and read back;
    a document written before templates had series (no such key) still loads, with none."""
    results = per_request_results()
    assert [r.name for r in results.stats.requests] == ["work", "health"]
    text = to_json(results)
    assert from_json(text, "r.json") == results
    data = json.loads(text)
    del data["stats"]["requests"]
    older = from_json(json.dumps(data), "r.json")
    assert older.stats.requests == ()
    assert older.stats.seconds == results.stats.seconds


@pytest.mark.parametrize(
    ("index", "second", "message"),
    [
        (0, -1, "$.stats.requests[1].seconds[0].second: expected a second from 0"),
        (0, 10**9, "$.stats.requests[1].seconds[0].second: expected a second from 0"),
        (1, None, "$.stats.requests[1].seconds[1].second: expected a second after"),
    ],
)
def test_template_seconds_are_checked_like_the_runs(
    index: int, second: int | None, message: str
) -> None:
    """A template's seconds must lie within a week, each once, in order, as the run's do
    (`None`: the previous record's second again)."""
    data = json.loads(to_json(per_request_results()))
    seconds = data["stats"]["requests"][1]["seconds"]
    seconds[index]["second"] = seconds[index - 1]["second"] if second is None else second
    with pytest.raises(ResultsError) as caught:
        from_json(json.dumps(data), "r.json")
    assert message in str(caught.value)


def test_the_event_loop_round_trips_and_older_documents_load_without_it() -> None:
    """The loop the engine ran on is written as `event_loop` and read back; a document written
    before it was recorded (no such key) still loads, with None."""
    results = dataclasses.replace(per_request_results(), event_loop="uvloop")
    text = to_json(results)
    data = json.loads(text)
    assert data["event_loop"] == "uvloop"
    assert from_json(text, "r.json") == results
    del data["event_loop"]
    assert from_json(json.dumps(data), "r.json").event_loop is None

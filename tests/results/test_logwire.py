"""`results.logwire`: results documents written as gzip + base64 lines for a pod log and read
back whole, from logs of several pods in any order, with repeated and foreign lines; a missing,
damaged, cut or forged chunk is refused naming the document and the chunk; the inflated
document is bounded like a results file; one-line JSON documents (the old form) still read."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import math
import random
import re
from pathlib import Path

import pytest

from nimbus_scenarios.errors import ResultsError
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.results import io, logwire
from nimbus_scenarios.results.io import to_json
from nimbus_scenarios.results.logwire import (
    CHUNK_CHARS,
    MAX_LINE_CHARS,
    PREFIX,
    documents_in_text,
    encode_lines,
    load_documents,
)
from nimbus_scenarios.results.model import RunResults
from tests.support.logs import as_shard, forge, longest_results, pod_log
from tests.support.results import full_results, results_of

KIB = 1024


def text_of(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def decoded(lines: list[str]) -> list[RunResults]:
    return documents_in_text(text_of(lines), "pods.log")


@pytest.fixture(scope="module")
def longest() -> RunResults:
    """The longest built-in scenario's results, as one shard of two."""
    return as_shard(longest_results(), 0, 2)


@pytest.fixture(scope="module")
def longest_lines(longest: RunResults) -> list[str]:
    return list(encode_lines(longest))


def test_a_document_reads_back_equal_from_its_lines() -> None:
    """A full document → lines → the same document; the lines are deterministic, each starts
    with the prefix, names the run and has only base64 after its fields."""
    results = full_results()
    lines = encode_lines(results)
    assert lines == encode_lines(results)
    assert decoded(list(lines)) == [results]
    for line in lines:
        assert line.startswith(f"{PREFIX} v1 run={results.run_id} shard=")
        assert re.fullmatch(r"[A-Za-z0-9+/=]+", line.rpartition(" ")[2])
        assert "\n" not in line


def test_the_longest_scenario_s_results_fit_a_pod_log(
    longest: RunResults, longest_lines: list[str]
) -> None:
    """`sustained` (30 minutes) played on a manual clock: its document is far over one log
    line (measured: about 680 KB of JSON, 106 KB gzipped, 13 lines), and travels as lines that
    are each under 12,000 characters, well below the kubelet's 16 KiB split."""
    assert longest.duration_s >= 30 * 60
    raw = to_json(longest, indent=None).encode()
    payload = gzip.compress(raw, mtime=0)
    assert len(raw) > 256 * KIB  # over Loki's default line limit, let alone the kubelet's
    assert len(payload) < len(raw) / 3
    assert len(longest_lines) == math.ceil(len(base64.b64encode(payload)) / CHUNK_CHARS) > 1
    assert max(map(len, longest_lines)) <= MAX_LINE_CHARS < 16 * KIB
    assert decoded(longest_lines) == [longest]


def test_two_pods_lines_shuffled_repeated_and_prefixed_reassemble(
    longest: RunResults, longest_lines: list[str]
) -> None:
    """Two pods' logs concatenated, then every line shuffled among the other output, one line
    repeated (a log read twice) and some behind `kubectl logs --prefix --timestamps` text: both
    documents, each equal to what was written."""
    other = as_shard(longest_results(), 1, 2)
    lines = pod_log(longest_lines, "pod-0") + pod_log(list(encode_lines(other)), "pod-1")
    rng = random.Random(7)
    rng.shuffle(lines)
    lines.insert(3, lines[rng.randrange(len(lines))])
    lines = [
        f"[pod/load-{i % 2}/runner] 2025-01-01T00:00:00Z {line}" if i % 3 == 0 else line
        for i, line in enumerate(lines)
    ]
    found = decoded(lines)
    assert sorted(found, key=lambda r: r.run_id) == sorted([longest, other], key=lambda r: r.run_id)


def test_an_intact_copy_replaces_a_damaged_one(longest_lines: list[str]) -> None:
    """A chunk whose data was damaged in one copy is read from another, intact copy."""
    damaged = flip(longest_lines[2], -5)
    assert len(decoded([damaged, *longest_lines])) == 1


def flip(line: str, at: int) -> str:
    """`line` with the character at `at` changed to another of its kind (a digit to a digit, a
    hex letter to a hex letter, any other to a base64 letter): damage a pattern cannot see."""
    at %= len(line)
    old = line[at]
    if old.isdigit():
        new = str((int(old) + 1) % 10)
    elif old in "abcdef":
        new = "b" if old == "a" else "a"
    else:
        new = "B" if old == "A" else "A"
    return line[:at] + new + line[at + 1 :]


def refusal(lines: list[str]) -> str:
    with pytest.raises(ResultsError) as caught:
        decoded(lines)
    assert caught.value.exit_code == ExitCode.USAGE
    return str(caught.value)


def test_a_missing_chunk_is_named(longest: RunResults, longest_lines: list[str]) -> None:
    """Chunks 3, 5 and 6 left out: refused naming the run, the shard and the chunks."""
    n = len(longest_lines)
    kept = [line for i, line in enumerate(longest_lines, start=1) if i not in {3, 5, 6}]
    message = refusal(pod_log(kept))
    assert message.startswith("pods.log: ")
    assert f"run {longest.run_id} shard 0/2" in message
    assert f"chunks 3, 5-6 of {n} are missing" in message


@pytest.mark.parametrize(
    ("field", "offset"),
    [("", -1), ("", -7000), ("sha256=", 20), ("chunk=", 0), ("run=", 3), ("crc32=", 1)],
    ids=["data-end", "data-middle", "sha256", "chunk-number", "run", "crc32"],
)
def test_a_flipped_character_is_named(longest_lines: list[str], field: str, offset: int) -> None:
    """One character changed anywhere in chunk 2's line (log line 4), in its data or in one of
    its fields: its crc32 no longer matches, and the refusal names chunk 2 and line 4 (as
    "chunk 2/N is corrupt", or, when the damage is in the fields that name it, as chunk 2
    missing and line 4 damaged)."""
    line = longest_lines[1]
    at = line.index(field) + len(field) + offset if field else offset
    lines = list(longest_lines)
    lines[1] = flip(line, at)
    message = refusal(pod_log(lines))
    n = len(longest_lines)
    named = (
        f"chunk 2/{n} is corrupt (line 4: its crc32 does not match)",
        f"chunk 2 of {n} is missing",
    )
    assert any(text in message for text in named), message
    assert "line 4" in message


def test_a_truncated_line_is_named(longest_lines: list[str]) -> None:
    """The last chunk's line cut in its data, or in its fields: refused naming the chunk (or
    the log line, and then the chunk as missing)."""
    n = len(longest_lines)
    cut = [*longest_lines[:-1], longest_lines[-1][:-100]]
    assert f"chunk {n}/{n} is corrupt" in refusal(cut)
    cut = [*longest_lines[:-1], longest_lines[-1][:40]]
    message = refusal(cut)
    assert f"line {n}: a `{PREFIX}` line whose fields cannot be read" in message
    assert f"chunk {n} of {n} is missing" in message


def test_a_wrong_checksum_is_refused(longest: RunResults, longest_lines: list[str]) -> None:
    """Lines each intact but naming another payload's sha256: the chunks do not add up."""
    wrong = hashlib.sha256(b"another document").hexdigest()
    message = refusal([forge(line, sha256=wrong) for line in longest_lines])
    assert f"run {longest.run_id} shard 0/2" in message
    assert "its chunks do not add up to the document" in message


def test_conflicting_totals_are_refused(longest_lines: list[str]) -> None:
    """One intact line claiming one chunk more than the others: refused, naming both claims."""
    n = len(longest_lines)
    lines = [*longest_lines[:-1], forge(longest_lines[-1], chunk=f"{n}/{n + 1}")]
    message = refusal(lines)
    assert f"disagree on its number of chunks: {n} (line 1), {n + 1} (line {n})" in message


def test_a_chunk_from_another_document_is_refused(longest_lines: list[str]) -> None:
    """Chunk 2 of another run spliced in under this run's fields: the sha256 catches it."""
    other = encode_lines(as_shard(longest_results(), 1, 2))
    header = longest_lines[1].rpartition(" ")[0].rpartition(" crc32=")[0]
    spliced = forge(f"{header} crc32=00000000 {other[1].rpartition(' ')[2]}")
    message = refusal([longest_lines[0], spliced, *longest_lines[2:]])
    assert "its chunks do not add up to the document" in message


def test_a_single_damaged_line_document_is_not_lost() -> None:
    """A one-line document whose only line is damaged is refused, not skipped silently."""
    (line,) = encode_lines(results_of(run_id="r1"))
    assert "chunk 1 is corrupt" in refusal(["noise", flip(line, -3)])


def test_another_format_version_is_refused() -> None:
    """A line of a later format: refused naming it, not skipped."""
    (line,) = encode_lines(results_of())
    assert "format v2" in refusal([line.replace(f"{PREFIX} v1 ", f"{PREFIX} v2 ")])


def forged_payload(payload: bytes, run: str = "r1") -> list[str]:
    """Lines carrying `payload` (any bytes) with intact fields and a matching sha256."""
    (template,) = encode_lines(results_of(run_id=run))
    data = base64.b64encode(payload).decode()
    head = template.rpartition(" ")[0]
    return [forge(f"{head} {data}", sha256=hashlib.sha256(payload).hexdigest())]


def test_the_inflated_document_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The payload inflates to at most `MAX_RESULTS_BYTES` (here lowered to 1 MiB) and holds at
    most `MAX_RESULTS_VALUES` (here 1,000): 2 MiB of zeros in about 2 KB, a document of many
    values, and trailing bytes after the gzip stream are refused."""
    monkeypatch.setattr(logwire, "MAX_RESULTS_BYTES", 1024 * 1024)
    bomb = gzip.compress(b"0" * (2 * 1024 * 1024), mtime=0)
    assert len(bomb) < 4 * KIB
    assert "inflates past the 1 MiB" in refusal(forged_payload(bomb))
    monkeypatch.setattr(io, "MAX_RESULTS_VALUES", 1_000)
    values = gzip.compress(json.dumps([{}] * 2_000).encode(), mtime=0)
    assert "JSON values a results file may hold" in refusal(forged_payload(values))
    twice = gzip.compress(b"{}", mtime=0) * 2
    assert "not one whole gzip stream" in refusal(forged_payload(twice))


def test_the_document_inside_must_be_the_one_named(longest_lines: list[str]) -> None:
    """Lines naming run `r1` that carry another run's document: refused."""
    payload = gzip.compress(to_json(results_of(run_id="r2"), indent=None).encode(), mtime=0)
    assert "not the one its lines name" in refusal(forged_payload(payload, run="r1"))


def test_one_line_json_documents_still_read(tmp_path: Path) -> None:
    """Logs written before chunked lines: one document per line among other lines (structured
    log lines included), and chunked documents in the same log, in the order they start."""
    first = to_json(results_of(run_id="a"), indent=None)
    third = to_json(results_of(run_id="c"), indent=None)
    log = tmp_path / "pods.log"
    lines = [
        "starting",
        first,
        '{"schema_version": "a log line"',
        *encode_lines(results_of(run_id="b")),
    ]
    log.write_text(text_of([*lines, "noise {", third]), encoding="utf-8")
    assert [r.run_id for r in load_documents(log)] == ["a", "b", "c"]
    (tmp_path / "empty.log").write_text("nothing here\n", encoding="utf-8")
    with pytest.raises(ResultsError, match="no results document"):
        load_documents(tmp_path / "empty.log")


def test_a_results_file_is_read_as_one(tmp_path: Path) -> None:
    """A results file (indented JSON) is one document, read strictly."""
    results = full_results()
    path = io.write_results(results, tmp_path / "r.json")
    assert load_documents(path) == [results]


def test_any_run_id_and_no_shard_fit_the_fields() -> None:
    """A run id of 300 characters, spaces and slashes included, and a document without a shard
    (merged): the fields stay within their limits, and the document reads back equal."""
    results = dataclasses.replace(results_of(), run_id="a b/../" * 43, shard=None)
    lines = encode_lines(results)
    assert all(len(line) <= MAX_LINE_CHARS for line in lines)
    assert " shard=- " in lines[0]
    assert decoded(list(lines)) == [results]

"""Results files from elsewhere, through `merge` and `report`: shards left out, a partial merge,
a merged document merged again, and documents built to crash or exhaust the reader (deep
nesting, a 5,000-digit number, missing or mistyped fields, bad base64 or a zlib bomb in a
histogram, a second a billion seconds in, Infinity, a file of ten million tiny values).

The shards are real: four `run --shard I/4` processes of one scenario (60 requests planned,
15 per shard) against one recording target. Every refusal is exit 2 with a message naming the
file and what is wrong, writes nothing, and prints no traceback.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nimbus_scenarios.results.io import load_results
from tests.support.checks import assert_run_reconciles
from tests.support.cli import Child, Finished, assert_no_traceback, run_cli, write_scenario
from tests.support.http import HttpServer

SCENARIO = """\
scenario "sharded" {
  request hit = GET "/hit"
  phase "steady" 2s {
    rate 30/s
    send hit
  }
  expect achieved >= 99%
  expect errors < 1%
}
"""
SHARDS = 4
PLANNED = 60


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """The four shards' results files of one run (each sent its 15 requests, all answered)."""
    folder = tmp_path_factory.mktemp("shards")
    scenario = write_scenario(folder, SCENARIO, "sharded.scn")
    paths = [folder / f"s{i}.json" for i in range(SHARDS)]
    server = HttpServer().start()
    try:
        # Room for every child to start on a loaded machine: a shard that starts after the
        # common start drops what it missed (late start), and `achieved` would say so.
        start_at = f"{time.time() + 8.0:.3f}"
        with contextlib.ExitStack() as running:
            children = [
                running.enter_context(
                    Child(
                        *("run", str(scenario), "--url", server.url, "--start-at", start_at),
                        *("--shard", f"{i}/{SHARDS}", "--results", str(paths[i])),
                    )
                )
                for i in range(SHARDS)
            ]
            finished = [child.finish(timeout_s=60) for child in children]
        for done in finished:
            assert done.code == 0, done.stderr
        assert len(server.paths("/hit")) == PLANNED
        yield paths
    finally:
        server.stop()


def merged(*paths: Path, output: Path, extra: tuple[str, ...] = ()) -> Finished:
    """`merge PATHS -o OUTPUT` as a child process."""
    return run_cli("merge", *map(str, paths), "-o", str(output), *extra)


def refused(finished: Finished, *messages: str) -> None:
    """Exit 2, each message on stderr, no traceback on either stream."""
    assert finished.code == 2, finished.stderr
    for message in messages:
        assert message in finished.stderr
    assert_no_traceback(finished.stderr)
    assert_no_traceback(finished.stdout)


def test_merge_refuses_shards_left_out(shards: list[Path], tmp_path: Path) -> None:
    """Shards 0 and 2 of 4 (30 of 60 requests), or shard 3 alone (no shard 0 to judge
    replicas): exit 2 naming the missing indexes, no merged file; all four: exit 0 with the
    plan's 60 requests."""
    output = tmp_path / "merged.json"
    refused(merged(shards[0], shards[2], output=output), "shards 1, 3 of 4 are missing")
    refused(merged(shards[3], output=output), "shards 0, 1, 2 of 4 are missing")
    assert not output.exists()
    whole = merged(*shards, output=output)
    assert whole.code == 0, whole.stderr
    results = load_results(output)
    assert_run_reconciles(results)
    assert (results.totals.scheduled, results.totals.sent, results.totals.failed) == (60, 60, 0)
    assert results.phases[0].planned == PLANNED


def test_a_partial_merge_is_partial_never_passed(shards: list[Path], tmp_path: Path) -> None:
    """`--allow-partial` with shards 0 and 2: `achieved` 30/30 against their share (not 60),
    verdict `partial`, exit 4, and the notes and the summary say what was judged."""
    output = tmp_path / "partial.json"
    finished = merged(shards[0], shards[2], output=output, extra=("--allow-partial",))
    assert finished.code == 4, finished.stderr
    assert_no_traceback(finished.stderr)
    results = load_results(output)
    assert_run_reconciles(results)
    assert (str(results.verdict), int(results.exit_code)) == ("partial", 4)
    assert (results.totals.sent, results.phases[0].planned) == (30, 30)
    achieved = next(j for j in results.expectations if j.expectation.kind == "achieved")
    assert (str(achieved.verdict), achieved.observed, achieved.detail) == (
        "passed",
        100.0,
        "30/30 sent",
    )
    assert results.notes[0].startswith("partial merge: 2 of 4 shards (missing: 1, 3)")
    assert "(30 of the plan's 60 requests)" in results.notes[0]
    assert "verdict PARTIAL (exit 4)" in finished.stderr
    assert "note: partial merge: 2 of 4 shards" in finished.stderr


def test_a_merged_document_is_not_merged_again(shards: list[Path], tmp_path: Path) -> None:
    """A partial merge of shards 0 and 2, merged again with 1 and 3: exit 2, since its own
    shards are no longer known and it would pass as a whole run."""
    partial = tmp_path / "partial.json"
    assert merged(shards[0], shards[2], output=partial, extra=("--allow-partial",)).code == 4
    output = tmp_path / "again.json"
    refused(
        merged(partial, shards[1], shards[3], output=output),
        f"{partial}: already a merged document (of 2 shards)",
    )
    assert not output.exists()


Change = Callable[[str], str]


def in_data(change: Callable[[dict[str, Any]], object]) -> Change:
    """A change to the document's JSON data."""

    def apply(text: str) -> str:
        data = json.loads(text)
        change(data)
        return json.dumps(data)

    return apply


def bomb(data: dict[str, Any]) -> None:
    """A histogram whose payload inflates to 50 MB (about 50 KB of base64)."""
    import base64
    import struct
    import zlib

    compressed = zlib.compress(b"\x00" * 50_000_000, 9)
    header = struct.pack(">II", 0x1C849314, len(compressed))
    data["stats"]["phases"][0]["histograms"]["latency_us"] = base64.b64encode(
        header + compressed
    ).decode()


HOSTILE: dict[str, tuple[Change, str, str | None]] = {
    # name: (change to shard 1's text, message, `report`'s message or None when it reads it)
    "nested 100,000 deep": (
        lambda _text: "[" * 100_000 + "]" * 100_000,
        "not a results file (nested too deeply)",
        "not a results file (nested too deeply)",
    ),
    "a 5,000-digit integer": (
        lambda text: re.sub(r'"sent": \d+', '"sent": 1' + "0" * 5000, text, count=1),
        "Exceeds the limit (4300 digits)",
        "Exceeds the limit (4300 digits)",
    ),
    "a 4,000-digit integer": (
        lambda text: re.sub(r'"sent": \d+', '"sent": 1' + "0" * 4000, text, count=1),
        "$.phases[0].sent: a number too large",
        "$.phases[0].sent: a number too large",
    ),
    "no stats": (in_data(lambda d: d.pop("stats")), "$.stats: missing", "$.stats: missing"),
    "phases as a string": (
        in_data(lambda d: d.update(phases="steady")),
        "$.phases: expected an array, found a string",
        "$.phases: expected an array, found a string",
    ),
    "bad base64 in a histogram": (
        in_data(lambda d: d["stats"]["phases"][0]["histograms"].update(latency_us="!!!")),
        "$.stats.phases[0].histograms.latency_us: not a histogram encoding (bad base64",
        None,
    ),
    "a zlib bomb in a histogram": (
        in_data(bomb),
        "$.stats.phases[0].histograms.latency_us: a histogram encoding that inflates past",
        None,
    ),
    "second: 1e9": (
        in_data(lambda d: d["seconds"][0].update(second=1e9)),
        "$.seconds[0].second: expected a whole number, found a number",
        "$.seconds[0].second: expected a whole number, found a number",
    ),
    "second: 1000000000": (
        in_data(lambda d: d["stats"]["seconds"][-1].update(second=1_000_000_000)),
        "expected a second from 0 to 604800",
        "expected a second from 0 to 604800",
    ),
    "an Infinity rate": (
        lambda text: re.sub(r'"target_rate": [\d.]+', '"target_rate": Infinity', text, count=1),
        "not a results file (Infinity is not a number JSON allows)",
        "not a results file (Infinity is not a number JSON allows)",
    ),
    "ten million tiny values": (
        lambda _text: '{"schema_version": 2, "x": [' + "{}," * 5_000_000 + "{}]}",
        "JSON values a results file may hold",
        "JSON values a results file may hold",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_results_file_is_refused(shards: list[Path], tmp_path: Path, case: str) -> None:
    """Shard 1's file broken one way: `merge` of the four exits 2 naming the file and the
    problem (its JSON path where it has one) and writes nothing; so does `report`, except for
    what it never decodes (the histograms), which it reports on as usual."""
    change, message, report_message = HOSTILE[case]
    hostile = tmp_path / "s1.json"
    hostile.write_text(change(shards[1].read_text(encoding="utf-8")), encoding="utf-8")
    output = tmp_path / "merged.json"
    started = time.monotonic()
    finished = merged(shards[0], hostile, shards[2], shards[3], output=output)
    refused(finished, f"{hostile}: ", message)
    assert time.monotonic() - started < 30
    assert not output.exists()
    html = tmp_path / "report.html"
    reported = run_cli("report", str(hostile), "--html", str(html))
    if report_message is None:
        assert reported.code == 0, reported.stderr
        assert html.is_file()
    else:
        refused(reported, f"{hostile}: ", report_message)
        assert not html.exists()


def test_a_report_of_an_offset_years_into_the_run_stays_small(
    shards: list[Path], tmp_path: Path
) -> None:
    """An abort claimed at +2^53 s (the largest number a document may hold): `report` draws an
    axis of about ten ticks and ends at once (it used to make a tick every two hours until
    killed for memory)."""
    data = json.loads(shards[0].read_text(encoding="utf-8"))
    data["abort"] = {"reason": "claimed", "at_s": 2**53, "stage": "phases"}
    claimed = tmp_path / "claimed.json"
    claimed.write_text(json.dumps(data), encoding="utf-8")
    html = tmp_path / "report.html"
    finished = run_cli("report", str(claimed), "--html", str(html), timeout_s=60)
    assert finished.code == 0, finished.stderr
    assert finished.elapsed_s < 20
    assert_no_traceback(finished.stderr)
    assert html.stat().st_size < 2_000_000

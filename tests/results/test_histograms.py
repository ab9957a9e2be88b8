"""`results.histograms`: a document's encoded histograms are read as far as their headers and a
bounded inflate before hdrhistogram decodes them; anything else is named, never decoded."""

from __future__ import annotations

import base64
import dataclasses
import struct
import zlib

import pytest

from nimbus_scenarios.engine.histogram import HIGHEST_TRACKABLE_US, LatencyHistogram
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.results.histograms import (
    MAX_ENCODED_CHARS,
    histogram_problem,
    histogram_problems,
)
from tests.support.results import EMPTY_HISTOGRAM, full_results

COMPRESSION_COOKIE = 0x1C849304 | 0x10
ENCODING_COOKIE = 0x1C849303 | 0x10


def encoding(
    counts: bytes, *, lowest: int = 1, highest: int = HIGHEST_TRACKABLE_US, digits: int = 3
) -> str:
    """hdrhistogram's V2 wire format around `counts` (varints), with the given layout."""
    payload = struct.pack(">IIIIQQd", ENCODING_COOKIE, len(counts), 0, digits, lowest, highest, 1.0)
    compressed = zlib.compress(payload + counts)
    return base64.b64encode(
        struct.pack(">II", COMPRESSION_COOKIE, len(compressed)) + compressed
    ).decode()


def test_this_tools_own_histograms_pass() -> None:
    """Per-phase (3 digits) and per-second (2 digits) encodings, empty or not, are readable."""
    histogram = LatencyHistogram(3)
    histogram.record(12_345)
    assert histogram_problem(histogram.encode(), 3) is None
    assert histogram_problem(EMPTY_HISTOGRAM, 3) is None
    second = LatencyHistogram(2)
    second.record(99)
    assert histogram_problem(second.encode(), 2) is None
    assert histogram_problem(encoding(b"\x02"), 3) is None  # the helper writes the real format
    assert list(histogram_problems(full_results().stats)) == []


@pytest.mark.parametrize(
    ("encoded", "problem"),
    [
        ("!!!not base64", "bad base64"),
        ("AAAA", "too short"),
        (base64.b64encode(b"\x00" * 16).decode(), "not hdrhistogram's compressed V2 format"),
        (EMPTY_HISTOGRAM[:-8], "not hdrhistogram's compressed V2 format"),  # cut short
        (encoding(b"\x02")[:40] + "AAAA" + encoding(b"\x02")[44:], "does not inflate"),
        (encoding(b"\x02", lowest=2), "values 2 to 3600000000 with 3 significant digits"),
        (encoding(b"\x02", highest=2**62), "this tool writes 1 to 3600000000 with 3"),
        (encoding(b"\x02", digits=5), "with 5 significant digits"),
        (encoding(b"\x00" * 2_000_000), "inflates past 1,048,576 bytes"),
        ("A" * (MAX_ENCODED_CHARS + 4), "an encoding of 524,292 characters"),
    ],
)
def test_what_cannot_be_decoded_is_named(encoded: str, problem: str) -> None:
    """Bad base64, another format, a payload that does not inflate or inflates too far, another
    layout, a huge string: each is a problem, found before hdrhistogram sees it."""
    found = histogram_problem(encoded, 3)
    assert found is not None
    assert problem in found


def test_a_bomb_is_not_inflated_past_the_bound() -> None:
    """Two megabytes of zeros compress to a few kilobytes; reading stops at the bound."""
    bomb = encoding(b"\x00" * 2_000_000)
    assert len(bomb) < 10_000
    assert "inflates past" in (histogram_problem(bomb, 3) or "")


def test_problems_are_named_by_their_json_path() -> None:
    """A bad phase histogram and a bad second's are found at their paths, in order."""
    stats = full_results().stats
    phase = dataclasses.replace(
        stats.phases[1],
        histograms=dataclasses.replace(stats.phases[1].histograms, service_time_us="x"),
    )
    second = dataclasses.replace(stats.seconds[3], histogram="AAAA", latency_ms=None)
    broken = dataclasses.replace(
        stats,
        phases=(stats.phases[0], phase, *stats.phases[2:]),
        seconds=(*stats.seconds[:3], second, *stats.seconds[4:]),
    )
    paths = [path for path, _ in histogram_problems(broken)]
    assert paths == [
        "$.stats.phases[1].histograms.service_time_us",
        "$.stats.seconds[3].histogram",
    ]


def test_a_request_templates_histograms_are_checked_too() -> None:
    """A template's histogram is checked like its phase's and named by its path."""
    run = RunStats(0.0)
    phase = run.phase("warm")
    for template in ("work", "health"):
        request = phase.request(template)
        phase.schedule(1.0, request)
        phase.mark_sent(1.0, request)
        phase.record(1.0, 1.0, 1.2, 200, True, request)
    stats = run.freeze()
    assert next(histogram_problems(stats), None) is None
    health = stats.phases[0].requests[1]
    assert health.histograms is not None
    bad = dataclasses.replace(
        health, histograms=dataclasses.replace(health.histograms, latency_us="x")
    )
    record = dataclasses.replace(stats.phases[0], requests=(stats.phases[0].requests[0], bad))
    broken = dataclasses.replace(stats, phases=(record,))
    assert [path for path, _ in histogram_problems(broken)] == [
        "$.stats.phases[0].requests[1].histograms.latency_us"
    ]

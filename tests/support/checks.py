"""Checks many tests make on results: the accounting identities, and finding an expectation's
verdict in a typed `RunResults` (`judgement`) or in a results document read as JSON
(`expectation`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nimbus_scenarios.results.io import load_results
from nimbus_scenarios.results.model import Judgement, LoadResult, RunResults

__all__ = ["assert_reconciles", "assert_run_reconciles", "expectation", "judgement", "read_results"]

COUNTERS = ("scheduled", "sent", "dropped", "succeeded", "failed")


def read_results(path: Path) -> dict[str, Any]:
    """A results file as the JSON users read, after checking that it loads strictly as a
    results document of this version."""
    load_results(path)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def assert_reconciles(load: LoadResult) -> None:
    """scheduled = sent + dropped and sent = succeeded + failed, once nothing is in flight;
    only responses are truncated; drops by reason are drops."""
    assert load.scheduled == load.sent + load.dropped, load
    assert sum(load.dropped_by_kind.values()) <= load.dropped, load
    assert load.sent == load.succeeded + load.failed, load
    assert load.truncated <= sum(load.status_counts.values()), load
    for request in load.requests:
        assert request.scheduled == request.sent + request.dropped, request
        assert request.sent == request.succeeded + request.failed, request
        assert request.truncated <= sum(request.status_counts.values()), request
    assert sum(r.sent for r in load.requests) == load.sent


def assert_run_reconciles(results: RunResults) -> None:
    """Every phase and the totals reconcile (`assert_reconciles`), no count is negative, and
    the phases add up to the totals."""
    loads = [phase.load for phase in results.phases]
    for load in [*loads, results.totals]:
        assert_reconciles(load)
        assert all(getattr(load, name) >= 0 for name in COUNTERS), load
    for name in COUNTERS:
        assert sum(getattr(load, name) for load in loads) == getattr(results.totals, name), name


def judgement(results: RunResults, text: str) -> Judgement:
    """The verdict on the one expectation written as `text`."""
    found = [j for j in results.expectations if j.expectation.text == text]
    assert len(found) == 1, [j.expectation.text for j in results.expectations]
    return found[0]


def expectation(document: Mapping[str, Any], text: str) -> dict[str, Any]:
    """The entry of a results document (JSON data) for the one expectation written as `text`."""
    found = [e for e in document["expectations"] if e["text"] == text]
    assert len(found) == 1, [e["text"] for e in document["expectations"]]
    entry: dict[str, Any] = found[0]
    return entry

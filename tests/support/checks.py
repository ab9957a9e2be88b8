"""Checks many tests make on results: the accounting identities and finding a verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nimbus_scenarios.results.io import load_results
from nimbus_scenarios.results.model import Judgement, LoadResult, RunResults

__all__ = ["assert_reconciles", "judgement", "read_results"]


def read_results(path: Path) -> dict[str, Any]:
    """A results file as the JSON users read, after checking that it loads strictly as a
    results document of this version."""
    load_results(path)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def assert_reconciles(load: LoadResult) -> None:
    """scheduled = sent + dropped and sent = succeeded + failed, once nothing is in flight."""
    assert load.scheduled == load.sent + load.dropped, load
    assert load.sent == load.succeeded + load.failed, load
    for request in load.requests:
        assert request.scheduled == request.sent + request.dropped, request
        assert request.sent == request.succeeded + request.failed, request
    assert sum(r.sent for r in load.requests) == load.sent


def judgement(results: RunResults, text: str) -> Judgement:
    """The verdict on the one expectation written as `text`."""
    found = [j for j in results.expectations if j.expectation.text == text]
    assert len(found) == 1, [j.expectation.text for j in results.expectations]
    return found[0]

"""Tests of POST /process's parameters and the routes (local.consumer.api).

Parsing is checked directly; the 422 answers and JSON errors through a running consumer.
"""

from __future__ import annotations

import aiohttp
import pytest

from nimbus_scenarios.local.consumer import (
    ProcessRequest,
    ReferenceConsumer,
    ValidationIssue,
    parse_process_query,
)
from tests.local.consumer.support import fetch, serve


@pytest.mark.parametrize(
    ("name", "value", "low", "high", "kind"),
    [
        ("cpu_intensity", "0", 1, 10, "greater_than_equal"),
        ("cpu_intensity", "11", 1, 10, "less_than_equal"),
        ("memory_size", "9", 10, 500, "greater_than_equal"),
        ("memory_size", "501", 10, 500, "less_than_equal"),
        ("duration", "0", 1, 60, "greater_than_equal"),
        ("duration", "61", 1, 60, "less_than_equal"),
        ("cpu_intensity", "abc", 1, 10, "int_parsing"),
        ("memory_size", "12.5", 10, 500, "int_parsing"),
        ("duration", "", 1, 60, "int_parsing"),
    ],
)
def test_process_rejects_bad_integer(name: str, value: str, low: int, high: int, kind: str) -> None:
    """An out-of-range or non-integer value answers 422 naming the parameter and its range."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> object:
        url = f"{consumer.base_url}/process"
        status, body = await fetch(session, "POST", url, params={name: value, "async_mode": "1"})
        assert status == 422
        return body

    body = serve(scenario)
    assert isinstance(body, dict)
    [detail] = body["detail"]
    assert detail["loc"] == ["query", name]
    assert detail["type"] == kind
    assert f"{name} must be an integer from {low} to {high}" in detail["msg"]
    assert detail["ctx"] == {"ge": low, "le": high}


def test_process_rejects_bad_boolean_and_reports_every_problem() -> None:
    """A non-boolean async_mode answers 422, alongside every other bad parameter."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> object:
        url = f"{consumer.base_url}/process?async_mode=maybe&duration=0"
        status, body = await fetch(session, "POST", url)
        assert status == 422
        return body

    body = serve(scenario)
    assert isinstance(body, dict)
    assert [d["loc"] for d in body["detail"]] == [["query", "duration"], ["query", "async_mode"]]
    assert body["detail"][1]["type"] == "bool_parsing"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("False", False), ("0", False)],
)
def test_boolean_spellings(text: str, expected: bool) -> None:
    """async_mode and immediate_cleanup accept true/false/1/0 case-insensitively."""
    parsed = parse_process_query({"async_mode": text, "immediate_cleanup": text})
    assert parsed == ProcessRequest(async_mode=expected, immediate_cleanup=expected)


def test_defaults() -> None:
    """Missing parameters take the service's defaults (5, 50 MB, 10 s, sync, immediate cleanup)."""
    assert parse_process_query({}) == ProcessRequest(5, 50, 10, False, True)
    issues = parse_process_query({"cpu_intensity": "x"})
    assert isinstance(issues, tuple)
    assert all(isinstance(issue, ValidationIssue) for issue in issues)


def test_signed_and_padded_integers_are_accepted() -> None:
    """As pydantic does, ` +3 ` is the integer 3 (and `3.0` is not an integer)."""
    assert parse_process_query({"cpu_intensity": " +3 "}) == ProcessRequest(cpu_intensity=3)
    assert isinstance(parse_process_query({"cpu_intensity": "3.0"}), tuple)


def test_request_modes_in_words() -> None:
    """`mode` and `cleanup_mode` say what the status page and answers show."""
    request = ProcessRequest(async_mode=True, immediate_cleanup=False)
    assert (request.mode, request.cleanup_mode) == ("async", "temporary")
    assert (ProcessRequest().mode, ProcessRequest().cleanup_mode) == ("sync", "immediate")


def test_unknown_path_and_method_answer_json() -> None:
    """An unknown path answers JSON 404 and a wrong method JSON 405."""

    async def scenario(consumer: ReferenceConsumer, session: aiohttp.ClientSession) -> None:
        assert await fetch(session, "GET", f"{consumer.base_url}/nope") == (
            404,
            {"detail": "Not Found"},
        )
        assert await fetch(session, "PUT", f"{consumer.base_url}/health") == (
            405,
            {"detail": "Method Not Allowed"},
        )

    serve(scenario)

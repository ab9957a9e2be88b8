"""Tests for requests and outcomes (`engine.request`), and that the engine loads no HTTP client
until a transport is made."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nimbus_scenarios.engine.request import (
    ErrorKind,
    Outcome,
    PreparedRequest,
    error_outcome,
    prepare,
    status_outcome,
)


def test_prepare_joins_base_and_path_and_encodes_query() -> None:
    """prepare() puts exactly one slash between base and path and percent-encodes the query."""
    request = prepare(
        "get", "http://h:8080/api/", "/v1/a b", [("q", "x y&z"), ("n", "1")], headers={"A": "b"}
    )
    assert request == PreparedRequest(
        "GET", "http://h:8080/api/v1/a%20b?q=x%20y%26z&n=1", (("A", "b"),), None
    )
    assert prepare("GET", "http://h", "p?x=1", [("y", "2")]).url == "http://h/p?x=1&y=2"
    assert prepare("GET", "http://h", "http://other/z").url == "http://other/z"
    with pytest.raises(ValueError, match="absolute"):
        prepare("GET", "h:80", "/x")
    with pytest.raises(ValueError, match="no query"):
        prepare("GET", "http://h/?a=1", "/x")


def test_outcomes_are_shared_singletons() -> None:
    """Outcomes for statuses and error kinds are pre-built, so the hot path allocates none."""
    assert status_outcome(200) is status_outcome(200)
    assert status_outcome(200) == Outcome(200, None)
    assert error_outcome(ErrorKind.reset) is error_outcome(ErrorKind.reset)
    assert error_outcome(ErrorKind.reset) == Outcome(None, ErrorKind.reset)
    assert status_outcome(799) == Outcome(799, None)


def test_engine_imports_no_http_client_until_a_transport_is_made() -> None:
    """The engine's modules load neither aiohttp, httpx nor httptools; `make_transport` loads
    the one its kind needs (lean: httptools alone)."""
    code = """
import json, sys
import nimbus_scenarios.engine.dispatch, nimbus_scenarios.engine.pacer
import nimbus_scenarios.engine.request, nimbus_scenarios.engine.stats
import nimbus_scenarios.engine.transport, nimbus_scenarios.engine.users
import nimbus_scenarios.engine.wire, nimbus_scenarios.engine.factory
def loaded():
    return sorted({m.split(".")[0] for m in sys.modules} & {"aiohttp", "httpx", "httptools"})
before = loaded()
from nimbus_scenarios.engine.factory import make_transport
make_transport("lean", timeout_s=1, connection_max_age_s=1, max_connections=1)
lean = loaded()
make_transport("aiohttp", timeout_s=1, connection_max_age_s=1, max_connections=1)
print(json.dumps([before, lean, loaded()]))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    before, lean, after = json.loads(result.stdout)
    assert before == []
    assert lean == ["httptools"]
    assert {"aiohttp", "httpx"} <= set(after)

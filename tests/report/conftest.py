"""Fixtures for the report tests: results documents and a headless Chromium.

`tests/report/data/` holds real results documents from `run --local` (histograms and the
`stats` block removed to keep them small): `run_full.json` (a 60 s run with replica samples,
a pod kill, replica verdicts, a trace id and a Grafana link added by hand, since the local
consumer has no replica source), `run_aborted.json` (an abort guard fired; the scenario and a
phase are named with markup) and `run_infra.json` (the target did not answer at pre-flight).

The browser: Debian's `chromium`. Without it the browser tests fail (CI installs it:
`apt-get install -y chromium`), unless `NIMBUS_SKIP_BROWSER=1` skips them.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.report.cdp import Chromium, find_chromium

DATA = Path(__file__).parent / "data"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

HOSTILE = (
    "<script>window.__pwned=1;alert('x')</script>"
    '<img src=x onerror="window.__pwned=2">&amp;"\'</textarea>'
)


def load_document(name: str) -> dict[str, Any]:
    """A copy of the results document `tests/report/data/<name>.json`."""
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return data


def hostile_document() -> dict[str, Any]:
    """The full run with markup, quotes and control characters in every string a person wrote."""
    document = copy.deepcopy(load_document("run_full"))
    document["scenario"] = f"shop {HOSTILE}"
    document["run_id"] = f"id{HOSTILE}"
    document["target"] = f"http://x/{HOSTILE}"
    document["trace_id"] = f"trace{HOSTILE}"
    document["grafana_url"] = "javascript:window.__pwned=3//"
    document["error"] = f"boom {HOSTILE}\x00\x1b[31m"
    document["params"] = {f"p{HOSTILE}": f"v{HOSTILE}"}
    document["scenario_source"] = f"scenario {HOSTILE} {{ }}\n</pre></code>{HOSTILE}"
    document["notes"] = [f"note {HOSTILE}"]
    document["abort"] = {"reason": f"guard {HOSTILE}", "at_s": 50.0}
    for phase in document["phases"]:
        phase["name"] = f"{phase['name']} {HOSTILE}"
        phase["shape"] = f"{phase['shape']} {HOSTILE}"
    for expectation in document["expectations"]:
        expectation["text"] = f"{expectation['text']} {HOSTILE}"
        expectation["scope"] = f"{expectation['scope']}{HOSTILE}"
        expectation["detail"] = f"detail {HOSTILE} \x07"
    for kill in document["kills"]:
        kill["pods"] = [f"pod-{HOSTILE}"]
    document["replica_source"]["description"] = f"deployment {HOSTILE}"
    return document


def minimal_document() -> dict[str, Any]:
    """Only the results schema's required fields, every list empty."""
    return {
        "schema_version": 1,
        "run_id": "0123456789ab",
        "scenario": "bare",
        "verdict": "error",
        "exit_code": 4,
        "trace_id": None,
        "phases": [],
        "expectations": [],
        "replicas": [],
    }


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """A headless Chromium for the whole session (fails without one, unless skipped by env)."""
    if os.environ.get("NIMBUS_SKIP_BROWSER") == "1":
        pytest.skip("NIMBUS_SKIP_BROWSER=1: browser tests skipped")
    binary = find_chromium()
    if binary is None:
        pytest.fail(
            "chromium not found: the HTML report tests need headless Chromium "
            "(apt-get install -y chromium; or set NIMBUS_CHROMIUM=/path/to/chromium). "
            "Set NIMBUS_SKIP_BROWSER=1 to skip them.",
            pytrace=False,
        )
    browser = Chromium(binary, tmp_path_factory.mktemp("chromium") / "profile").start()
    yield browser
    browser.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """`tests/artifacts/` (gitignored): screenshots kept for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

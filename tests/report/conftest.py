"""Fixtures for the report tests: a headless Chromium and the screenshot folder.

The results documents themselves are built by `tests/support/results.py` (typed `RunResults`,
made the way a run makes them). The browser: Debian's `chromium`. Without it the browser tests
fail (CI installs it: `apt-get install -y chromium`), unless `NIMBUS_SKIP_BROWSER=1` skips them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.report.cdp import Chromium, find_chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


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

"""Fixtures every test package may use: the recording loopback target (`HttpServer`, from
`tests/support/http.py`) for one test or one module, `run`, which plays scenario text
in-process against a URL, and `kube_cluster`, an emulated cluster that runs Jobs
(`tests/kube/cluster.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.runner import RunOptions, RunOutcome, run_scenario
from tests.support.http import HttpServer

if TYPE_CHECKING:
    from tests.kube.cluster import ClusterThread

__all__ = ["HttpServer", "run_text"]


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """A fresh recording server for one test."""
    server = HttpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_server() -> Iterator[HttpServer]:
    """A recording server shared by the tests of one module."""
    server = HttpServer().start()
    yield server
    server.stop()


def run_text(text: str, url: str, *, limit_s: float = 60.0, **options: Any) -> RunOutcome:
    """Compile scenario `text` and run it against `url` in a fresh event loop."""
    plan = compile_source(Source("test.scn", text))
    run_options = RunOptions(url=url, **options)
    return asyncio.run(
        asyncio.wait_for(run_scenario(plan, run_options, scenario_text=text), limit_s)
    )


@pytest.fixture
def run() -> Callable[..., RunOutcome]:
    """`run(text, url, **RunOptions fields)`: play scenario text, return its outcome."""
    return run_text


@pytest.fixture
def kube_cluster(tmp_path: Path) -> Iterator[ClusterThread]:
    """An emulated cluster that runs Jobs (pods run `python -m nimbus_scenarios ARGS`), on its
    own loop in a thread; `kube_cluster.kubeconfig(dir)` points a client at it. Every pod still
    running is killed after the test."""
    from tests.kube.cluster import ClusterThread  # kmock only for the tests that use it

    cluster = ClusterThread(tmp_path / "kubelet").start()
    yield cluster
    cluster.stop()

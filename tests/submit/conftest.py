"""What the submit tests share: real shard output, as the pods' logs would hold it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from tests.support.cli import Child, write_scenario
from tests.support.http import HttpServer

SCENARIO = """\
scenario "collected" {
  request hit = GET "PATH"
  phase "steady" 1s {
    rate 20/s
    send hit
  }
  expect errors < 1%
}
"""

Logs = dict[str, list[str]]


@pytest.fixture(scope="module")
def shard_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logs]:
    """Real `run --shard i/2 --print-results` output (as the pods' logs would hold it), of a
    passing scenario and of one whose requests all fail."""
    folder = tmp_path_factory.mktemp("shards")
    server = HttpServer().start()
    logs: Logs = {}
    try:
        with contextlib.ExitStack() as running:
            children: dict[str, list[Child]] = {}
            # Four processes must import and plan before this common start: 8 s was not always
            # enough on a loaded 2-core machine (late shards drop their first arrivals).
            start_at = f"{time.time() + 15.0:.3f}"
            for kind, path in (("passing", "/hit"), ("failing", "/status/500")):
                scenario = write_scenario(folder, SCENARIO.replace("PATH", path), f"{kind}.scn")
                children[kind] = [
                    running.enter_context(
                        Child(
                            *("run", str(scenario), "--url", server.url, "--start-at", start_at),
                            *("--shard", f"{i}/2", "--print-results"),
                            *("--results", str(folder / f"{kind}-{i}.json")),
                        )
                    )
                    for i in range(2)
                ]
            for kind, started in children.items():
                logs[kind] = [child.finish(timeout_s=60).stdout for child in started]
        yield logs
    finally:
        server.stop()

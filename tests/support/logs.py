"""Pod logs holding results documents (`results.logwire`), for the tests that read them.

- `longest_results()`: the results of the longest built-in scenario (`sustained`, 30 minutes),
  played on a manual clock against a scripted target whose latencies vary as a real target's do
  (seeded, so every call gives the same document), with its replica windows met;
- `pod_log(lines)`: a pod's log as `kubectl logs` shows it, the results' lines among the run's
  other output;
- `forge(line, **fields)`: a results line with some fields changed and its crc32 made to match
  again, to build lines that are each intact but do not add up to a document.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import re
import zlib
from collections.abc import Sequence

from nimbus_scenarios.catalog import builtin_names, builtin_path
from nimbus_scenarios.engine.request import Outcome, PreparedRequest, status_outcome
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.results.model import RunResults, ShardInfo
from tests.support.play import play

__all__ = ["LONGEST", "forge", "longest_results", "pod_log"]

LONGEST = "sustained"
"""The built-in scenario that runs longest (checked by `longest_results`)."""

# Replicas as the HPA would move them: up within each load phase's `within 4m`, back to one
# within each rest's `within 7m`.
_REPLICAS = ((0.0, 1, 1), (150.0, 3, 3), (700.0, 1, 1), (1100.0, 3, 3), (1600.0, 1, 1))


@functools.cache
def longest_results() -> RunResults:
    """The `sustained` scenario played to its end: 30 minutes of run in about a second."""
    durations = {
        name: compile_source(Source(name, builtin_path(name).read_text())).duration_s
        for name in builtin_names()
    }
    assert max(durations, key=lambda name: durations[name]) == LONGEST, durations
    rng = random.Random(13)

    def answer(_request: PreparedRequest) -> tuple[float, Outcome]:
        # Latencies spread as a target's are (log-normal, median 135 ms), and a 503 now and
        # then: per-second histograms that compress as a real run's do.
        status = 503 if rng.random() < 0.002 else 200
        return rng.lognormvariate(-2.0, 0.6), status_outcome(status)

    outcome, _, _, _ = play(builtin_path(LONGEST).read_text(), answer=answer, script=_REPLICAS)
    return outcome.results


def as_shard(results: RunResults, index: int, count: int) -> RunResults:
    """`results` as shard `index` of `count`, with a run id of its own."""
    return dataclasses.replace(
        results, run_id=f"{results.run_id[:8]}s{index}", shard=ShardInfo(index, count)
    )


def pod_log(lines: Sequence[str], pod: str = "pod") -> list[str]:
    """A pod's log lines: what the run logs, then the results' lines, then its summary."""
    return [
        f'{{"event": "run started", "pod": "{pod}"}}',
        f"{pod}: pre-flight ok",
        *lines,
        f"{pod}: verdict PASSED (exit 0)",
    ]


_FIELD = re.compile(r"(\w+)=(\S+)")


def forge(line: str, **fields: str) -> str:
    """`line` with the given fields (`run`, `shard`, `chunk`, `sha256`) replaced, and its crc32
    computed again so that the line itself is intact."""
    head, _, data = line.rpartition(" ")
    prefix, _, rest = head.partition(" run=")
    values = dict(_FIELD.findall(f"run={rest}"))
    values.update(fields)
    header = " ".join(f"{key}={values[key]}" for key in ("run", "shard", "chunk", "sha256"))
    crc = f"{zlib.crc32(f'{header} {data}'.encode('ascii')):08x}"
    return f"{prefix} {header} crc32={crc} {data}"

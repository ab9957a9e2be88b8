"""`run --start-at` in the past, as a child process against a loopback target: the shard starts
late, drops what was due before it started, and the target never sees a burst. And the
`--start-at-from`/`--start-wait` usage errors."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.cli import assert_outcome, run_cli, write_scenario
from tests.support.http import HttpServer

SCENARIO = """
scenario "late" {
  request work = GET "/work"
  phase "steady" 12s { rate 10/s
    send work }
}
"""


def test_a_start_two_seconds_past_drops_the_missed_arrivals_without_a_burst(
    http_server: HttpServer, tmp_path: Path
) -> None:
    """`--start-at` 2 s ago: at least 20 of the 120 arrivals are dropped (late start), the rest
    reach the target at 10/s from the first one on, never a second's worth at once."""
    scenario = write_scenario(tmp_path, SCENARIO)
    results = tmp_path / "late.json"
    start_at = f"{time.time() - 2.0:.3f}"
    finished = run_cli(
        *("run", str(scenario), "--url", http_server.url, "--results", str(results)),
        *("--shard", "0/1", "--start-at", start_at),
    )
    hits = [h.at for h in http_server.paths("/work")]
    document = assert_outcome(finished, results, code=0, verdict="passed")
    steady = document["phases"][0]
    late = document["start_late_s"]
    assert late >= 2.0
    assert steady["dropped_by_kind"] == {"late_start": steady["dropped"]}
    assert steady["dropped"] >= 20
    assert steady["dropped"] + steady["sent"] == 120
    assert len(hits) == steady["sent"]
    # A burst of what was due would land at once: 20 or more in the first moments. On time,
    # a half second holds 5 (a little more when a loaded loop catches up).
    first = hits[0]
    assert sum(1 for at in hits if at - first < 0.5) <= 8, hits
    per_second = Counter(int(at - first) for at in hits)
    assert max(per_second.values()) <= 13, per_second
    assert "dropped for a late start" in finished.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--start-at-from", "secret/x"), "expected configmap/NAME or file/PATH"),
        (("--start-at-from", "configmap/Not_A_Name"), "is not a ConfigMap name"),
        (("--start-at-from", "file/x", "--start-wait", "0"), "--start-wait must be"),
        (("--start-at", "1", "--start-at-from", "file/x"), "not allowed with argument"),
        (("--start-at", "nan"), "--start-at: expected Unix seconds or an ISO 8601 time"),
    ],
)
def test_start_options_are_checked_before_anything_is_sent(
    http_server: HttpServer, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    """A bad common start is exit 2 with what is wrong, and the target sees nothing."""
    scenario = write_scenario(tmp_path, SCENARIO)
    finished = run_cli("run", str(scenario), "--url", http_server.url, *args)
    assert http_server.hits == []
    assert finished.code == 2, finished.stderr
    assert message in finished.stderr

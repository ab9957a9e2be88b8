"""`run --workers N`: worker processes send shares of one plan and the parent merges them.

End to end through `python -m nimbus_scenarios run` against the loopback recording server:
one results document whose counts are the plan's exactly (mix included), one verdict; a share
that fails fails the run; guards judge every worker's seconds in the parent, and a guard that
fires stops them all; SIGTERM to the parent
keeps what every worker gathered. The shard arithmetic (`--shard I/N` with W workers) is checked
exhaustively on small numbers."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from nimbus_scenarios.plan.arrivals import shard_share
from nimbus_scenarios.results.model import ShardInfo
from nimbus_scenarios.runner.pool import worker_shard
from tests.support.cli import Child, assert_outcome, run_cli, write_scenario
from tests.support.http import HttpServer

MIX = """
scenario "workers" {
  request a = GET "/a"
  request b = GET "/b"
  phase "ramp" 2s {
    ramp 20/s -> 60/s
    send 75% a, 25% b
  }
  phase "flat" 1s {
    rate 50/s
    send 50% a, 50% b
  }
  expect achieved > 99%
}
"""


def _run(scenario: Path, server: HttpServer, results: Path, *extra: str) -> list[str]:
    return ["run", str(scenario), "--url", server.url, "--results", str(results), *extra]


@pytest.mark.timeout(60)
def test_two_workers_send_the_plan_exactly_once(http_server: HttpServer, tmp_path: Path) -> None:
    """Every arrival is sent once over both processes: the server's counts per template and
    the one results document's are the plan's (`plan` says 60 a + 20 b, then 25 + 25)."""
    scenario = write_scenario(tmp_path, MIX)
    results = tmp_path / "results.json"
    finished = run_cli(*_run(scenario, http_server, results, "--workers", "2"))
    document = assert_outcome(finished, results, code=0, verdict="passed")
    assert "workers: 2 processes" in finished.stderr
    hits = Counter(h.path for h in http_server.hits)
    assert hits == {"/a": 85, "/b": 45, "/": 1}  # one pre-flight: the parent's
    assert document["totals"]["sent"] == document["totals"]["scheduled"] == 130
    assert [p["planned"] for p in document["phases"]] == [80, 50]
    assert [p["sent"] for p in document["phases"]] == [80, 50]
    requests = {r["name"]: r["sent"] for r in document["totals"]["requests"]}
    assert requests == {"a": 85, "b": 45}
    assert document["shard"] == {"index": 0, "count": 1}
    assert len(document["expectations"]) == 1


FAILING_SHARE = """
scenario "workers-fail" {
  request ok = GET "/ok"
  request bad = GET "/status/500"
  phase "load" 2s {
    rate 40/s
    send 50% ok, 50% bad
  }
  expect errors < 10%
}
"""


@pytest.mark.timeout(60)
def test_a_failing_share_fails_the_run(http_server: HttpServer, tmp_path: Path) -> None:
    """The 50/50 mix alternates, so worker 1 sends every `bad` arrival and the parent every `ok`
    one: the expectation fails only on the merged statistics (exit 1)."""
    scenario = write_scenario(tmp_path, FAILING_SHARE)
    results = tmp_path / "results.json"
    finished = run_cli(*_run(scenario, http_server, results, "--workers", "2"))
    document = assert_outcome(finished, results, code=1, verdict="failed")
    assert document["totals"]["failed"] == len(http_server.paths("/status/500")) == 40
    assert document["totals"]["succeeded"] == len(http_server.paths("/ok")) == 40


GUARDED = """
scenario "workers-guard" {
  request ok = GET "/ok"
  request bad = GET "/status/500"
  phase "load" %(seconds)ss {
    rate 40/s
    send 50%% ok, 50%% bad
  }
  abort when %(guard)s
}
"""


@pytest.mark.timeout(60)
def test_a_guard_judges_the_whole_run_not_one_share(
    http_server: HttpServer, tmp_path: Path
) -> None:
    """The 50/50 mix alternates, so worker 1 sends every `bad` arrival: its share fails
    entirely, but the run's errors are 50%, and `errors > 90%` must not fire (it is judged
    by the parent on every worker's seconds, never on one share)."""
    guard = "errors > 90% over 1s"
    scenario = write_scenario(tmp_path, GUARDED % {"seconds": 3, "guard": guard})
    results = tmp_path / "results.json"
    finished = run_cli(*_run(scenario, http_server, results, "--workers", "2"))
    document = assert_outcome(finished, results, code=0, verdict="passed")
    assert document["abort"] is None
    assert document["totals"]["failed"] == document["totals"]["succeeded"] == 60


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("guard", "share"),
    [("errors > 40% over 1s", (1, 2)), ("errors of bad > 90% over 1s", (1, 1))],
)
def test_a_guard_fires_on_every_worker_s_seconds(
    http_server: HttpServer, tmp_path: Path, guard: str, share: tuple[int, int]
) -> None:
    """The parent's guard fires on the merged seconds: over the run, half the requests failed
    (and every `bad` one, though the parent sends none of them); every worker stops, and the
    results keep both shares (exit 3)."""
    scenario = write_scenario(tmp_path, GUARDED % {"seconds": 20, "guard": guard})
    results = tmp_path / "results.json"
    finished = run_cli(*_run(scenario, http_server, results, "--workers", "2"))
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    reason = document["abort"]["reason"]
    assert "(in worker" not in reason  # the parent's guard, not a worker's
    failed, done = map(int, reason.split(" fired: ")[1].split(" ")[0].split("/"))
    # a whole second of both shares (40/s, 20/s of them `bad`), give or take a request that
    # completed across the second's edge
    assert abs(failed / done - share[0] / share[1]) <= 0.1
    assert done >= 18 * share[1]
    assert document["abort"]["at_s"] < 10
    sent = document["totals"]["sent"]
    assert 0 < sent < 400
    assert sent == len(http_server.paths("/ok")) + len(http_server.paths("/status/"))
    assert len(http_server.paths("/ok")) > 0


@pytest.mark.timeout(60)
def test_sigterm_keeps_every_workers_results(http_server: HttpServer, tmp_path: Path) -> None:
    """SIGTERM to the parent stops both processes; the document holds both shares (exit 3)."""
    scenario = write_scenario(tmp_path, MIX.replace("2s", "20s").replace("1s", "10s"))
    results = tmp_path / "results.json"
    with Child(*_run(scenario, http_server, results, "--workers", "2")) as child:
        child.wait_for("both templates", lambda: len(http_server.paths("/b")) >= 10)
        child.signal(signal.SIGTERM)
        finished = child.finish(60)
    document = assert_outcome(finished, results, code=3, verdict="aborted")
    assert "SIGTERM" in document["abort"]["reason"]
    requests = {r["name"]: r["sent"] for r in document["totals"]["requests"]}
    assert requests == {"a": len(http_server.paths("/a")), "b": len(http_server.paths("/b"))}
    assert document["totals"]["sent"] < 1000


@pytest.mark.parametrize("value", ["0", "x", "-1", "1.5", "65"])
def test_bad_worker_counts_are_usage_errors(tmp_path: Path, value: str) -> None:
    """`--workers 0|x|...` exits 2 with one line saying what is allowed; nothing is sent."""
    scenario = write_scenario(tmp_path, MIX)
    finished = run_cli("run", str(scenario), "--url", "http://127.0.0.1:9", "--workers", value)
    assert finished.code == 2, finished.stderr
    assert "--workers must be a whole number of processes from 1 to 64, or auto" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_local_refuses_workers(tmp_path: Path) -> None:
    """--local runs in one process: --workers 2 beside it is a usage error."""
    scenario = write_scenario(tmp_path, MIX)
    finished = run_cli("run", str(scenario), "--local", "--workers", "2")
    assert finished.code == 2
    assert "--local runs one process; it cannot have --workers" in finished.stderr


@pytest.mark.parametrize("count", [1, 2, 3, 5])
@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_workers_of_a_shard_send_exactly_its_share(count: int, workers: int) -> None:
    """Shard I of N with W workers: the global shards I + N*w of N*W are distinct over all
    pods and workers, cover 0..N*W-1, and together send shard I's arrivals, no more, no less."""
    seen = []
    for index in range(count):
        shard = ShardInfo(index, count)
        mine = [worker_shard(shard, workers, w) for w in range(workers)]
        assert all(s.count == count * workers for s in mine)
        seen.extend(s.index for s in mine)
        for total in (0, 1, 7, 100, 101, 997):
            arrivals = [k for k in range(total) if any(k % s.count == s.index for s in mine)]
            assert arrivals == [k for k in range(total) if k % count == index]
            shares = sum(shard_share(total, s.index, s.count) for s in mine)
            assert shares == shard_share(total, index, count)
    assert sorted(seen) == list(range(count * workers))

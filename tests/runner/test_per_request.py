"""Per request template, on a manual clock: a slow `work` and a fast `health` are timed apart
(from the schedule and from the send), the console's per-request table says which failed and
how, the live status line says which request fails, and the shards of a run merge to the
per-template histograms and per-second series of one unsharded run."""

from __future__ import annotations

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.engine.histogram import LatencyHistogram
from nimbus_scenarios.engine.request import ErrorKind, Outcome, PreparedRequest, status_outcome
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.events import Progress, RunHandler
from nimbus_scenarios.merge import merge_results
from nimbus_scenarios.report.console import format_summary, status_line
from nimbus_scenarios.results.io import from_json, to_json
from nimbus_scenarios.results.model import RunResults, ShardInfo
from tests.support.checks import assert_run_reconciles
from tests.support.fakes import Answer
from tests.support.play import play

WALL0 = ManualClock().wall()
"""The manual clock's wall time at clock time 0, where `play` starts every run."""

MIXED = """
scenario "mixed" {
  request work = GET "/work"
  request health = GET "/health"
  phase "warm" 10s { rate 20/s
    send 90% work, 10% health }
  phase "hot" 5s { rate 40/s
    send 90% work, 10% health }
}
"""


def slow_work_fast_health(clock: ManualClock) -> Answer:
    """`work` takes 300 ms plus up to 400 ms more, by the time it is sent (so any split of the
    same schedule gets the same latencies); it answers 500 in second 3 and times out once at
    12 s. `health` answers in 5 ms."""

    def answer(request: PreparedRequest) -> tuple[float, Outcome]:
        now = clock.now()
        if request.url.endswith("/health"):
            return 0.005, status_outcome(200)
        delay = 0.3 + (now % 1.0) * 0.4
        if 12.0 <= now < 12.02:
            return delay, Outcome(None, ErrorKind.timeout)
        return delay, status_outcome(500 if 3.0 <= now < 3.2 else 200)

    return answer


def _run(**options: object) -> RunResults:
    clock = ManualClock()
    outcome, _, _, _ = play(MIXED, answer=slow_work_fast_health(clock), clock=clock, **options)
    return outcome.results


def _histograms(results: RunResults) -> dict[tuple[str, str], tuple[str, str]]:
    """(phase or "total", template) -> its two histograms, decoded and re-encoded."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for phase in (*results.stats.phases, results.stats.total):
        for request in phase.requests:
            assert request.histograms is not None
            found[phase.name, request.name] = (
                LatencyHistogram.decode(request.histograms.latency_us).encode(),
                LatencyHistogram.decode(request.histograms.service_time_us).encode(),
            )
    return found


def test_slow_work_and_fast_health_are_timed_and_shown_apart() -> None:
    """The summary's per-request table: work's latency is hundreds of ms, health's 5 ms; work's
    failures are told by status and error kind; the titles say latency is from the schedule."""
    results = _run()
    work, health = results.totals.requests
    assert work.latency_ms is not None
    assert health.latency_ms is not None
    assert work.latency_ms.p50 > 300
    assert health.latency_ms.max < 6  # 5 ms, to histogram precision
    assert work.service_ms is not None
    assert work.service_ms.p99 <= work.latency_ms.p99
    assert from_json(to_json(results)) == results
    summary = format_summary(results)
    lines = summary.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("request "))
    assert "p95 from schedule" in lines[header]
    work_row = lines[header + 1].split()
    health_row = lines[header + 2].split()
    assert work_row[:2] == ["work", str(work.sent)]
    failures = f"{work.failed} (500 x{work.status_counts[500]}, timeout x1)"
    assert failures in lines[header + 1]
    assert work.status_counts[500] > 0
    assert health_row[:3] == ["health", str(health.sent), "0"]
    assert health_row[3:] == ["5ms"] * 4
    assert int(work_row[-1].removesuffix("ms")) > 600


def test_one_template_without_failures_gets_no_request_table() -> None:
    """A single template that never failed would only repeat the phase table."""
    clock = ManualClock()
    text = MIXED.replace("send 90% work, 10% health", "send health")
    outcome, _, _, _ = play(text, answer=slow_work_fast_health(clock), clock=clock)
    assert "from schedule" not in format_summary(outcome.results)


def test_shards_merge_to_the_template_histograms_of_one_unsharded_run() -> None:
    """Two shards from one common start merge, per phase and in total, to exactly the
    per-template histograms (from schedule and from send) of the same run unsharded."""
    start = WALL0 + 2.0
    whole = _run(start_at=start)
    shards = [_run(shard=ShardInfo(i, 2), start_at=start) for i in range(2)]
    assert all(shard.totals.requests[0].sent < whole.totals.requests[0].sent for shard in shards)
    merged = merge_results(shards)
    assert_run_reconciles(merged)
    assert _histograms(merged) == _histograms(whole)
    assert merged.totals.requests == whole.totals.requests
    assert [p.load.requests for p in merged.phases] == [p.load.requests for p in whole.phases]
    assert [r.name for r in whole.stats.requests] == ["work", "health"]
    assert merged.stats.requests == whole.stats.requests


JUDGED = MIXED.replace(
    "send 90% work, 10% health }",
    "send 90% work, 10% health\n    expect p95 of work < 500ms\n    expect errors of health < 1%"
    "\n    expect achieved of work >= 99% }",
).replace(
    "\n}\n",
    "\n  expect p99 of health < 10ms\n  expect errors of work < 1%\n  expect p95 < 900ms\n}\n",
)


def _judgements(results: RunResults) -> list[tuple[str, str, float | None]]:
    return [(j.expectation.text, j.verdict.value, j.observed) for j in results.expectations]


def test_per_request_expectations_merge_to_the_verdicts_of_one_unsharded_run() -> None:
    """`p95 of work`, `errors of health`, `achieved of work` per phase and at scenario level
    are judged on the merged templates exactly as on the same run unsharded; work is slow and
    fails at 3 s, so some fail while health's pass."""
    start = WALL0 + 2.0
    clock = ManualClock()
    whole, _, _, _ = play(JUDGED, answer=slow_work_fast_health(clock), clock=clock, start_at=start)
    shards = []
    for i in range(2):
        clock = ManualClock()
        outcome, _, _, _ = play(
            JUDGED,
            answer=slow_work_fast_health(clock),
            clock=clock,
            shard=ShardInfo(i, 2),
            start_at=start,
        )
        shards.append(outcome.results)
    merged = merge_results(shards)
    assert _judgements(merged) == _judgements(whole.results)
    verdicts = {text: verdict for text, verdict, _ in _judgements(merged)}
    assert verdicts["expect p95 of work < 500ms"] == "failed"
    assert verdicts["expect errors of health < 1%"] == "passed"
    assert verdicts["expect achieved of work >= 99%"] == "passed"
    assert verdicts["expect p99 of health < 10ms"] == "passed"
    assert verdicts["expect errors of work < 1%"] == "failed"
    assert merged.exit_code == whole.results.exit_code == 1


class _Progresses(RunHandler):
    def __init__(self) -> None:
        self.seen: list[Progress] = []

    def progress(self, status: Progress) -> None:
        self.seen.append(status)


def test_live_status_line_says_which_request_fails_and_how() -> None:
    """No request errors on the line before work's first 500; after it, work's failures by
    status, then its timeout too; health, which never fails, is never named."""
    clock = ManualClock()
    recorder = _Progresses()
    play(
        MIXED,
        answer=slow_work_fast_health(clock),
        clock=clock,
        handlers=[recorder],
        progress_interval_s=1.0,
    )
    by_second = {round(p.elapsed_s): p for p in recorder.seen}
    assert by_second[2].request_errors == ()
    assert "errors:" not in status_line(by_second[2])
    early = by_second[5]
    (work,) = early.request_errors
    assert (work.name, work.causes) == ("work", (("500", work.failed),))
    assert status_line(early).endswith(f"errors: work {work.failed} (500 x{work.failed})")
    late = by_second[14].request_errors[0]
    assert late.causes == (("500", work.failed), ("timeout", 1))
    assert f"errors: work {work.failed + 1} (500 x{work.failed}, timeout x1)" in status_line(
        by_second[14]
    )


def test_each_template_series_adds_up_to_its_counts() -> None:
    """The document's per-template seconds sum to each template's counts, and the run's
    seconds are their sum, second by second."""
    results = _run()
    assert RunStats.thaw(results.stats).check_accounting() == []
    totals = {r.name: r for r in results.totals.requests}
    for request in results.stats.requests:
        assert sum(s.sent for s in request.seconds) == totals[request.name].sent
        assert sum(s.failed for s in request.seconds) == totals[request.name].failed
    for second in results.stats.seconds:
        parts = [s for r in results.stats.requests for s in r.seconds if s.second == second.second]
        assert sum(s.scheduled for s in parts) == second.scheduled

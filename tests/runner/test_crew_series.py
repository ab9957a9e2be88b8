"""The guards' view of a run sent by several processes (`runner.crew_series`), pure: the rows
a worker takes each tick, the parent's rows and frontier, and the merged series the guards
read. End to end under `--workers`: tests/runner/test_workers.py."""

from __future__ import annotations

from nimbus_scenarios.engine.series import SecondSeries
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.judge.guards import check_guards
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import GuardPlan
from nimbus_scenarios.runner.counts import GuardRows
from nimbus_scenarios.runner.crew_series import CrewRows, RowsTaker, rows_of, series_read

SCENARIO = """
scenario "crew" {
  watch deployment "consumer"
  request good = GET "/ok"
  request broken = GET "/bad"
  phase "p" 10s {
    rate 4/s
    send 75% good, 25% broken
  }
  GUARDS
}
"""


def guards(*lines: str) -> tuple[GuardPlan, ...]:
    return compile_source(Source("crew.scn", SCENARIO.replace("GUARDS", "\n  ".join(lines)))).guards


def done(series: SecondSeries, second: int, latency_ms: float, ok: bool, n: int = 1) -> None:
    for k in range(n):
        series.count_done(second + (k + 1) / 1000.0, int(latency_ms * 1000), ok)


def test_only_guards_on_errors_and_latency_read_series() -> None:
    """Replica and pod-restart guards read no series; `of NAME` names a template's."""
    assert series_read(guards("abort when replicas > 5", "abort when pod restarts > 1")) is None
    assert series_read(guards("abort when errors > 50% over 2s")) == (True, ())
    both = guards(
        "abort when p99 of broken > 1s over 2s", "abort when errors of broken > 9% over 1s"
    )
    assert series_read(both) == (False, ("broken",))


def test_a_worker_takes_each_complete_second_once() -> None:
    """A second is taken once the clock is past it, and never again; empty seconds are left
    out; each named template's own series comes along."""
    stats = RunStats(0.0)
    phase = stats.phase("p")
    good, broken = phase.request("good"), phase.request("broken")
    taker = RowsTaker(True, ("broken", "missing"))
    for second in (0, 2):
        for k in range(3):
            at = second + k / 10
            phase.schedule(at, good)
            phase.mark_sent(at, good)
            phase.record(at, at, at + 0.005, 200, True, good)
        at = second + 0.5
        phase.schedule(at, broken)
        phase.mark_sent(at, broken)
        phase.record(at, at, at + 0.007, 500, False, broken)
    first = taker.take(stats, 1.2)
    assert first.upto == 1
    assert [(r.second, r.succeeded, r.failed) for r in first.run] == [(0, 3, 1)]
    assert first.run[0].latency is not None
    assert [(name, [(r.second, r.failed) for r in rows]) for name, rows in first.requests] == [
        ("broken", [(0, 1)])
    ]
    assert taker.take(stats, 1.9).run == ()  # nothing new is complete
    later = taker.take(stats, 3.0)
    assert later.upto == 3
    assert [r.second for r in later.run] == [2]  # second 1 was empty
    assert taker.take(stats, 0.5).upto == 3  # a clock read never goes back


def test_the_parent_judges_the_whole_run_not_a_share() -> None:
    """With 75% good, 25% broken over 2 processes, the worker's share can be all `broken`:
    judged alone it is 100% errors; added to the parent's it is 25%, and the guard holds."""
    rule = guards("abort when errors > 50% over 1s")
    parent, worker = SecondSeries(0.0), SecondSeries(0.0)
    done(parent, 0, 5, True, n=3)
    done(worker, 0, 5, False, n=1)
    assert check_guards(rule, worker, 1.0, None) is not None  # the share alone: fires
    crew = CrewRows([1])
    crew.add(1, GuardRows(1, rows_of(worker, 0, 1)))
    assert crew.frontier() == 1.0
    merged = crew.series(parent)
    assert list(merged.failed[:1]) == [1]
    assert list(merged.succeeded[:1]) == [3]
    assert check_guards(rule, merged, 1.0, None) is None
    fired = check_guards(guards("abort when errors > 20% over 1s"), merged, 1.0, None)
    assert fired is not None
    assert "1/4 failed" in fired.detail


def test_latency_merges_every_process_s_histogram() -> None:
    """The window's p99 is the merged histogram's: slow responses in the worker's share show
    although the parent's are all fast."""
    rule = guards("abort when p99 > 500ms over 1s")
    parent, worker = SecondSeries(0.0), SecondSeries(0.0)
    done(parent, 0, 10, True, n=50)
    done(worker, 0, 900, True, n=50)
    assert check_guards(rule, parent, 1.0, None) is None
    crew = CrewRows([1])
    crew.add(1, GuardRows(1, rows_of(worker, 0, 1)))
    fired = check_guards(rule, crew.series(parent), 1.0, None)
    assert fired is not None
    assert 0.85 < fired.observed < 0.95


def test_the_frontier_waits_for_every_worker_still_sending() -> None:
    """The guards judge up to the slowest worker's last complete second; a worker that
    reported, failed or is gone no longer holds them back."""
    crew = CrewRows([1, 2])
    assert crew.frontier() == 0.0  # nothing reported yet: no window is complete
    crew.add(1, GuardRows(5))
    crew.add(2, GuardRows(3))
    assert crew.frontier() == 3.0
    crew.add(2, GuardRows(2))  # a late tick never moves it back
    assert crew.frontier() == 3.0
    crew.done(2)
    assert crew.frontier() == 5.0
    crew.done(1)
    assert crew.frontier() == float("inf")


def test_a_template_only_a_worker_sends_has_a_series_in_the_parent() -> None:
    """`of broken` where only the worker sends `broken`: the parent has no series of its own,
    the worker's rows make one; a template nobody sent has none."""
    worker = SecondSeries(0.0)
    done(worker, 0, 5, False, n=2)
    crew = CrewRows([1])
    assert crew.request_series("broken", None) is None
    crew.add(1, GuardRows(1, (), (("broken", rows_of(worker, 0, 1)),)))
    merged = crew.request_series("broken", None)
    assert merged is not None
    assert list(merged.failed) == [2]
    assert merged.latency_histogram(0) is not None
    assert merged.latency_histogram(1) is None
    assert crew.request_series("good", None) is None

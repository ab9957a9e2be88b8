"""Abort guards (pure): error share and latency over the whole seconds of a window, and the
latest ready replica count."""

from __future__ import annotations

import dataclasses
from functools import cache

from nimbus_scenarios.engine.series import SecondSeries
from nimbus_scenarios.judge.guards import check_guards, window_errors
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import GuardPlan

SCENARIO = """
scenario "guards" {
  watch deployment "consumer"
  request h = GET "/h"
  phase "p" 10s {
    rate 1/s
    send h
  }
  abort when errors > 50% over 1s
  abort when errors > 50% over 2s
  abort when p95 > 500ms over 2s
  abort when max >= 2s over 1s
  abort when replicas > 5
  abort when pod restarts > 2
}
"""


@cache
def guards() -> dict[str, GuardPlan]:
    """The scenario's guards by text."""
    return {g.text: g for g in compile_source(Source("guards.scn", SCENARIO)).guards}


def guard(text: str) -> list[GuardPlan]:
    return [guards()[text]]


def series_of(seconds: list[list[tuple[int, bool]]]) -> SecondSeries:
    """A series whose second s completes the (latency ms, ok) requests of seconds[s]."""
    series = SecondSeries(0.0)
    for second, requests in enumerate(seconds):
        for k, (latency_ms, ok) in enumerate(requests):
            series.count_done(second + k / 1000.0, latency_ms * 1000, ok)
    return series


# second 0: 10 fast successes; second 1: 8 of 10 fail, slowly; second 2: fast successes again
SERIES = [
    [(100, True)] * 10,
    [(1000, False)] * 8 + [(1000, True)] * 2,
    [(100, True)] * 10,
]


def test_error_guard_fires_on_the_last_whole_second() -> None:
    """`errors > 50% over 1s` sees 0% at +1 s, fires with 80% at +2 s, and is quiet at +3 s."""
    series = series_of(SERIES)
    rule = guard("abort when errors > 50% over 1s")
    assert check_guards(rule, series, 1.5, None) is None
    fired = check_guards(rule, series, 2.0, None)
    assert fired is not None
    assert fired.guard.text == "abort when errors > 50% over 1s"
    assert fired.observed == 80.0
    assert "8/10" in fired.detail
    assert check_guards(rule, series, 3.0, None) is None


def test_error_guard_window_length_matters() -> None:
    """Over 2 s the same burst of failures is 8 in 20, 40%: the guard holds."""
    series = series_of(SERIES)
    assert window_errors(series, 2.0, 2.0) == (8, 20)
    assert check_guards(guard("abort when errors > 50% over 2s"), series, 2.0, None) is None


def test_guards_wait_for_data() -> None:
    """No completions in the window, or less than a second into the run: nothing fires."""
    failing = series_of([[(100, False)] * 5])
    assert check_guards(guard("abort when errors > 50% over 1s"), failing, 0.5, None) is None
    assert (
        check_guards(guard("abort when errors > 50% over 1s"), SecondSeries(0.0), 5.0, None) is None
    )


def test_latency_guard_over_its_window() -> None:
    """`p95 > 500ms over 2s`: quiet over fast seconds, fires when the slow second is inside."""
    series = series_of(SERIES)
    rule = guard("abort when p95 > 500ms over 2s")
    assert check_guards(rule, series, 1.0, None) is None
    fired = check_guards(rule, series, 2.0, None)
    assert fired is not None
    assert 0.99 <= fired.observed <= 1.02


def test_max_latency_guard() -> None:
    """`max >= 2s over 1s` fires on one 2.5 s request in the last second."""
    series = series_of([[(100, True)] * 5 + [(2500, True)]])
    fired = check_guards(guard("abort when max >= 2s over 1s"), series, 1.0, None)
    assert fired is not None
    assert 2.49 <= fired.observed <= 2.53


def test_replica_guard_reads_ready_replicas() -> None:
    """`replicas > 5` fires at 6 ready, not at 5, and never without a sample."""
    rule = guard("abort when replicas > 5")
    empty = SecondSeries(0.0)
    fired = check_guards(rule, empty, 0.0, 6)
    assert fired is not None
    assert fired.observed == 6
    assert check_guards(rule, empty, 0.0, 5) is None
    assert check_guards(rule, empty, 0.0, None) is None


def test_pod_restarts_guard_reads_the_restarts_given() -> None:
    """`pod restarts > 2` fires at 3 restarts, not at 2, and never when pods are not watched;
    without the keyword the other guards work as before."""
    rule = guard("abort when pod restarts > 2")
    empty = SecondSeries(0.0)
    fired = check_guards(rule, empty, 5.0, 1, restarts=3)
    assert fired is not None
    assert fired.observed == 3
    assert fired.detail == "3 pod restarts since the run started"
    assert check_guards(rule, empty, 5.0, 1, restarts=2) is None
    assert check_guards(rule, empty, 5.0, 1, restarts=None) is None
    assert check_guards(rule, empty, 5.0, 1) is None


def test_first_firing_guard_is_reported() -> None:
    """With several guards, the first in the scenario that fires is the one reported."""
    series = series_of(SERIES)
    fired = check_guards(list(guards().values()), series, 2.0, 9)
    assert fired is not None
    assert fired.guard.text == "abort when errors > 50% over 1s"


def test_latency_guard_is_not_judged_over_seconds_with_no_response() -> None:
    """Seconds of resets and timeouts only hold no latency: a latency guard never fires on them."""
    series = SecondSeries(0.0)
    for second in range(3):
        for k in range(10):
            series.count_unanswered(second + k / 100.0, False)
    assert window_errors(series, 3.0, 2.0) == (20, 20)
    assert check_guards(guard("abort when p95 > 500ms over 2s"), series, 3.0, None) is None
    assert check_guards(guard("abort when max >= 2s over 1s"), series, 3.0, None) is None
    assert check_guards(guard("abort when errors > 50% over 2s"), series, 3.0, None) is not None


def test_a_guard_of_one_request_reads_that_requests_series() -> None:
    """`errors of work > 50%`: fires on work's own seconds while the blend is mostly fine, and
    waits while work has no series yet."""
    blended = series_of([[(10, True)] * 18 + [(1000, False)] * 2])
    work = series_of([[(1000, False)] * 2])
    rule = [dataclasses.replace(guards()["abort when errors > 50% over 1s"], request="work")]
    assert check_guards(guard("abort when errors > 50% over 1s"), blended, 1.0, None) is None
    fired = check_guards(rule, blended, 1.0, None, {"work": work}.get)
    assert fired is not None
    assert (fired.observed, fired.detail) == (100.0, "2/2 of work failed over 1s")
    assert check_guards(rule, blended, 1.0, None, {"health": blended}.get) is None
    assert check_guards(rule, blended, 1.0, None) is None


def test_a_latency_guard_of_one_request() -> None:
    """`p99 of work > 500ms` fires on work's 1 s requests hidden in a fast blend."""
    blended = series_of([[(10, True)] * 98 + [(1000, True)] * 2])
    work = series_of([[(1000, True)] * 2])
    rule = [dataclasses.replace(guards()["abort when p95 > 500ms over 2s"], request="work")]
    assert check_guards(guard("abort when p95 > 500ms over 2s"), blended, 1.0, None) is None
    fired = check_guards(rule, blended, 1.0, None, {"work": work}.get)
    assert fired is not None
    assert fired.detail.startswith("p95 of work 1.0")

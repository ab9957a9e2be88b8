"""A shard that starts after the common start, on a manual clock: what was due before it started
is dropped as `late_start` (never sent, so no burst), the rest goes out on time, `achieved` falls
by what was dropped, and `merge` reports how far apart the shards started. And the wait for a
start written later (`--start-at-from`, `runner.start`) with a scripted source: its deadline,
a stop during it, and sources that refuse or hold no time."""

from __future__ import annotations

import datetime as dt
import math
import signal
from collections import Counter

import pytest

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.errors import ClusterForbidden, ClusterUnreachable, NimbusError
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.merge import merge_results
from nimbus_scenarios.report.console import format_summary
from nimbus_scenarios.report.html import render_html
from nimbus_scenarios.results.io import from_json, to_json
from nimbus_scenarios.results.model import ShardInfo, Verdict
from nimbus_scenarios.runner import RunOutcome
from tests.support.checks import assert_run_reconciles, judgement
from tests.support.fakes import ScriptedTransport
from tests.support.play import play

WALL0 = ManualClock().wall()
"""The manual clock's wall time at clock time 0, where `play` starts every run."""

SHARDED = """
scenario "late" {
  request work = GET "/work"
  phase "warm" 10s { rate 20/s
    send work
    expect achieved >= 99% }
  phase "users" 5s { users 2
    send work }
}
"""
"""20/s over two shards: 10/s each, 100 arrivals per shard in `warm`."""


def test_a_shard_three_seconds_late_drops_what_it_missed_and_never_bursts() -> None:
    """3 s late in a 10/s phase: nothing is sent for the missed 3 s, 30 arrivals are dropped
    for a late start, every second after gets its 10, and `achieved` fails at 70%."""
    outcome, transport, _, _ = play(SHARDED, shard=ShardInfo(1, 2), start_at=WALL0 - 3.0)
    results = outcome.results
    warm = results.phases[0]
    assert warm.planned == 100
    assert (warm.load.scheduled, warm.load.sent, warm.load.dropped) == (100, 70, 30)
    assert warm.load.dropped_by_kind == {"late_start": 30}
    assert results.totals.dropped_by_kind == {"late_start": 30}
    assert results.start_late_s == 3.0
    # The run's clock started 3 s into the plan: clock second s is the plan's second s + 3.
    sends = [s.at for s in transport.paths("/work")]
    warm_sends = Counter(int(at) for at in sends if at < 7.0)
    assert warm_sends == dict.fromkeys(range(7), 10), "a burst, or a gap, at the start"
    assert warm.ran_s == (3.0, 10.0)
    achieved = judgement(results, "expect achieved >= 99%")
    assert achieved.verdict is Verdict.FAILED
    assert achieved.observed == 70.0
    assert "30 dropped for a late start" in achieved.detail
    assert outcome.exit_code is ExitCode.FAILED
    assert any("started 3.000s after the common start: 30 arrivals" in n for n in results.notes)
    assert_run_reconciles(results)
    assert from_json(to_json(results)) == results


def test_late_closed_model_users_start_at_once_and_the_note_says_so() -> None:
    """Users of a phase that began before the shard started run from its start to the phase's
    end; nothing of theirs is dropped, and the note names them."""
    outcome, transport, _, _ = play(SHARDED, shard=ShardInfo(0, 2), start_at=WALL0 - 12.0)
    results = outcome.results
    warm, users = results.phases
    assert (warm.load.sent, warm.load.dropped_by_kind) == (0, {"late_start": 100})
    assert users.load.dropped == 0
    assert users.load.sent > 0
    first = min(s.at for s in transport.paths("/work"))
    assert first == 0.0  # the user started as the shard did, 2 s into its phase
    assert any("the users of users started at once, 12.000s late" in n for n in results.notes)


def test_merge_reports_the_skew_between_an_on_time_and_a_late_shard() -> None:
    """Shard 0 waits for the common start, shard 1 starts 3 s after it: the merge says the
    shards started 3 s apart, shard 1 last, and adds up the late-start drops."""
    on_time, _, _, _ = play(SHARDED, shard=ShardInfo(0, 2), start_at=WALL0 + 2.0)
    late, _, _, _ = play(SHARDED, shard=ShardInfo(1, 2), start_at=WALL0 - 3.0)
    assert on_time.results.start_late_s == 0.0
    assert on_time.results.phases[0].load.dropped_by_kind == {}
    merged = merge_results([late.results, on_time.results])
    skew = merged.start_skew
    assert skew is not None
    assert (skew.skew_s, skew.latest_shard, skew.latest_late_s) == (3.0, 1, 3.0)
    assert [(s.shard, s.start_late_s) for s in merged.merged_from or ()] == [(0, 0.0), (1, 3.0)]
    assert merged.start_late_s is None
    assert merged.phases[0].load.dropped_by_kind == {"late_start": 30}
    assert merged.phases[0].load.sent == 170
    assert judgement(merged, "expect achieved >= 99%").observed == 85.0
    assert_run_reconciles(merged)
    assert from_json(to_json(merged)) == merged
    summary = format_summary(merged)
    assert "start skew 3.000s between shards; latest shard 1, 3.000s after the common start" in (
        summary
    )
    assert "dropped for a late start: 30 (warm 30), never sent" in summary
    page = render_html(merged)
    assert "start skew 3.000s between shards; latest shard 1" in page


def test_a_run_without_a_common_start_records_no_lateness() -> None:
    """No `--start-at`: no `start_late_s` in the document, and no late-start drops."""
    outcome, _, _, _ = play(SHARDED)
    assert outcome.results.start_late_s is None
    assert '"start_late_s"' not in to_json(outcome.results)


class ScriptedStart:
    """A start source on a manual clock: nothing until `at`, then `value` (or always `error`)."""

    description = "configmap test/start (scripted)"

    def __init__(
        self, clock: ManualClock, at: float, value: str = "", error: NimbusError | None = None
    ) -> None:
        self.clock = clock
        self.at = at
        self.value = value
        self.error = error
        self.reads: list[float] = []

    async def read(self) -> str | None:
        """What the source holds at the clock's time."""
        now = self.clock.now()
        self.reads.append(now)
        if self.error is not None:
            raise self.error
        return self.value if now >= self.at else None

    def close(self) -> None:
        """Nothing held."""


ONE_PHASE = """
scenario "wait" {
  request work = GET "/work"
  phase "warm" 5s { rate 10/s
    send work }
  cleanup { send DELETE "/cleanup" }
}
"""


def play_waiting(
    at: float, value: str = "", error: NimbusError | None = None, **options: object
) -> tuple[RunOutcome, ScriptedTransport, ScriptedStart]:
    """Play ONE_PHASE waiting on a scripted start source that shares the run's clock."""
    clock = ManualClock()
    source = ScriptedStart(clock, at, value, error)
    outcome, transport, _, _ = play(ONE_PHASE, start_source=source, clock=clock, **options)
    return outcome, transport, source


def test_the_runner_waits_for_a_start_written_later_and_starts_on_it() -> None:
    """The start appears at clock 4 s and names clock 6 s: the phase runs from 6 s, on time."""
    outcome, transport, source = play_waiting(4.0, f"{WALL0 + 6.0}")
    assert outcome.exit_code is ExitCode.OK
    assert source.reads == [0.0, 1.0, 2.0, 3.0, 4.0]
    sends = [s.at for s in transport.paths("/work")]
    assert (min(sends), len(sends)) == (6.0, 50)
    assert outcome.results.start_late_s == 0.0


def test_an_iso_start_in_the_past_makes_the_shard_late() -> None:
    """An ISO 8601 start 2 s before it was read: the shard is 2 s late and drops 20."""
    moment = dt.datetime.fromtimestamp(WALL0 + 1.0, dt.UTC).isoformat()
    outcome, transport, _ = play_waiting(3.0, moment)
    assert outcome.results.start_late_s == 2.0
    assert outcome.results.totals.dropped_by_kind == {"late_start": 20}
    assert min(s.at for s in transport.paths("/work")) == 3.0


def test_no_start_within_start_wait_is_exit_4_and_sends_nothing() -> None:
    """Nothing written in 10 s of `--start-at-from` wait: exit 4 naming the source, no load, no
    cleanup."""
    outcome, transport, source = play_waiting(math.inf, start_wait_s=10.0, consumer_cleanup=True)
    assert outcome.exit_code is ExitCode.INFRASTRUCTURE
    assert outcome.results.error == (
        "no common start in configmap test/start (scripted) within --start-wait 10s"
    )
    assert [s.path for s in transport.sent] == ["/"]  # the pre-flight alone
    assert len(source.reads) == 11


def test_sigterm_while_waiting_aborts_with_exit_3() -> None:
    """SIGTERM during the wait stops it at once: aborted (exit 3), nothing sent but pre-flight."""
    outcome, transport, source = play_waiting(
        math.inf, signals_at=[(2.5, signal.SIGTERM)], consumer_cleanup=True
    )
    assert outcome.exit_code is ExitCode.ABORTED
    assert [s.path for s in transport.sent] == ["/"]
    assert source.reads == [0.0, 1.0, 2.0]


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("", ClusterForbidden("forbidden: cannot get configmaps in namespace test"),
         "configmap test/start (scripted): forbidden: cannot get configmaps in namespace test"),
        ("soon", None, "the common start is not a time: expected Unix seconds or an ISO 8601"),
        ("nan", None, "the common start is not a time"),
    ],
)  # fmt: skip
def test_a_forbidden_or_broken_start_ends_the_wait_at_once(
    value: str, error: NimbusError | None, message: str
) -> None:
    """A source that may not be read, or holds no time, is exit 4 on the first read."""
    outcome, transport, source = play_waiting(0.0, value, error)
    assert outcome.exit_code is ExitCode.INFRASTRUCTURE
    assert message in (outcome.results.error or "")
    assert source.reads == [0.0]
    assert [s.path for s in transport.sent] == ["/"]


def test_errors_worth_retrying_are_retried_and_named_at_the_deadline() -> None:
    """An unreachable API is read again each second, and named when the wait gives up."""
    outcome, _, source = play_waiting(
        math.inf, error=ClusterUnreachable("Kubernetes API at x is unreachable"), start_wait_s=3.0
    )
    assert outcome.exit_code is ExitCode.INFRASTRUCTURE
    assert len(source.reads) == 4
    assert (outcome.results.error or "").endswith(
        "(last error: Kubernetes API at x is unreachable)"
    )

"""The pacer's ticks on a manual clock: arrivals due within a tick start together at its end,
each stamped with its own scheduled time and late by its own deadline, none early, and the
pacer wakes about once per tick however many arrivals fall in it."""

from __future__ import annotations

import asyncio
from itertools import pairwise

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.engine.dispatch import Dispatcher, ExtraHeaders
from nimbus_scenarios.engine.histogram import LatencyHistogram
from nimbus_scenarios.engine.pacer import TICK_S, run_open
from nimbus_scenarios.engine.request import Outcome
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.plan.arrivals import arrival_times
from nimbus_scenarios.plan.model import PhasePlan
from tests.engine.support import mix_of, phase_plan
from tests.support.fakes import ScriptedTransport

ORIGIN = 100.0
EPSILON = 1e-9  # float noise in sums of clock times, far below a tick


class CountingClock(ManualClock):
    """A manual clock that counts the waits asked of it: the pacer's wake-ups."""

    def __init__(self, start: float) -> None:
        super().__init__(start)
        self.waits = 0

    async def sleep_until(self, deadline: float) -> None:
        """Count the wait, then wait as a manual clock does."""
        self.waits += 1
        await super().sleep_until(deadline)


class Played:
    """What one phase played: (scheduled, sent) per request, the stats, the dispatcher."""

    def __init__(self) -> None:
        self.pairs: list[tuple[float, float]] = []
        self.stats = RunStats(ORIGIN)
        self.dispatcher: Dispatcher | None = None

    def observe(
        self,
        _phase: str,
        _template: str,
        scheduled: float,
        sent: float,
        _done: float,
        _outcome: Outcome,
        _ok: bool,
        _extra: ExtraHeaders | None,
    ) -> None:
        """A dispatcher observer: keep the request's scheduled and sent times."""
        self.pairs.append((scheduled, sent))


def play(phase: PhasePlan, clock: CountingClock, *, stop_at: float | None = None) -> Played:
    """Play `phase` from ORIGIN on `clock` with a target that answers at once (so only the
    pacer waits on the clock); with `stop_at`, cancel the pacer then, as the runner does at a
    phase's end or a stop."""
    played = Played()

    async def work() -> None:
        dispatcher = Dispatcher(
            ScriptedTransport(clock), clock=clock, max_inflight=100_000, observers=(played.observe,)
        )
        played.dispatcher = dispatcher
        pacer = asyncio.ensure_future(
            run_open(phase, mix_of(phase), dispatcher, played.stats.phase("p"), ORIGIN, clock=clock)
        )
        if stop_at is not None:
            await clock.sleep_until(stop_at)
            pacer.cancel()
        await asyncio.gather(pacer, return_exceptions=True)
        assert await dispatcher.drain(60.0) == 0

    async def main() -> None:
        await clock.run(work())

    asyncio.run(main())
    return played


def test_arrivals_due_within_a_tick_start_together_each_with_its_own_schedule() -> None:
    """At 5,000/s (0.2 ms apart) every arrival is stamped with its own planned time and sent at
    the first wake-up at or after it; wake-ups are at least a tick apart."""
    phase = phase_plan("rate 5000/s", length="200ms")
    played = play(phase, CountingClock(ORIGIN - 1.0))
    planned = [ORIGIN + offset for offset in arrival_times(phase)]
    assert [scheduled for scheduled, _ in played.pairs] == planned
    wakes = sorted({sent for _, sent in played.pairs})
    for scheduled, sent in played.pairs:
        assert sent == min(w for w in wakes if w >= scheduled)  # never early, never a tick late
    assert all(b - a >= TICK_S - EPSILON for a, b in pairwise(wakes[:-1]))
    assert len(wakes) < len(planned) / 4  # several arrivals per wake-up


def test_lateness_is_measured_from_each_arrivals_own_deadline() -> None:
    """The send-lateness histogram holds, for every arrival, its send time minus its own
    scheduled time (below a tick), not the tick's lateness."""
    phase = phase_plan("rate 3000/s", length="100ms")
    played = play(phase, CountingClock(ORIGIN - 1.0))
    assert played.dispatcher is not None
    expected = LatencyHistogram(3)
    for scheduled, sent in played.pairs:
        assert 0.0 <= sent - scheduled < TICK_S + EPSILON
        expected.record(int((sent - scheduled) * 1_000_000.0))
    lateness = played.dispatcher.lateness
    assert lateness == expected
    assert lateness.total_count == len(played.pairs) == 300
    assert 0 < lateness.max_value() <= 1_000  # late by up to a tick, by design


def test_wake_ups_follow_the_ticks_not_the_arrivals() -> None:
    """At 20,000/s for half a second (10,000 arrivals) the pacer waits on the clock about once
    per millisecond, some 500 times, not once per arrival."""
    phase = phase_plan("rate 20000/s", length="500ms")
    clock = CountingClock(ORIGIN - 1.0)
    played = play(phase, clock)
    assert len(played.pairs) == 10_000
    assert clock.waits <= 0.5 / TICK_S + 2


def test_slow_arrivals_still_wake_the_pacer_at_their_own_time() -> None:
    """At 400/s (2.5 ms apart, more than a tick) each arrival is sent exactly at its time."""
    phase = phase_plan("rate 400/s", length="100ms")
    clock = CountingClock(ORIGIN - 1.0)
    played = play(phase, clock)
    assert all(sent == scheduled for scheduled, sent in played.pairs)
    assert clock.waits == len(played.pairs) == 40


def test_the_last_tick_of_a_phase_is_sent_before_the_phase_ends() -> None:
    """Cancelled at the phase end, as the runner does, the pacer has sent every arrival of the
    plan: its last tick ends at the last arrival, not a tick after the previous wake-up."""
    phase = phase_plan("rate 3000/s", length="1s")
    played = play(phase, CountingClock(ORIGIN - 1.0), stop_at=ORIGIN + phase.end_s)
    stats = played.stats.phases["p"]
    assert stats.scheduled == stats.sent == len(list(arrival_times(phase))) == 3000


def test_a_stop_counts_only_arrivals_whose_time_had_come() -> None:
    """Stopped mid-phase, the pacer has scheduled only arrivals due by then, each sent: none
    whose time had not come, and at most a tick's worth of due ones left unsent."""
    phase = phase_plan("rate 3000/s", length="1s")
    stop = ORIGIN + 0.4005
    played = play(phase, CountingClock(ORIGIN - 1.0), stop_at=stop)
    stats = played.stats.phases["p"]
    due = [ORIGIN + offset for offset in arrival_times(phase) if ORIGIN + offset <= stop]
    assert stats.scheduled == stats.sent == len(played.pairs)
    assert all(scheduled <= stop for scheduled, _ in played.pairs)
    assert len(due) - 3 * TICK_S * 1000 <= stats.scheduled <= len(due)

"""The open-model pacer on a manual clock with a fake transport: every arrival is sent at exactly
its planned offset, templates follow the mix, shards split the plan, and nothing really sleeps."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Coroutine
from itertools import islice
from typing import Any, TypeVar

import pytest

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.engine.dispatch import Dispatcher
from nimbus_scenarios.engine.pacer import run_open
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.plan.arrivals import arrival_times, mix_order, shard_share
from nimbus_scenarios.plan.model import PhasePlan
from tests.engine.support import mix_of, phase_plan
from tests.support.fakes import ScriptedTransport, answer_after

T = TypeVar("T")
ORIGIN = 100.0  # the clock time of run offset 0; not 0, so that offsets and times differ


def play(clock: ManualClock, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` on a fresh loop, the manual clock jumping whenever every task waits."""

    async def main() -> T:
        return await clock.run(work)

    return asyncio.run(main())


def run_phase(
    phase: PhasePlan,
    *,
    delay_s: float = 0.01,
    max_inflight: int = 1000,
    shard: tuple[int, int] = (0, 1),
) -> tuple[ScriptedTransport, RunStats, Dispatcher, ManualClock]:
    """Play ``phase`` from ``ORIGIN`` and drain it; the transport answers after ``delay_s``."""
    clock = ManualClock(start=ORIGIN - 1.0)
    transport = ScriptedTransport(clock, answer_after(delay_s))
    stats = RunStats(ORIGIN)
    holder: list[Dispatcher] = []

    async def work() -> None:
        dispatcher = Dispatcher(transport, clock=clock, max_inflight=max_inflight)
        holder.append(dispatcher)
        await run_open(
            phase, mix_of(phase), dispatcher, stats.phase(phase.name), ORIGIN, clock=clock,
            shard=shard,
        )  # fmt: skip
        assert await dispatcher.drain(60.0) == 0

    play(clock, work())
    return transport, stats, holder[0], clock


def test_constant_rate_arrivals_are_sent_at_exact_offsets() -> None:
    """`rate 10/s` for 2 s sends 20 requests at exactly 0.0, 0.1, ... 1.9 s after the origin."""
    transport, stats, dispatcher, _ = run_phase(phase_plan("rate 10/s"))
    assert transport.send_times() == [ORIGIN + k / 10 for k in range(20)]
    phase = stats.phases["p"]
    assert (phase.scheduled, phase.sent, phase.succeeded, phase.dropped) == (20, 20, 20, 0)
    assert dispatcher.lateness.total_count == 20
    assert dispatcher.lateness.max_value() == 0  # never late: the clock waits for the pacer
    assert stats.check_accounting() == []


def test_ramp_arrivals_follow_the_rate_integral() -> None:
    """`ramp 10/s -> 30/s` over 2 s: arrival k is where 10t + 5t^2 reaches k, sent exactly then."""
    phase = phase_plan("ramp 10/s -> 30/s")
    transport, stats, _, _ = run_phase(phase)
    planned = [ORIGIN + offset for offset in arrival_times(phase)]
    assert transport.send_times() == planned
    by_hand = [(-10 + math.sqrt(100 + 20 * k)) / 10 for k in range(40)]
    assert [t - ORIGIN for t in planned] == pytest.approx(by_hand, abs=1e-9)
    assert stats.phases["p"].sent == 40


def test_burst_sends_each_burst_at_one_instant() -> None:
    """`burst 5 every 1s` over 3 s sends five requests at each of 0, 1 and 2 s."""
    transport, _, _, _ = run_phase(phase_plan("burst 5 every 1s", length="3s"))
    assert transport.send_times() == [ORIGIN + s for s in (0.0, 1.0, 2.0) for _ in range(5)]


def test_latency_is_the_transport_delay_from_the_scheduled_time() -> None:
    """With a 50 ms fake exchange, every request's latency and service time are 50 ms."""
    _, stats, _, _ = run_phase(phase_plan("rate 10/s"), delay_s=0.05)
    phase = stats.phases["p"]
    for histogram in (phase.latency, phase.service_time):
        assert histogram.total_count == 20
        assert 49.9 <= histogram.summary().p50 <= 50.1
        assert 49.9 <= histogram.summary().max <= 50.1


def test_mix_follows_the_weights_and_counts_per_template() -> None:
    """`send 70% a, 30% b` over 20 arrivals sends 14 a and 6 b, each counted for its template."""
    transport, stats, _, _ = run_phase(phase_plan("rate 10/s", send="70% a, 30% b"))
    paths = [sent.path for sent in transport.sent]
    assert paths.count("/a") == 14
    assert paths.count("/b") == 6
    assert "/b" in paths[:4]  # interleaved, not 14 a's first
    requests = stats.phases["p"].requests
    assert list(requests) == ["a", "b"]
    assert (requests["a"].sent, requests["b"].sent) == (14, 6)
    assert (requests["a"].succeeded, requests["b"].succeeded) == (14, 6)


def test_a_shard_sends_every_nth_arrival_at_its_planned_time() -> None:
    """Shard 1 of 3 sends arrivals 1, 4, 7, ... 19 of the plan, at their own offsets."""
    phase = phase_plan("rate 10/s")
    transport, stats, _, _ = run_phase(phase, shard=(1, 3))
    assert transport.send_times() == [ORIGIN + k / 10 for k in range(1, 20, 3)]
    assert stats.phases["p"].scheduled == shard_share(20, 1, 3) == 7


def test_shards_together_send_the_plans_mix_arrival_by_arrival() -> None:
    """Three shards of `70% a, 30% b` send, between them, arrival k with the mix order's k-th
    template: each shard steps the chooser through the arrivals it skips."""
    phase = phase_plan("rate 10/s", send="70% a, 30% b")
    by_time: dict[float, str] = {}
    for index in range(3):
        transport, _, _, _ = run_phase(phase, shard=(index, 3))
        by_time.update((sent.at, sent.path) for sent in transport.sent)
    names = [name for name, _ in phase.mix]
    expected = [f"/{names[i]}" for i in islice(mix_order(phase.weights), 20)]
    assert [by_time[t] for t in sorted(by_time)] == expected
    assert expected.count("/a") == 14


def test_arrivals_over_the_in_flight_cap_are_dropped() -> None:
    """With 2 in flight at most and 250 ms exchanges at 10/s, every third arrival is dropped."""
    transport, stats, _, _ = run_phase(phase_plan("rate 10/s"), delay_s=0.25, max_inflight=2)
    phase = stats.phases["p"]
    assert phase.dropped == 6  # arrivals 2, 5, 8, 11, 14, 17
    assert transport.send_times() == [ORIGIN + k / 10 for k in range(20) if k % 3 != 2]
    assert phase.requests["a"].dropped == 6
    assert stats.check_accounting() == []


def test_a_ten_minute_phase_plays_without_sleeping() -> None:
    """600 s of `rate 5/s` (3,000 arrivals) plays on the manual clock in a few seconds at most."""
    started = time.monotonic()
    transport, stats, _, clock = run_phase(phase_plan("rate 5/s", length="10m"))
    assert time.monotonic() - started < 10.0
    assert len(transport.sent) == 3000
    assert transport.send_times()[-1] == ORIGIN + 2999 / 5
    assert clock.now() == ORIGIN + 2999 / 5 + 0.01
    assert stats.phases["p"].succeeded == 3000


def test_a_mix_that_does_not_match_the_weights_is_refused() -> None:
    """run_open refuses a mix with a different number of templates than the phase's weights."""
    phase = phase_plan("rate 10/s", send="70% a, 30% b")
    clock = ManualClock()

    async def work() -> None:
        dispatcher = Dispatcher(ScriptedTransport(clock), clock=clock, max_inflight=1)
        await run_open(phase, mix_of(phase)[:1], dispatcher, RunStats(0).phase("p"), 0, clock=clock)

    with pytest.raises(ValueError, match="1 templates for 2 mix weights"):
        play(clock, work())

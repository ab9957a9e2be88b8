"""The open-model pacer: sends a phase's arrivals at their absolute scheduled times, by ticks.

Arrival times come from `plan.arrivals` as offsets from the run start, so lateness never
accumulates: a late wake-up sends everything that is due at once and the next arrival keeps its
own deadline. The pacer wakes once per tick (`TICK_S`), or at the next due arrival when that is
later, and starts every arrival due by then: at 5,000/s that is one timer wake-up per five
arrivals instead of one each, and the loop's timer heap stays small. Each arrival is still
stamped with its own scheduled time and its lateness measured from it (send time minus its own
deadline), so ticks cost at most a tick of lateness, never an early send. A process that starts
late (a shard after the common `--start-at`) is another matter: the arrivals due before it
started (`missed_before`) are counted as scheduled and dropped (`DropKind.LATE_START`), never
sent, so a late shard joins the plan where it stands instead of bursting seconds of arrivals at
the target. The pacer never waits for responses; the dispatcher drops what would pass the
in-flight cap. Time comes from the run's `Clock`: on a manual clock an arrival is sent at
exactly its planned offset, or at the tick that follows the pacer's last wake-up when it falls
within that tick.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from nimbus_scenarios.clock import Clock
from nimbus_scenarios.engine.dispatch import CompiledTemplate, Dispatcher
from nimbus_scenarios.engine.records import DropKind
from nimbus_scenarios.engine.stats import PhaseStats
from nimbus_scenarios.plan.arrivals import arrival_times, last_arrival_offset, mix_chooser
from nimbus_scenarios.plan.model import PhasePlan

__all__ = ["TICK_S", "YIELD_EVERY", "Shard", "check_mix", "run_open"]

Shard = tuple[int, int]
"""(index, count): shard `index` of `count` sends the arrivals k with k % count == index."""


def check_mix(phase: PhasePlan, mix: Sequence[CompiledTemplate]) -> None:
    """Refuse a mix that does not match the phase's weights (one template per weight)."""
    if not mix or len(mix) != len(phase.weights):
        raise ValueError(
            f"phase {phase.name!r}: {len(mix)} templates for {len(phase.weights)} mix weights"
        )


_LATE_START = DropKind.LATE_START

YIELD_EVERY = 64
"""When behind schedule, give the loop a turn after this many sends so responses are read."""

TICK_S = 0.001
"""The pacer's shortest sleep: it wakes at most once per tick (plus once per late start's
`YIELD_EVERY` drops and behind-schedule sends), so an arrival is at most about a tick late
by design. One millisecond is also the resolution of the loop's timers (epoll and libuv)."""


async def run_open(
    phase: PhasePlan,
    mix: Sequence[CompiledTemplate],
    dispatcher: Dispatcher,
    stats: PhaseStats,
    origin: float,
    *,
    clock: Clock,
    shard: Shard = (0, 1),
    missed_before: float | None = None,
) -> None:
    """Send every arrival of `phase`; `origin` is the clock time of run offset 0.

    `mix` holds the phase's templates in the order of `phase.weights`. With `shard` (I, N),
    only arrivals k with k % N == I are sent, and the template chooser still steps through
    every arrival: the N shards together send exactly the plan, mix included. Cancelling the
    task stops scheduling at once: arrivals whose time had not come are never counted as
    scheduled. Arrivals due before clock time `missed_before` (when this process started its
    phases, if it started late) are scheduled and dropped as `late_start`, never sent.
    """
    check_mix(phase, mix)
    now = clock.now
    chooser = mix_chooser(phase.weights)
    templates = list(mix)
    requests = [stats.request(template.name) for template in templates]
    burst_since_yield = 0
    index, count = shard
    missed = -math.inf if missed_before is None else missed_before
    woke = -math.inf  # the clock at the last look: every arrival due by then is sent at once
    last = last_arrival_offset(phase)
    # A tick never ends after the phase's last arrival: the runner ends the phase (cancelling
    # the pacer) at its end, and the arrivals of a tick that would straddle it would be lost.
    latest = math.inf if last is None else origin + last
    for k, offset in enumerate(arrival_times(phase)):
        if count > 1 and k % count != index:
            next(chooser)
            continue
        deadline = origin + offset
        if deadline < missed:
            request = requests[next(chooser)]
            stats.schedule(deadline, request)
            stats.drop(deadline, request, _LATE_START)
            burst_since_yield += 1
            if burst_since_yield >= YIELD_EVERY:
                await asyncio.sleep(0)  # dropping a long late start still lets the loop run
                burst_since_yield = 0
            continue
        if deadline > woke:
            current = now()
            while deadline > current:  # a loop: a timer may fire a hair early, never send early
                await clock.sleep_until(max(deadline, min(woke + TICK_S, latest)))
                current = now()
            woke = current
            burst_since_yield = 0
        elif burst_since_yield >= YIELD_EVERY:
            await asyncio.sleep(0)  # a turn for the loop, not a wait: no clock involved
            burst_since_yield = 0
        chosen = next(chooser)
        stats.schedule(deadline, requests[chosen])
        dispatcher.send_open(stats, templates[chosen], deadline)
        burst_since_yield += 1

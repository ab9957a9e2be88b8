"""The closed model: `users N think D` — N loops, each sending its next request when the last
one ends, after D. A user starts no request at or after the phase end; one in flight then
finishes in the background and still counts for the phase it was sent in. Time comes from the
run's `Clock`.

Users start in batches of `USERS_BATCH`, each batch a turn of the event loop: started all at
once, tens of thousands of users each take their first step in one turn, which holds the loop
for seconds, so that a stop or `--max-duration` acts that much late. Validation caps the users
of one process (`language.vocabulary.MAX_USERS_PER_PROCESS`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nimbus_scenarios.clock import Clock
from nimbus_scenarios.engine.dispatch import CompiledTemplate, Dispatcher
from nimbus_scenarios.engine.pacer import Shard, check_mix
from nimbus_scenarios.engine.stats import PhaseStats
from nimbus_scenarios.plan.arrivals import mix_chooser
from nimbus_scenarios.plan.model import PhasePlan

__all__ = ["USERS_BATCH", "run_users"]

USERS_BATCH = 100
"""Users started per turn of the event loop (see the module docstring)."""


async def run_users(
    phase: PhasePlan,
    mix: Sequence[CompiledTemplate],
    dispatcher: Dispatcher,
    stats: PhaseStats,
    origin: float,
    background: set[asyncio.Task[None]],
    *,
    clock: Clock,
    shard: Shard = (0, 1),
) -> None:
    """Run the phase's users until its end; their last requests go on in `background`.

    `mix` holds the phase's templates in the order of `phase.weights`; the users share one
    chooser. With `shard` (I, N) this process runs users u with u % N == I, so N shards run all
    N users. Users start `USERS_BATCH` at a time with a turn of the loop between batches;
    cancelling the task stops starting them (those started go on in `background`).
    """
    check_mix(phase, mix)
    loop = asyncio.get_running_loop()
    end = origin + phase.end_s
    chooser = mix_chooser(phase.weights)
    templates = list(mix)
    requests = [stats.request(template.name) for template in templates]

    async def user() -> None:
        while (now := clock.now()) < end:
            chosen = next(chooser)
            stats.schedule(now, requests[chosen])
            await dispatcher.send_closed(stats, templates[chosen], now)
            if phase.think_s > 0:
                await clock.sleep_until(min(clock.now() + phase.think_s, end))

    index, count = shard
    for started, _ in enumerate(range(index, phase.users, count)):
        if started and started % USERS_BATCH == 0:
            await asyncio.sleep(0)  # a turn for the loop, not a wait: no clock involved
        task = loop.create_task(user())
        background.add(task)
        task.add_done_callback(background.discard)
    await clock.sleep_until(end)

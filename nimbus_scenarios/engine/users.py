"""The closed model: `users N think D` — N loops, each sending its next request when the last
one ends, after D. A user starts no request at or after the phase end; one in flight then
finishes in the background and still counts for the phase it was sent in."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nimbus_scenarios.engine.dispatch import CompiledTemplate, Dispatcher
from nimbus_scenarios.engine.stats import PhaseStats
from nimbus_scenarios.plan.arrivals import smooth_round_robin
from nimbus_scenarios.plan.model import PhasePlan

__all__ = ["run_users"]


async def run_users(
    phase: PhasePlan,
    mix: Sequence[CompiledTemplate],
    weights: Sequence[int],
    dispatcher: Dispatcher,
    stats: PhaseStats,
    origin: float,
    background: set[asyncio.Task[None]],
    shard: tuple[int, int] = (0, 1),
) -> None:
    """Run the phase's users until its end; their last requests go on in `background`.

    With `shard` (I, N) this process runs users u with u % N == I, so N shards run all N users.
    """
    loop = asyncio.get_running_loop()
    end = origin + phase.end_s
    chooser = smooth_round_robin(list(weights))
    templates = list(mix)
    requests = [stats.request(template.name) for template in templates]

    async def user() -> None:
        while (now := loop.time()) < end:
            chosen = next(chooser)
            stats.schedule(now, requests[chosen])
            await dispatcher.send_closed(stats, templates[chosen], now)
            left = end - loop.time()
            if phase.think_s > 0 and left > 0:
                await asyncio.sleep(min(phase.think_s, left))

    index, count = shard
    tasks = [loop.create_task(user()) for _ in range(index, phase.users, count)]
    background.update(tasks)
    for task in tasks:
        task.add_done_callback(background.discard)
    delay = end - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)

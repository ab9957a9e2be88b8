"""The closed model on a manual clock with a fake transport: each user sends, waits for the
response, thinks, and sends again, until the phase ends; its last request finishes afterwards."""

from __future__ import annotations

import asyncio

import pytest

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.engine.dispatch import Dispatcher
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.engine.users import run_users
from tests.engine.support import mix_of, phase_plan
from tests.support.fakes import ScriptedTransport, answer_after

ORIGIN = 50.0


def run_users_phase(
    shape: str, *, delay_s: float, shard: tuple[int, int] = (0, 1), send: str = "a"
) -> tuple[ScriptedTransport, RunStats, list[float]]:
    """Play a 1 s users phase; returns the transport, the stats and the clock at two moments:
    when `run_users` returned and when the dispatcher had drained."""
    phase = phase_plan(shape, length="1s", send=send)
    clock = ManualClock(start=ORIGIN)
    transport = ScriptedTransport(clock, answer_after(delay_s))
    stats = RunStats(ORIGIN)
    moments: list[float] = []

    async def work() -> None:
        dispatcher = Dispatcher(transport, clock=clock, max_inflight=1)  # users ignore the cap
        background: set[asyncio.Task[None]] = set()
        await run_users(
            phase, mix_of(phase), dispatcher, stats.phase("p"), ORIGIN, background, clock=clock,
            shard=shard,
        )  # fmt: skip
        moments.append(clock.now())
        assert await dispatcher.drain(10.0) == 0
        moments.append(clock.now())
        assert not background

    asyncio.run(clock.run(work()))
    return transport, stats, moments


def test_users_send_think_and_send_again_until_the_end() -> None:
    """2 users, 200 ms responses, 100 ms think: each sends at 0, 0.3, 0.6 and 0.9 s."""
    transport, stats, moments = run_users_phase("users 2 think 100ms", delay_s=0.2)
    expected = sorted([ORIGIN + t for t in (0.0, 0.3, 0.6, 0.9)] * 2)
    assert transport.send_times() == pytest.approx(expected, abs=1e-9)
    phase = stats.phases["p"]
    assert (phase.scheduled, phase.sent, phase.succeeded) == (8, 8, 8)
    assert stats.check_accounting() == []
    # the phase ends at 1 s; the requests sent at 0.9 s finish in the background at 1.1 s
    assert moments == pytest.approx([ORIGIN + 1.0, ORIGIN + 1.1], abs=1e-9)


def test_without_think_time_users_send_back_to_back() -> None:
    """Without think time a user sends as soon as its response arrives: 0, 0.25, 0.5, 0.75 s."""
    transport, _, _ = run_users_phase("users 1", delay_s=0.25)
    assert transport.send_times() == pytest.approx([ORIGIN + t for t in (0, 0.25, 0.5, 0.75)])


def test_a_shard_runs_its_share_of_the_users() -> None:
    """Shard 1 of 2 runs users 1 and 3 of 5: two users, each sending at 0 and 0.5 s."""
    transport, stats, _ = run_users_phase("users 5", delay_s=0.5, shard=(1, 2))
    assert transport.send_times() == [ORIGIN, ORIGIN, ORIGIN + 0.5, ORIGIN + 0.5]
    assert stats.phases["p"].sent == 4


def test_users_share_one_template_chooser() -> None:
    """Across users the mix holds exactly: 4 users, `50% a, 50% b`, 2 rounds: 4 a and 4 b."""
    transport, stats, _ = run_users_phase("users 4", delay_s=0.5, send="50% a, 50% b")
    paths = [sent.path for sent in transport.sent]
    assert (paths.count("/a"), paths.count("/b")) == (4, 4)
    requests = stats.phases["p"].requests
    assert (requests["a"].succeeded, requests["b"].succeeded) == (4, 4)

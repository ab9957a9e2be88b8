"""The closed model on a manual clock with a fake transport: each user sends, waits for the
response, thinks, and sends again, until the phase ends; its last request finishes afterwards.
Users start in batches, a turn of the loop apart, so a stop while they start acts at once."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.engine.dispatch import Dispatcher
from nimbus_scenarios.engine.request import Outcome, PreparedRequest, status_outcome
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.engine.users import USERS_BATCH, run_users
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


def test_users_start_in_batches_a_turn_of_the_loop_apart() -> None:
    """1,000 users: the first request goes out while the second batch starts, not after all
    1,000 have; every user then sends, all at the phase start on the clock."""
    phase = phase_plan("users 1000", length="1s")
    clock = ManualClock(start=ORIGIN)
    background: set[asyncio.Task[None]] = set()
    started_at_first_send: list[int] = []

    def answer(_request: PreparedRequest) -> tuple[float, Outcome]:
        if not started_at_first_send:
            started_at_first_send.append(len(background))
        return 2.0, status_outcome(200)  # one request per user: the phase lasts 1 s

    transport = ScriptedTransport(clock, answer)
    stats = RunStats(ORIGIN)

    async def work() -> None:
        dispatcher = Dispatcher(transport, clock=clock, max_inflight=1)
        await run_users(
            phase, mix_of(phase), dispatcher, stats.phase("p"), ORIGIN, background, clock=clock
        )
        assert await dispatcher.drain(10.0) == 0

    asyncio.run(clock.run(work()))
    # Batch 1's users take their first step in the loop's next turn, and their requests reach
    # the transport in the turn after, when batch 2 has started.
    assert started_at_first_send == [2 * USERS_BATCH]
    assert stats.phases["p"].sent == 1000
    assert set(transport.send_times()) == {ORIGIN}
    assert stats.check_accounting() == []


def test_a_stop_while_users_start_starts_no_more() -> None:
    """Cancelled when the first requests go out, `run_users` starts no further batch: only the
    users already started send, their requests finish, and the counts reconcile."""
    phase = phase_plan("users 10000", length="1s")
    clock = ManualClock(start=ORIGIN)
    background: set[asyncio.Task[None]] = set()
    stats = RunStats(ORIGIN)
    starting: list[asyncio.Task[None]] = []

    def answer(_request: PreparedRequest) -> tuple[float, Outcome]:
        starting[0].cancel()  # the stop arrives with the first request on the wire
        return 0.5, status_outcome(200)

    transport = ScriptedTransport(clock, answer)

    async def work() -> None:
        dispatcher = Dispatcher(transport, clock=clock, max_inflight=1)
        users = run_users(
            phase, mix_of(phase), dispatcher, stats.phase("p"), ORIGIN, background, clock=clock
        )
        starting.append(asyncio.ensure_future(users))
        with contextlib.suppress(asyncio.CancelledError):
            await starting[0]
        for user in list(background):  # what the runner's drain does with a stopped phase
            user.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        assert await dispatcher.drain(10.0) == 0

    asyncio.run(clock.run(work()))
    sent = stats.phases["p"].sent
    assert sent == 2 * USERS_BATCH  # of 10,000: the two batches that had started
    assert stats.phases["p"].succeeded == sent
    assert stats.check_accounting() == []

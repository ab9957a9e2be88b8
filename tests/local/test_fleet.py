"""End-to-end tests of the local fleet (nimbus_scenarios.local.fleet) and its replica source.

Real reference consumer processes run behind the proxy on 127.0.0.1 with the `quick()` preset
(poll 5 s, window 20 s, scale-down stabilization 30 s, readiness 2 s). The consumers spin only
5% of each request's duration (`cpu_scale=0.05`; requests still take their full duration) so that
three consumers, the proxy and the load fit on a two-core machine. Every test checks that no
consumer child process outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import aiohttp
import pytest

from nimbus_scenarios.errors import InfrastructureError
from nimbus_scenarios.local.autoscaler import HTTP_RATE_TRIGGER, AutoscalerConfig
from nimbus_scenarios.local.errors import LocalFleetError
from nimbus_scenarios.local.fleet import Fleet, FleetCounts, ReplicaState
from nimbus_scenarios.local.source import LocalReplicaSource
from tests.local.fleet_support import CPU_SCALE, consumer_children, drive, run


def test_fleet_scales_up_under_load_and_back_to_one_after() -> None:
    """Under 13 req/s the quick fleet reaches >= 2 ready replicas that serve, then returns to 1."""

    async def body() -> None:
        config = AutoscalerConfig.quick()
        fleet = Fleet(config, cpu_scale=CPU_SCALE, drain_timeout_s=5.0)
        source = LocalReplicaSource(fleet)
        history: list[FleetCounts] = []
        try:
            await fleet.start()
            fleet.subscribe(history.append)
            await source.start()
            assert (fleet.ready, fleet.desired, fleet.current) == (1, 1, 1)
            first = fleet.replicas()[0].name

            ok, failed = await drive(fleet.url, rate=13.0, seconds=20.0)
            load_ended = asyncio.get_running_loop().time()
            assert failed <= 2, (ok, failed)
            assert max(c.ready for c in history) >= 2

            scale_ups = [e for e in fleet.events if e.kind == "scale_up"]
            assert scale_ups
            assert scale_ups[0].decision is not None
            assert scale_ups[0].decision.trigger == HTTP_RATE_TRIGGER

            # Back to one within the metric window + stabilization + a few polls.
            bound = config.metric_window_s + config.scale_down_stabilization_s
            bound += 3 * config.poll_interval_s
            settled = await fleet.wait_until(
                lambda f: (f.ready, f.desired, f.current) == (1, 1, 1), bound
            )
            took = asyncio.get_running_loop().time() - load_ended
            timeline = "\n".join(f"{e.at - load_ended:+.1f}s {e.message}" for e in fleet.events)
            assert settled, f"still {fleet.counts()} {took:.0f}s after the load:\n{timeline}"
            assert any(e.kind == "scale_down" for e in fleet.events)
            # Scaled-down replicas leave the counts at once; their processes end after draining.
            assert await fleet.wait_until(
                lambda f: all(r.state is not ReplicaState.DRAINING for r in f.replicas()), 15.0
            )

            # The replicas added under load received requests of their own.
            requests = fleet.requests_by_replica()
            connections = fleet.connections_by_replica()
            added = [name for name in requests if name != first]
            assert added
            assert sum(requests[name] for name in added) > 0, requests
            assert sum(connections.get(name, 0) for name in added) > 0, connections
            # Every answered request was counted by exactly one replica (final scrapes).
            assert ok <= sum(requests.values()) <= ok + failed, (requests, ok, failed)
            stopped = [r for r in fleet.replicas() if r.name in added]
            assert all(r.state is ReplicaState.STOPPED for r in stopped)

            # The source followed: a sample with >= 2 ready, and it ends at 1 ready.
            samples = source.samples
            assert samples[0].ready == 1
            assert max(s.ready for s in samples) >= 2
            assert samples[-1].ready == 1
            assert all(s.autoscaler == s.desired for s in samples)
            assert [s.at for s in samples] == sorted(s.at for s in samples)
        finally:
            await source.stop()
            await fleet.stop()
        assert consumer_children() == []

    started = time.monotonic()
    run(body(), limit=110.0)
    assert time.monotonic() - started < 100


def test_killed_replica_is_replaced_and_ready_again() -> None:
    """`kill_pods(1)` SIGKILLs the ready replica; a new one starts at once and becomes ready."""

    async def body() -> None:
        fleet = Fleet(AutoscalerConfig.quick(), cpu_scale=CPU_SCALE)
        source = LocalReplicaSource(fleet)
        assert source.description.startswith("local fleet (autoscaler: http_rate > 5/s")
        try:
            await source.start()  # starts the fleet it observes
            assert fleet.started
            assert source.lost_at is None
            assert source.autoscaler is not None
            assert "http_rate" in source.autoscaler
            assert source.description.startswith(f"local fleet at {fleet.url} (autoscaler: ")
            before = fleet.replicas()[0]
            assert before.pid is not None

            killed = await source.kill_pods(1)
            assert killed == [before.name]
            assert fleet.ready == 0
            assert fleet.desired == 1
            dead = next(r for r in fleet.replicas() if r.name == before.name)
            assert dead.state is ReplicaState.KILLED
            assert not Path(f"/proc/{before.pid}").exists()

            assert await fleet.wait_until(lambda f: f.ready == 1, 20.0)
            fresh = [r for r in fleet.replicas() if r.state is ReplicaState.READY]
            assert len(fresh) == 1
            assert fresh[0].name != before.name
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{fleet.url}/health") as response,
            ):
                assert response.status == 200

            triples = [(s.ready, s.desired, s.current) for s in source.samples]
            assert triples[0] == (1, 1, 1)
            assert (0, 1, 1) in triples  # the replacement was starting
            assert triples[-1] == (1, 1, 1)
            kinds = [e.kind for e in fleet.events]
            assert kinds.index("replica_killed") < len(kinds) - 1
        finally:
            await source.stop()  # it started the fleet, so it stops it
        assert consumer_children() == []

    run(body(), limit=60.0)


def test_cancelled_start_leaves_no_process_behind() -> None:
    """Cancelling `start()` while the process starts or awaits readiness stops that process."""

    async def body() -> None:
        # 0.02 s and 0.1 s: the child exists but has not announced its URL yet; 0.6 s: it has,
        # and /ready still answers 503 (2 s readiness delay).
        for delay in (0.02, 0.1, 0.6):
            fleet = Fleet(AutoscalerConfig.quick(), cpu_scale=CPU_SCALE)
            task = asyncio.create_task(fleet.start())
            await asyncio.sleep(delay)
            assert len(consumer_children()) == 1
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            assert consumer_children() == [], delay
            assert [r.state for r in fleet.replicas()] == [ReplicaState.STOPPED]

    run(body(), limit=40.0)


def test_cancelled_stop_still_ends_every_process() -> None:
    """A `stop()` whose caller is cancelled carries on; awaiting `stop()` again waits for it."""

    async def body() -> None:
        fleet = Fleet(AutoscalerConfig.quick(), cpu_scale=CPU_SCALE)
        await fleet.start()
        assert len(consumer_children()) == 1
        stopping = asyncio.create_task(fleet.stop())
        await asyncio.sleep(0)
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        await fleet.stop()
        assert consumer_children() == []
        assert fleet.current == 0
        assert fleet.ready == 0

    run(body(), limit=30.0)


def test_a_fleet_that_cannot_get_ready_raises_an_infrastructure_error() -> None:
    """No replica ready within the start timeout: LocalFleetError (exit 4), no process left."""

    async def body() -> None:
        fleet = Fleet(AutoscalerConfig.quick(), cpu_scale=CPU_SCALE, start_timeout_s=0.3)
        with pytest.raises(LocalFleetError, match="did not get 1 ready replica") as caught:
            await fleet.start()
        assert isinstance(caught.value, InfrastructureError)
        assert consumer_children() == []
        assert fleet.current == 0

    run(body(), limit=30.0)

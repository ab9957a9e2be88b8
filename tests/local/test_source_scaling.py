"""End-to-end: the local fleet's source records why it scaled (`ScalingRecorder`).

Real reference consumers on 127.0.0.1 with short windows (poll 2 s, rate window 6 s, scale-down
stabilization 4 s, readiness 0.5 s, HTTP-rate trigger only) so that a scale-up, the scale-down
after it and a kill fit in well under a minute. Every time is on the loop's clock, as the
replica samples are.
"""

from __future__ import annotations

import asyncio

from nimbus_scenarios.local.autoscaler import AutoscalerConfig
from nimbus_scenarios.local.fleet import Fleet, ReplicaState
from nimbus_scenarios.local.records import METRIC_NAMES
from nimbus_scenarios.local.source import LocalReplicaSource
from nimbus_scenarios.scaling import AutoscalerSample, ScalingRecorder
from tests.local.fleet_support import CPU_SCALE, consumer_children, drive, run

CONFIG = AutoscalerConfig(
    poll_interval_s=2.0,
    metric_window_s=6.0,
    gc_window_s=6.0,
    scale_down_stabilization_s=4.0,
    readiness_delay_s=0.5,
    policy_period_s=2.0,
    max_replicas=3,
    latency_threshold_s=None,
    gc_threshold=None,
)
RPS = METRIC_NAMES[next(iter(CONFIG.thresholds()))]


def reasons(sample: AutoscalerSample) -> dict[str, tuple[str, str]]:
    """`{condition type: (status, reason)}`."""
    return {c.type: (c.status, c.reason) for c in sample.conditions}


def test_scale_up_and_down_record_the_metric_the_decisions_and_the_pods() -> None:
    """Under 13 req/s: the rps per replica above 5 at the decision, a new pod created before it
    is ready; after the load: a scale-down decision and the drained pod deleted; a kill: Error."""

    async def body() -> None:
        fleet = Fleet(CONFIG, cpu_scale=CPU_SCALE, drain_timeout_s=3.0)
        source = LocalReplicaSource(fleet)
        assert isinstance(source, ScalingRecorder)
        try:
            await source.start()
            assert source.pods_watched
            [first] = source.pods
            assert first.created is not None
            assert first.ready is not None
            assert first.created < first.ready

            await drive(fleet.url, rate=13.0, seconds=10.0)
            assert await fleet.wait_until(lambda f: f.desired == 1 and f.current == 1, 30.0)
            assert await fleet.wait_until(
                lambda f: all(r.state is not ReplicaState.DRAINING for r in f.replicas()), 10.0
            )
            before_kill = len(source.pods)
            [killed] = await source.kill_pods(1)
            assert await fleet.wait_until(lambda f: f.ready == 1, 20.0)
        finally:
            await source.stop()
            await fleet.stop()
        assert consumer_children() == []

        samples = source.autoscaler_samples
        assert [s.at for s in samples] == sorted(s.at for s in samples)
        changes = [s for s in samples if s.desired != s.current]
        assert all(reasons(s)["AbleToScale"] == ("True", "SucceededRescale") for s in changes)
        up = next(
            s
            for s in samples
            if s.desired is not None and s.current is not None and s.desired > s.current
        )
        assert up.current == 1
        metric = next(m for m in up.metrics if m.name == RPS)
        assert metric.above, metric  # the metric above its target at (or before) the decision
        assert metric.target == 5.0
        assert reasons(up)["ScalingActive"] == ("True", "ValidMetricFound")
        assert up.at > samples[0].at or samples[0] is up

        pods = source.pods
        added = list(pods[1:before_kill])
        assert added, pods
        new = added[0]
        assert new.created is not None
        assert new.started is not None
        assert new.ready is not None
        assert up.at <= new.created < new.started <= new.ready
        # The ready time is the one the replica samples saw (same clock, same moment).
        rose = next(s for s in source.samples if s.at >= new.ready and s.ready >= 2)
        assert rose.at - new.ready < 0.5

        down = next(
            s
            for s in samples
            if s.at > up.at
            and s.desired is not None
            and s.current is not None
            and s.desired < s.current
        )
        deleted = [p for p in added if p.deleted is not None]
        assert deleted, added
        assert all(p.deleted is not None and p.deleted >= down.at for p in deleted)
        # Drained and terminated (SIGTERM): the consumer's exit is a termination reason.
        assert all(p.terminations for p in deleted)

        victim = next(p for p in pods if p.name == killed)
        assert victim.terminations == ("Error",)
        assert victim.deleted is not None
        replacement = pods[-1]
        assert replacement.name not in {p.name for p in pods[:before_kill]}
        assert replacement.created is not None
        assert replacement.created >= victim.deleted
        assert all(p.restarts == 0 for p in pods)

        # Idle at one replica, the last status is limited by the minimum.
        assert reasons(samples[-1])["ScalingLimited"] == ("True", "TooFewReplicas")

    run(body(), limit=90.0)


def test_nothing_is_recorded_after_the_source_stops() -> None:
    """The records are fixed at `stop()`: the fleet's own stop does not delete pods in them."""

    async def body() -> None:
        fleet = Fleet(CONFIG, cpu_scale=CPU_SCALE)
        source = LocalReplicaSource(fleet)
        try:
            await fleet.start()
            await source.start()
            await asyncio.sleep(CONFIG.poll_interval_s * 1.5)  # one decision
            await source.stop()
            assert source.autoscaler_samples, "one decision, one status"
            recorded = (source.autoscaler_samples, source.pods)
        finally:
            await fleet.stop()
        assert (source.autoscaler_samples, source.pods) == recorded
        assert all(p.deleted is None for p in source.pods)
        assert consumer_children() == []

    run(body(), limit=40.0)

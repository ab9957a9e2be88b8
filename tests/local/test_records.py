"""Tests of the local fleet's scaling records (nimbus_scenarios.local.records): decisions of the
real autoscaler over made-up scrapes (`autoscaler_support.Feed`) become HPA-like statuses, and
replicas become pod records."""

from __future__ import annotations

from dataclasses import replace

import pytest

from nimbus_scenarios.local.autoscaler import Autoscaler, AutoscalerConfig, Decision
from nimbus_scenarios.local.records import (
    METRIC_NAMES,
    autoscaler_sample,
    conditions,
    metric_statuses,
    pod_record,
)
from nimbus_scenarios.local.replica import ReplicaInfo, ReplicaState
from nimbus_scenarios.scaling import Condition, TargetKind
from tests.local.autoscaler_support import BASE, Feed

RPS = METRIC_NAMES[next(iter(BASE.thresholds()))]


def decide(config: AutoscalerConfig, rate: float, current: int, replicas: int = 1) -> Decision:
    """One decision after two steps of `rate` req/s in total over `replicas` scraped replicas."""
    scaler = Autoscaler(config)
    feed = Feed(scaler, replicas=replicas)
    feed.step(rate=rate, steps=2)
    return scaler.decide(feed.now, current)


def by_type(found: tuple[Condition, ...]) -> dict[str, tuple[str, str]]:
    """`{type: (status, reason)}`."""
    return {c.type: (c.status, c.reason) for c in found}


def test_a_scale_up_records_the_metric_per_replica_above_its_target_and_the_rescale() -> None:
    """12 req/s over 2 replicas: 6 per replica > 5, desired 3 from 2, SucceededRescale."""
    decision = decide(BASE, rate=12.0, current=2, replicas=2)
    sample = autoscaler_sample(decision, BASE)
    assert (sample.at, sample.desired, sample.current) == (decision.at, 3, 2)
    rps = next(m for m in sample.metrics if m.name == RPS)
    assert rps.target_kind is TargetKind.AVERAGE_VALUE
    assert rps.target == 5.0
    assert rps.current == pytest.approx(6.0)
    assert rps.above
    assert rps.active is None  # the local autoscaler has no activation threshold
    assert by_type(sample.conditions) == {
        "AbleToScale": ("True", "SucceededRescale"),
        "ScalingActive": ("True", "ValidMetricFound"),
        "ScalingLimited": ("False", "DesiredWithinRange"),
    }
    active = next(c for c in sample.conditions if c.type == "ScalingActive")
    assert RPS in active.message


def test_every_enabled_trigger_has_a_status_and_an_empty_query_has_no_value() -> None:
    """No latency recorded (no requests): its value is None, not the 0 the arithmetic used."""
    decision = decide(BASE, rate=0.0, current=1)
    statuses = {m.name: m for m in metric_statuses(decision)}
    assert set(statuses) == {METRIC_NAMES[t] for t in BASE.thresholds()}
    assert statuses[RPS].current == 0.0
    assert statuses["latency per replica"].current is None
    assert not any(m.above for m in statuses.values())


def test_idle_at_the_minimum_is_limited_by_too_few_replicas() -> None:
    """No load at 1 replica: the proposal 0 is clamped to min 1 (as `kubectl describe` shows)."""
    decision = decide(BASE, rate=0.0, current=1)
    assert decision.desired == 1
    assert by_type(conditions(decision, BASE)) == {
        "AbleToScale": ("True", "ReadyForNewScale"),
        "ScalingActive": ("True", "ValidMetricFound"),
        "ScalingLimited": ("True", "TooFewReplicas"),
    }


def test_a_proposal_over_the_maximum_is_limited_by_too_many_replicas() -> None:
    """40 req/s proposes 8; with max 4 the decision is 4 and ScalingLimited says why."""
    config = replace(BASE, max_replicas=4)
    decision = decide(config, rate=40.0, current=2)
    assert decision.desired == 4
    assert by_type(conditions(decision, config))["ScalingLimited"] == ("True", "TooManyReplicas")


def test_a_rate_policy_is_a_scale_up_limit() -> None:
    """With at most one pod added per period, 1 -> 3 becomes 1 -> 2: ScaleUpLimit."""
    config = replace(BASE, scale_up_pods=1)
    decision = decide(config, rate=12.0, current=1)
    assert (decision.recommendation, decision.desired) == (3, 2)
    assert decision.rate_limited
    assert by_type(conditions(decision, config))["ScalingLimited"] == ("True", "ScaleUpLimit")


def test_a_held_scale_down_is_stabilized_and_a_released_one_rescales() -> None:
    """After the load stops, 3 replicas are held (ScaleDownStabilized) until the window passes."""
    config = replace(BASE, scale_down_stabilization_s=20.0)
    scaler = Autoscaler(config)
    feed = Feed(scaler)
    feed.step(rate=12.0, steps=2)
    assert scaler.decide(feed.now, current=1).desired == 3
    feed.step(rate=0.0, steps=2)
    held = scaler.decide(feed.now, current=3)
    assert (held.recommendation, held.desired) == (1, 3)
    assert by_type(conditions(held, config))["AbleToScale"] == ("True", "ScaleDownStabilized")
    feed.step(rate=0.0, steps=4)
    released = scaler.decide(feed.now, current=3)
    assert released.desired == 1
    assert by_type(conditions(released, config))["AbleToScale"] == ("True", "SucceededRescale")


def test_no_value_from_any_trigger_is_not_scaling_active() -> None:
    """Before any scrape no query has a result: ScalingActive False, every current None."""
    decision = Autoscaler(BASE).decide(0.0, current=1)
    sample = autoscaler_sample(decision, BASE)
    assert all(m.current is None for m in sample.metrics)
    assert by_type(sample.conditions)["ScalingActive"] == ("False", "FailedGetExternalMetric")


def info(
    state: ReplicaState,
    *,
    started_at: float | None = None,
    ready_at: float | None = None,
    deleting_at: float | None = None,
    ended_at: float | None = None,
    exit_code: int | None = None,
) -> ReplicaInfo:
    """A replica created at 10 s, with the other times and exit code given."""
    return ReplicaInfo(
        name="consumer-2",
        state=state,
        url=None,
        pid=None,
        requests=0,
        connections=0,
        created_at=10.0,
        ready_at=ready_at,
        ended_at=ended_at,
        started_at=started_at,
        deleting_at=deleting_at,
        exit_code=exit_code,
    )


def test_a_ready_replica_is_a_pod_with_its_startup() -> None:
    """Created 10, started 10.4, ready 12.5: a 2.5 s start-up, nothing deleted or terminated."""
    pod = pod_record(info(ReplicaState.READY, started_at=10.4, ready_at=12.5))
    assert (pod.name, pod.created, pod.scheduled, pod.started, pod.ready) == (
        "consumer-2",
        10.0,
        10.0,
        10.4,
        12.5,
    )
    assert pod.startup_s == pytest.approx(2.5)
    assert (pod.deleted, pod.restarts, pod.terminations) == (None, 0, ())


def test_ended_replicas_are_deleted_pods_with_their_termination_reason() -> None:
    """Drained and exited 0: Completed; SIGTERM unhandled (143) or killed: Error; draining: none."""
    drained = pod_record(
        info(ReplicaState.STOPPED, ready_at=12.0, deleting_at=30.0, ended_at=31.0, exit_code=0)
    )
    assert (drained.deleted, drained.terminations) == (30.0, ("Completed",))
    cut = pod_record(info(ReplicaState.STOPPED, deleting_at=30.0, ended_at=31.0, exit_code=143))
    assert cut.terminations == ("Error",)
    killed = pod_record(info(ReplicaState.KILLED, deleting_at=20.0, ended_at=20.0))
    assert (killed.deleted, killed.terminations) == (20.0, ("Error",))
    crashed = pod_record(info(ReplicaState.FAILED, deleting_at=15.0, exit_code=1))
    assert crashed.terminations == ("Error",)
    draining = pod_record(info(ReplicaState.DRAINING, ready_at=12.0, deleting_at=30.0))
    assert (draining.deleted, draining.terminations) == (30.0, ())

"""Tests of the local autoscaler's settings and triggers (local.autoscaler_config)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from nimbus_scenarios.local.autoscaler import AutoscalerConfig as ReExported
from nimbus_scenarios.local.autoscaler_config import (
    GC_TRIGGER,
    HTTP_RATE_TRIGGER,
    LATENCY_TRIGGER,
    AutoscalerConfig,
    Trigger,
)


def test_config_defaults_quick_preset_and_validation() -> None:
    """Defaults are the cluster's; quick() shortens windows; nonsense values are refused."""
    config = AutoscalerConfig()
    assert (config.poll_interval_s, config.metric_window_s, config.gc_window_s) == (15, 60, 120)
    assert (config.min_replicas, config.max_replicas) == (1, 50)
    assert config.scale_down_stabilization_s == 300
    assert config.thresholds() == {HTTP_RATE_TRIGGER: 5.0, LATENCY_TRIGGER: 2.0, GC_TRIGGER: 0.5}
    assert "[1m]" in config.query_for(HTTP_RATE_TRIGGER)
    assert "[2m]" in config.query_for(GC_TRIGGER)
    quick = AutoscalerConfig.quick()
    assert (quick.poll_interval_s, quick.metric_window_s, quick.scale_down_stabilization_s) == (
        5,
        20,
        30,
    )
    assert quick.readiness_delay_s == 2
    assert "[20s]" in quick.query_for(LATENCY_TRIGGER)
    with pytest.raises(ValueError, match="min_replicas"):
        AutoscalerConfig(min_replicas=3, max_replicas=2)
    with pytest.raises(ValueError, match="poll_interval_s"):
        AutoscalerConfig(poll_interval_s=0)
    with pytest.raises(ValueError, match="trigger"):
        AutoscalerConfig(http_rate_threshold=None, latency_threshold_s=None, gc_threshold=None)


def test_triggers_compare_as_their_names_and_carry_units() -> None:
    """Trigger names are plain strings to callers, and each knows the unit its value has."""
    assert HTTP_RATE_TRIGGER == "http_rate"
    assert LATENCY_TRIGGER == "latency"
    assert GC_TRIGGER == "gc"
    assert [trigger.unit for trigger in Trigger] == ["/s", "s", "/s"]


def test_queries_are_the_scaled_objects() -> None:
    """Each trigger's PromQL is the ScaledObject's, with the configured window."""
    config = AutoscalerConfig()
    assert config.query_for(HTTP_RATE_TRIGGER) == (
        'sum(rate(http_requests_total{handler="/process",method="POST"}[1m]))'
    )
    assert config.query_for(LATENCY_TRIGGER) == (
        "sum(rate(http_request_duration_seconds_sum[1m])) / "
        "sum(rate(http_request_duration_seconds_count[1m]))"
    )
    assert config.query_for(GC_TRIGGER) == "sum(rate(python_gc_collections_total[2m]))"


def test_disabled_triggers_leave_the_thresholds_and_the_description() -> None:
    """A None threshold removes its trigger from `thresholds()` and from `describe()`."""
    config = AutoscalerConfig(latency_threshold_s=None, gc_threshold=None)
    assert config.thresholds() == {HTTP_RATE_TRIGGER: 5.0}
    assert config.describe() == (
        "http_rate > 5/s per replica; replicas 1..50; poll 15s, window 60s, "
        "scale-down stabilization 300s"
    )


def test_replace_checks_the_new_values() -> None:
    """`dataclasses.replace` (as `cli_run` uses it) refuses nonsense as the constructor does."""
    with pytest.raises(ValueError, match="tolerance"):
        replace(AutoscalerConfig.quick(), tolerance=-0.1)
    with pytest.raises(ValueError, match="scale_up_pods"):
        replace(AutoscalerConfig(), scale_up_pods=0)


def test_the_autoscaler_module_still_offers_the_config() -> None:
    """`cli_run` imports AutoscalerConfig from `local.autoscaler`: it is the same class."""
    assert ReExported is AutoscalerConfig

"""Tests for `kube.autoscaler_status` and `kube.podrecords`: HPA metrics paired with their targets
in the target's terms, quantities, and pod records folded from pod objects (pure functions)."""

from __future__ import annotations

import pytest

from nimbus_scenarios.kube.autoscaler_status import autoscaler_status, parse_quantity
from nimbus_scenarios.kube.podrecords import PodBook, api_times, parse_api_time
from nimbus_scenarios.scaling import MetricStatus, TargetKind


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", 0.5), ("7200m", 7.2), ("2k", 2000.0), ("1Gi", 2.0**30), ("12", 12.0), (60, 60.0)],
)
def test_quantities_are_read_in_their_units(text: object, value: float) -> None:
    """Kubernetes quantities and JSON numbers become floats."""
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["", "five", "5 m", None, True, [1]])
def test_what_is_no_quantity_is_none(bad: object) -> None:
    """Anything else is None, never an error."""
    assert parse_quantity(bad) is None


def test_every_metric_source_is_paired_with_its_target() -> None:
    """Pods, Object and ContainerResource metrics too; a metric without status has no value, and
    one whose target type is unknown is left out."""
    hpa = {
        "spec": {
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "rps"},
                        "target": {"type": "AverageValue", "averageValue": "10"},
                    },
                },
                {
                    "type": "Object",
                    "object": {
                        "metric": {"name": "hits"},
                        "describedObject": {"name": "ing"},
                        "target": {"type": "Value", "value": "2k"},
                    },
                },
                {
                    "type": "ContainerResource",
                    "containerResource": {
                        "name": "memory",
                        "container": "app",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                },
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": "queue"},
                        "target": {"type": "Odd", "value": "1"},
                    },
                },
            ]
        },
        "status": {
            "desiredReplicas": 3,
            "currentMetrics": [
                {
                    "type": "Object",
                    "object": {
                        "metric": {"name": "hits"},
                        "describedObject": {"name": "ing"},
                        "current": {"value": "2500"},
                    },
                },
                {
                    "type": "Pods",
                    "pods": {"metric": {"name": "rps"}, "current": {"averageValue": "12500m"}},
                },
            ],
        },
    }
    status = autoscaler_status(hpa)
    assert status.desired == 3
    assert status.current is None
    assert status.metrics == (
        MetricStatus("rps", TargetKind.AVERAGE_VALUE, 10.0, 12.5),
        MetricStatus("hits", TargetKind.VALUE, 2000.0, 2500.0),
        MetricStatus("app/memory", TargetKind.UTILIZATION, 80.0, None),
    )
    assert [m.above for m in status.metrics] == [True, True, False]


def test_api_times_keep_whole_seconds_unless_seen_within_that_second() -> None:
    """An API time long before the sighting is taken as is; one in the second seen is the
    moment seen (finer than the API's whole seconds)."""
    wall = parse_api_time("2026-01-01T00:00:10Z")
    assert wall is not None
    times = api_times(seen=100.0, wall_now=wall + 0.4)
    assert times("2026-01-01T00:00:10Z") == pytest.approx(100.0)
    assert times("2026-01-01T00:00:02Z") == pytest.approx(100.0 - 8.4)
    assert times("2026-01-01T00:00:09.5Z") == pytest.approx(100.0 - 0.9)
    assert times("yesterday") is None


def test_pod_book_keeps_first_moments_and_notices_pods_gone_from_a_relist() -> None:
    """Ready keeps its first transition; terminations are counted once each; a relist without a
    pod marks it deleted when seen, a deletionTimestamp less its grace when asked."""
    times = api_times(seen=1000.0, wall_now=parse_api_time("2026-01-01T00:01:00Z") or 0.0)

    def pod(name: str, ready_at: str | None, **metadata: object) -> dict[str, object]:
        conditions = (
            [{"type": "Ready", "status": "True", "lastTransitionTime": ready_at}]
            if ready_at
            else []
        )
        terminated = {
            "reason": "OOMKilled",
            "startedAt": "2026-01-01T00:00:00Z",
            "finishedAt": "2026-01-01T00:00:20Z",
        }
        return {
            "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z", **metadata},
            "status": {
                "conditions": conditions,
                "containerStatuses": [
                    {"name": "app", "restartCount": 1, "lastState": {"terminated": terminated}}
                ],
            },
        }

    book = PodBook()
    book.update(pod("a", "2026-01-01T00:00:05Z"), times)
    book.update(pod("a", "2026-01-01T00:00:30Z"), times)
    book.relist(
        [
            pod("a", None, deletionTimestamp="2026-01-01T00:00:50Z", deletionGracePeriodSeconds=30),
            pod("b", None),
        ],
        times,
        1000.0,
    )
    book.relist([pod("b", None)], times, 1001.0)
    a, b = book.records
    assert a.startup_s == pytest.approx(5.0)
    assert a.terminations == ("OOMKilled",)
    assert a.restarts == 1
    assert a.created is not None
    assert a.deleted == pytest.approx(a.created + 20.0)
    assert (b.name, b.ready, b.deleted) == ("b", None, None)
    book.relist([], times, 1002.0)
    assert book.records[1].deleted == 1002.0

"""Tests of `_durations`: buckets, series attributes, exemplars and the exemplar filter."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics.export import AggregationTemporality, HistogramDataPoint

from nimbus_scenarios.engine.request import ErrorKind
from nimbus_scenarios.telemetry._durations import (
    DURATION_BUCKETS_S,
    DurationHistogram,
    ExemplarFilter,
    SeriesKey,
    duration_attributes,
    exemplar_filter,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"
SAMPLED = f"00-{TRACE}-b7ad6b7169203331-01"
UNSAMPLED = f"00-{TRACE}-00f067aa0ba902b7-00"
OK: SeriesKey = ("warm", "a", True, 200, None)


def _points(histogram: DurationHistogram) -> list[HistogramDataPoint]:
    metric = histogram.metric()
    assert metric is not None
    return list(metric.data.data_points)


def test_durations_fall_in_upper_inclusive_buckets_per_series() -> None:
    """A duration on a boundary counts in that bucket; each key is its own series."""
    histogram = DurationHistogram((0.1, 1.0), lambda key: {"phase": key[0]})
    assert histogram.metric() is None
    for seconds in (0.05, 0.1, 0.5, 2.0):
        histogram.record(OK, seconds, None)
    histogram.record(("ramp", "a", True, 200, None), 0.2, None)
    metric = histogram.metric()
    assert metric is not None
    assert (metric.name, metric.unit) == ("nimbus.request.duration", "s")
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    warm, ramp = metric.data.data_points
    assert warm.attributes == {"phase": "warm"}
    assert warm.bucket_counts == (2, 1, 1)
    assert (warm.count, warm.min, warm.max) == (4, 0.05, 2.0)
    assert warm.sum == pytest.approx(2.65)
    assert warm.explicit_bounds == (0.1, 1.0)
    assert (ramp.attributes, ramp.bucket_counts) == ({"phase": "ramp"}, (0, 1, 0))
    assert DURATION_BUCKETS_S[0] == 0.005
    assert DURATION_BUCKETS_S[-1] == 60.0


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (OK, {"outcome": "success", "status_class": "2xx"}),
        (("warm", "a", True, 404, None), {"outcome": "success", "status_class": "4xx"}),
        (("warm", "a", False, 503, None), {"outcome": "error", "status_class": "5xx"}),
        (
            ("warm", "a", False, None, ErrorKind.timeout),
            {"outcome": "error", "status_class": "none", "error.type": "timeout"},
        ),
    ],
)
def test_series_attributes(key: SeriesKey, expected: dict[str, str]) -> None:
    """outcome by the template's ok statuses, the status class, error.type as semconv has it."""
    attributes = duration_attributes(key)
    assert attributes.pop("phase") == "warm"
    assert attributes.pop("request") == "a"
    status = key[3]
    if status is not None and status >= 400:
        expected = {**expected, "error.type": str(status)}
    assert attributes == expected


def test_trace_based_exemplars_keep_the_latest_sampled_request_per_bucket() -> None:
    """Only sampled requests; one per bucket, the latest; handed out once."""
    histogram = DurationHistogram((0.1, 1.0), duration_attributes)
    histogram.record(OK, 0.05, UNSAMPLED)
    histogram.record(OK, 0.06, None)
    assert [p.exemplars for p in _points(histogram)] == [[]]
    histogram.record(OK, 0.02, SAMPLED)
    histogram.record(OK, 0.03, SAMPLED.replace("b7ad", "c7ad"))
    histogram.record(OK, 0.5, SAMPLED)
    (point,) = _points(histogram)
    first, second = point.exemplars
    assert (first.value, second.value) == (0.03, 0.5)
    assert first.span_id == int("c7ad6b7169203331", 16)
    assert first.trace_id == int(TRACE, 16)
    assert first.time_unix_nano > 0
    assert [p.exemplars for p in _points(histogram)] == [[]]
    assert point.count == 5


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(ExemplarFilter.ALWAYS_ON, 3), (ExemplarFilter.ALWAYS_OFF, 0)],
)
def test_other_exemplar_filters(mode: ExemplarFilter, expected: int) -> None:
    """always_on: every request (an unsampled one names its phase span); always_off: none."""
    histogram = DurationHistogram((0.1, 1.0, 5.0), duration_attributes, exemplars=mode)
    histogram.record(OK, 0.05, UNSAMPLED)
    histogram.record(OK, 0.5, SAMPLED)
    histogram.record(OK, 2.0, None)
    (point,) = _points(histogram)
    assert len(point.exemplars) == expected
    if expected:
        assert point.exemplars[0].span_id == int("00f067aa0ba902b7", 16)
        assert point.exemplars[2].trace_id is None


def test_the_exemplar_filter_comes_from_the_environment() -> None:
    """Default trace_based; the three names in any case; anything else reported."""
    assert exemplar_filter({}) == (ExemplarFilter.TRACE_BASED, None)
    assert exemplar_filter({"OTEL_METRICS_EXEMPLAR_FILTER": "Always_Off"}) == (
        ExemplarFilter.ALWAYS_OFF,
        None,
    )
    mode, problem = exemplar_filter({"OTEL_METRICS_EXEMPLAR_FILTER": "sometimes"})
    assert mode is ExemplarFilter.TRACE_BASED
    assert problem is not None
    assert "'sometimes'" in problem
    assert "trace_based" in problem

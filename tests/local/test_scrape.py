"""Tests of scraping a replica (nimbus_scenarios.local.scrape), down to a real consumer's /metrics.

The unit tests feed hand-written expositions; the end-to-end tests read what a running reference
consumer (`local.consumer.metrics`, written by prometheus_client) serves, as the fleet does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from nimbus_scenarios.local.autoscaler import HTTP_RATE_TRIGGER, LATENCY_TRIGGER, Autoscaler
from nimbus_scenarios.local.autoscaler_config import AutoscalerConfig
from nimbus_scenarios.local.consumer import ConsumerConfig, ReferenceConsumer
from nimbus_scenarios.local.consumer.metrics import ConsumerMetrics
from nimbus_scenarios.local.scrape import parse_metrics_text, scrape
from nimbus_scenarios.local.series import MetricSample, Point, prometheus_rate
from tests.support.http import free_port, serving

T = TypeVar("T")

WORK = {"cpu_intensity": "1", "memory_size": "10", "duration": "1", "async_mode": "true"}

EXPOSITION = """\
# HELP http_requests_total Total number of requests by method, status and handler.
# TYPE http_requests_total counter
http_requests_total{handler="/process",method="POST",status="2xx"} 7.0
http_requests_total{handler="/process",method="POST",status="4xx"} 2.0
http_requests_total{handler="/process",method="GET",status="4xx"} 100.0
http_requests_total{handler="/health",method="GET",status="2xx"} 50.0
# HELP http_requests_created Total number of requests by method, status and handler.
# TYPE http_requests_created gauge
http_requests_created{handler="/process",method="POST",status="2xx"} 1.7e+09
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler="/process",le="0.1",method="POST"} 3.0
http_request_duration_seconds_bucket{handler="/process",le="+Inf",method="POST"} 9.0
http_request_duration_seconds_count{handler="/process",method="POST"} 9.0
http_request_duration_seconds_sum{handler="/process",method="POST"} 4.5
http_request_duration_seconds_count{handler="/health",method="GET"} 50.0
http_request_duration_seconds_sum{handler="/health",method="GET"} 0.5
# TYPE python_gc_collections_total counter
python_gc_collections_total{generation="0"} 30.0
python_gc_collections_total{generation="1"} 3.0
python_gc_collections_total{generation="2"} 1.0
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
"""


def run(body: Callable[[], Awaitable[T]], limit: float = 20.0) -> T:
    """Run one async test body with a time limit."""

    async def bounded() -> T:
        return await asyncio.wait_for(body(), limit)

    return asyncio.run(bounded())


def test_trigger_counters_are_summed_from_an_exposition() -> None:
    """POST /process counts of every status, latency of every handler and GC of every generation."""
    sample = parse_metrics_text("r1", 4.0, EXPOSITION)
    assert sample == MetricSample("r1", 4.0, 9.0, 5.0, 59.0, 34.0)


def test_escaped_label_values_and_unrelated_series_do_not_confuse_the_reader() -> None:
    """Quotes, backslashes and newlines in labels are unescaped; other names are ignored."""
    text = (
        'http_requests_total{handler="/process",method="POST",note="a \\"b\\" \\\\ \\n"} 4\n'
        'http_requests_total{handler="/process\\"",method="POST"} 100\n'
        "http_requests_totalish 100\n"
    )
    assert parse_metrics_text("r", 0.0, text).requests == 4.0


def test_non_finite_values_are_skipped() -> None:
    """A NaN or infinite sample adds nothing (a sum would otherwise be poisoned for good)."""
    text = (
        'python_gc_collections_total{generation="0"} NaN\n'
        'python_gc_collections_total{generation="1"} +Inf\n'
        'python_gc_collections_total{generation="2"} 2\n'
    )
    assert parse_metrics_text("r", 0.0, text).gc_collections == 2.0


@pytest.mark.parametrize(
    "text",
    [
        'http_requests_total{handler="/process",method="POST" 1\n',
        'http_requests_total{handler="/process",method="POST"} one\n',
        "not metrics at all\n",
        "a{b} 1\n",
    ],
)
def test_a_malformed_exposition_is_refused_whole(text: str) -> None:
    """Text that is not an exposition raises ValueError, as Prometheus fails such a scrape."""
    with pytest.raises(ValueError, match="not a Prometheus text exposition"):
        parse_metrics_text("r", 0.0, text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab_{}=",# \n\\0.1+eITYPEcounter')), max_size=80))
def test_any_text_gives_a_sample_or_a_value_error(text: str) -> None:
    """Whatever a replica answers, reading it gives finite counters or a ValueError only."""
    try:
        sample = parse_metrics_text("r", 0.0, text)
    except ValueError:
        return
    assert all(
        math.isfinite(value)
        for value in (
            sample.requests,
            sample.latency_sum,
            sample.latency_count,
            sample.gc_collections,
        )
    )


def test_what_the_consumer_metrics_write_is_what_the_reader_reads() -> None:
    """A `ConsumerMetrics` exposition round-trips: observed requests come back as counters."""
    metrics = ConsumerMetrics()
    for status, seconds in ((200, 0.25), (200, 0.75), (422, 0.5)):
        metrics.observe("/process", "POST", status, seconds)
    metrics.observe("/health", "GET", 200, 0.5)
    metrics.observe("none", "POST", 404, 0.5)
    sample = parse_metrics_text("r", 1.0, metrics.exposition().decode())
    assert sample.requests == 3
    assert sample.latency_count == 5
    assert sample.latency_sum == pytest.approx(2.5)
    assert sample.gc_collections >= 0


def test_parse_metrics_text_reads_the_reference_consumers_exposition() -> None:
    """The counters are read from a real reference consumer's /metrics after 3 POST /process."""

    async def body() -> MetricSample:
        consumer = ReferenceConsumer(ConsumerConfig(cpu_scale=0.05))
        url = await consumer.start()
        try:
            async with aiohttp.ClientSession() as session:
                params = {"cpu_intensity": "1", "memory_size": "10", "duration": "1"}
                for _ in range(3):
                    async with session.post(
                        f"{url}/process", params={**params, "async_mode": "true"}
                    ) as response:
                        assert response.status == 200
                async with session.post(f"{url}/process", params={"duration": "0"}) as response:
                    assert response.status == 422
                async with session.get(f"{url}/health") as response:
                    assert response.status == 200
                async with session.get(f"{url}/metrics") as response:
                    text = await response.text()
        finally:
            await consumer.stop()
        return parse_metrics_text("r", 1.0, text)

    sample = asyncio.run(asyncio.wait_for(body(), 20))
    assert sample.requests == 4  # POST /process of every status (3 x 2xx, 1 x 4xx)
    assert sample.latency_count == 5  # every handler: 4 POST /process and 1 GET /health
    assert sample.latency_sum > 0
    assert sample.gc_collections >= 0
    assert math.isfinite(sample.gc_collections)


def test_the_autoscaler_sees_a_real_consumers_request_rate() -> None:
    """Two scrapes of a real consumer 5 s apart (on a made-up clock) give the trigger its rate."""
    clock = iter((0.0, 5.0))

    async def body() -> tuple[MetricSample, MetricSample]:
        async with (
            ReferenceConsumer(ConsumerConfig(cpu_scale=0.05)) as consumer,
            aiohttp.ClientSession() as session,
        ):
            url = consumer.base_url
            for _ in range(3):
                async with session.post(f"{url}/process", params=WORK) as response:
                    assert response.status == 200
            first = await scrape(session, url, "r", lambda: next(clock))
            for _ in range(6):
                async with session.post(f"{url}/process", params=WORK) as response:
                    assert response.status == 200
            second = await scrape(session, url, "r", lambda: next(clock))
        assert first is not None
        assert second is not None
        return first, second

    first, second = run(body)
    assert (first.requests, second.requests) == (3, 9)
    scaler = Autoscaler(AutoscalerConfig(metric_window_s=10.0, gc_window_s=10.0))
    scaler.observe_all([first, second])
    decision = scaler.decide(5.0, current=1)
    rate = decision.reading(HTTP_RATE_TRIGGER)
    latency = decision.reading(LATENCY_TRIGGER)
    assert rate is not None
    assert latency is not None
    expected = prometheus_rate([Point(0.0, 3.0), Point(5.0, 9.0)], 5.0, 10.0)
    assert rate.has_data
    assert rate.value == pytest.approx(expected)
    assert latency.has_data
    assert 0 < latency.value < 1.0  # async answers come at once


def test_a_failed_scrape_yields_nothing() -> None:
    """No listener, a 404 and a 200 with garbage each give None rather than part of a sample."""

    async def garbage(_request: web.Request) -> web.Response:
        return web.Response(text="this is {not an exposition\n")

    async def body() -> list[MetricSample | None]:
        app = web.Application()
        app.router.add_get("/bad/metrics", garbage)
        async with (
            serving(app) as base,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        ):
            return [
                await scrape(session, f"http://127.0.0.1:{free_port()}", "r", lambda: 0.0),
                await scrape(session, f"{base}/missing", "r", lambda: 0.0),
                await scrape(session, f"{base}/bad", "r", lambda: 0.0),
            ]

    assert run(body) == [None, None, None]

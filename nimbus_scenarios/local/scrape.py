"""Scraping a replica as Prometheus does: GET `/metrics`, read the trigger counters.

Its place: the `local` stage. `fleet.Fleet` scrapes every live replica each poll and hands the
`series.MetricSample`s to the autoscaler. The text is read with `prometheus_client`'s parser,
the same library that writes it in `local.consumer.metrics`; like Prometheus, a scrape that
fails (no answer in time, a status other than 200, a text that does not parse) yields nothing
rather than part of a sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Final

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from nimbus_scenarios.local.series import CounterName, MetricSample

__all__ = ["parse_metrics_text", "scrape"]

# The trigger counters by sample name; the HTTP rate trigger also filters on labels.
_COUNTERS: Final = {
    "http_requests_total": CounterName.REQUESTS,
    "http_request_duration_seconds_sum": CounterName.LATENCY_SUM,
    "http_request_duration_seconds_count": CounterName.LATENCY_COUNT,
    "python_gc_collections_total": CounterName.GC_COLLECTIONS,
}
_PROCESS_POST: Final = {"handler": "/process", "method": "POST"}


def _counter_for(name: str, labels: Mapping[str, str]) -> CounterName | None:
    counter = _COUNTERS.get(name)
    if counter is CounterName.REQUESTS and any(
        labels.get(label) != value for label, value in _PROCESS_POST.items()
    ):
        return None
    return counter


def parse_metrics_text(replica: str, at: float, text: str) -> MetricSample:
    """Sum the trigger counters of one Prometheus text exposition into a `MetricSample`.

    Series the triggers do not read are ignored, and so are non-finite values. Raises
    ValueError if `text` is not a Prometheus text exposition.
    """
    totals = dict.fromkeys(CounterName, 0.0)
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                counter = _counter_for(sample.name, sample.labels)
                if counter is not None and math.isfinite(sample.value):
                    totals[counter] += sample.value
    except ValueError as exc:
        raise ValueError(f"not a Prometheus text exposition: {exc}") from exc
    return MetricSample(
        replica,
        at,
        requests=totals[CounterName.REQUESTS],
        latency_sum=totals[CounterName.LATENCY_SUM],
        latency_count=totals[CounterName.LATENCY_COUNT],
        gc_collections=totals[CounterName.GC_COLLECTIONS],
    )


async def scrape(
    session: aiohttp.ClientSession, base_url: str, replica: str, now: Callable[[], float]
) -> MetricSample | None:
    """One scrape of `base_url/metrics`, stamped `now()` when the text has arrived; None if failed.

    The session's timeout is the scrape timeout.
    """
    try:
        async with session.get(f"{base_url}/metrics") as response:
            if response.status != 200:
                return None
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None
    try:
        return parse_metrics_text(replica, now(), text)
    except ValueError:
        return None

"""The dashboard's PromQL against what a real run exported, through the real rotel collector.

A traced run (the loopback target: one template answered, one 404, one timing out) exports OTLP to
rotel, which forwards to the decoding sink. Its metric exports are translated to Prometheus
series (`tests.support.promql`); every series selector of every Prometheus query and variable
in `manifests/grafana/nimbus-scenarios-dashboard.json` must select at least one of them, with
the dashboard's variables set to this run. The histogram's exemplars must name exported spans.
The unit tests of the matcher show that a broken label (the old `outcome="error"` on a series
without `outcome`) is caught.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HttpServer
from tests.deploy.support import GRAFANA, load_documents
from tests.support.otlp import OtlpSink
from tests.support.promql import (
    Matcher,
    Op,
    Selector,
    SelectorError,
    Series,
    metric_name,
    prometheus_series,
    selectors,
)
from tests.telemetry.conftest import Rotel, otel_env, run_traced, wait_until
from tests.telemetry.test_collector import FakeSource

DASHBOARD = (
    Path(__file__).resolve().parents[2]
    / "manifests"
    / "grafana"
    / "nimbus-scenarios-dashboard.json"
)

SCENARIO = """\
scenario "dash" {
  settings {
    trace_sample 50%
    timeout 300ms
  }
  request work = GET "/status/200"
  request missing = GET "/status/404"
  request slow = GET "/delay/1000"
  watch deployment "consumer"
  phase "steady" 1s {
    rate 40/s
    send 60% work, 30% missing, 10% slow
  }
}
"""


def _prometheus_queries(value: Any) -> Iterator[str]:
    """Every PromQL text in the dashboard: targets and variables on a Prometheus datasource."""
    if isinstance(value, dict):
        source = value.get("datasource")
        if isinstance(source, dict) and source.get("type") == "prometheus":
            for key in ("expr", "query"):
                if isinstance(value.get(key), str):
                    yield value[key]
        for item in value.values():
            yield from _prometheus_queries(item)
    elif isinstance(value, list):
        for item in value:
            yield from _prometheus_queries(item)


def dashboard_selectors(variables: dict[str, str]) -> list[tuple[str, Selector]]:
    """(query, selector) for every selector of the shipped dashboard."""
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = [
        (query, selector)
        for query in _prometheus_queries(data)
        for selector in selectors(query, variables)
    ]
    assert found
    return found


def unmatched(pairs: list[tuple[str, Selector]], series: list[Series]) -> list[str]:
    """The selectors that select no series, with their queries."""
    return [
        f"{selector} in {query}"
        for query, selector in pairs
        if not any(selector.matches(s) for s in series)
    ]


def test_every_dashboard_selector_matches_an_exported_series(
    collector: Rotel, sink: OtlpSink, http_server: HttpServer
) -> None:
    """A run through rotel: each selector of each panel and variable selects a series; the
    histogram's exemplars name spans the run exported."""
    run = run_traced(
        SCENARIO,
        http_server.url,
        otel_env(collector.endpoint, OTEL_METRIC_EXPORT_INTERVAL="300"),
        source=FakeSource(),
        progress_interval_s=0.2,
    )
    document = run.outcome.results
    assert document.totals.sent == 40
    assert run.summary.export_errors == 0
    assert wait_until(lambda: len(sink.spans) >= run.summary.spans_exported)
    assert wait_until(lambda: "nimbus.request.duration" in sink.metrics)
    series = prometheus_series(sink.received("/v1/metrics"))
    variables = {
        "scenario": ".*",
        "run_id": document.run_id,
        "__rate_interval": "1m",
        "__range": "1h",
    }
    pairs = dashboard_selectors(variables)
    assert unmatched(pairs, series) == []
    # The errors panel reads the statuses and the error kinds apart.
    errors = {
        (s.labels["request"], s.labels["status_class"], s.labels.get("error_type"))
        for s in series
        if s.name == "nimbus_request_duration_seconds_count" and s.labels["outcome"] == "error"
    }
    assert errors == {("missing", "4xx", "404"), ("slow", "none", "timeout")}
    # Another run's id selects nothing: the selectors really filter on run_id.
    other = dashboard_selectors({**variables, "run_id": "not-this-run"})
    assert len(unmatched(other, series)) == sum(
        1 for _, s in other if any(m.label == "run_id" for m in s.matchers)
    )
    # The counters equal the results' counts.
    sent = [s for s in series if s.name == "nimbus_requests_sent_total"]
    assert {s.labels["request"] for s in sent} == {"work", "missing", "slow"}
    assert all(s.labels["job"] == "nimbus-test" for s in sent)

    exemplars = [e for s in series for e in s.exemplars]
    assert exemplars
    spans = {(s.trace_id, s.span_id) for s in sink.spans}
    assert {(e.trace_id, e.span_id) for e in exemplars} <= spans
    assert {e.trace_id for e in exemplars} == {run.telemetry.trace_id}

    # Tempo's traces-to-metrics queries (datasources.yaml), with the tags of each exported
    # request span, select that request's series: the span-to-metrics link lands on data.
    (provisioned,) = load_documents(GRAFANA / "datasources.yaml")
    (tempo,) = [d["jsonData"] for d in provisioned["datasources"] if d["type"] == "tempo"]
    requests = [s for s in sink.spans if "nimbus.template" in s.attributes]
    # (`slow` times out: on a loaded machine its last spans may still be in flight at the end,
    # and a request cancelled in flight leaves no span.)
    assert {s.attributes["nimbus.template"] for s in requests} >= {"work", "missing"}
    for span in requests:
        tags = ", ".join(
            f'{tag["value"]}="{span.attributes[tag["key"]]}"'
            for tag in tempo["tracesToMetrics"]["tags"]
        )
        failed = span.attributes["nimbus.template"] != "work"  # `work` never failed
        for query in tempo["tracesToMetrics"]["queries"]:
            expr = query["query"].replace("$$__tags", tags)
            pairs = [
                (expr, s)
                for s in selectors(expr)
                if failed or not any(m.value == "error" for m in s.matchers)
            ]
            assert unmatched(pairs, series) == [], span.attributes


def test_a_broken_label_matches_nothing() -> None:
    """The old errors query, `outcome="error"`, on a histogram without `outcome`: caught."""
    without_outcome = [
        Series("nimbus_request_duration_seconds_count", {"phase": "p", "run_id": "r1"})
    ]
    with_outcome = [
        Series(
            "nimbus_request_duration_seconds_count",
            {"phase": "p", "run_id": "r1", "outcome": "error"},
        )
    ]
    query = (
        'sum(rate(nimbus_request_duration_seconds_count{run_id="$run_id", outcome="error"}[1m]))'
    )
    pairs = [(query, s) for s in selectors(query, {"run_id": "r1"})]
    assert unmatched(pairs, without_outcome) == [
        'nimbus_request_duration_seconds_count{run_id="r1", outcome="error"} in ' + query
    ]
    assert unmatched(pairs, with_outcome) == []
    misspelt = [(query, s) for s in selectors(query.replace("outcome", "outcom"), {"run_id": "r1"})]
    assert unmatched(misspelt, with_outcome) != []


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        (Matcher("a", Op.EQ, "x"), {"a": "x"}, True),
        (Matcher("a", Op.EQ, "x"), {}, False),
        (Matcher("a", Op.EQ, ""), {}, True),  # a missing label is ""
        (Matcher("a", Op.NE, "x"), {}, True),
        (Matcher("a", Op.RE, "x|y"), {"a": "y"}, True),
        (Matcher("a", Op.RE, "x"), {"a": "xx"}, False),  # anchored
        (Matcher("a", Op.RE, ".*"), {}, True),
        (Matcher("a", Op.NRE, "x.*"), {"a": "xa"}, False),
    ],
)
def test_matchers_follow_promql(matcher: Matcher, labels: dict[str, str], expected: bool) -> None:
    """Equality, inequality and anchored regexes, a missing label being the empty string."""
    assert matcher.matches(labels) is expected


def test_selectors_skip_functions_aggregations_and_label_lists() -> None:
    """Only series selectors come out: not `sum`, `rate`, `by (le)`, ranges or numbers."""
    expr = (
        'histogram_quantile(0.9, sum by (le, request) (rate(a_bucket{x="1"}[5m]))) '
        '/ on (request) group_left sum without (le) (b) > bool 2 or {__name__="c"}'
    )
    found = selectors(expr)
    assert [str(s) for s in found] == ['a_bucket{x="1"}', "b{}", '{__name__="c"}']
    assert found[2].matches(Series("c", {}))
    assert [str(s) for s in selectors("label_values(nimbus_run_info, scenario)")] == [
        "nimbus_run_info{}"
    ]
    with pytest.raises(SelectorError, match=r"\$run_id"):
        selectors('a{run_id="$run_id"}')


@pytest.mark.parametrize(
    ("name", "unit", "monotonic", "expected"),
    [
        ("nimbus.request.duration", "s", False, "nimbus_request_duration_seconds"),
        ("nimbus.requests.sent", "{request}", True, "nimbus_requests_sent_total"),
        ("nimbus.load.target_rate", "{request}/s", False, "nimbus_load_target_rate_per_second"),
        ("nimbus.replicas", "{replica}", False, "nimbus_replicas"),
        ("nimbus.run.start_time", "s", False, "nimbus_run_start_time_seconds"),
        ("x.utilization", "1", False, "x_utilization_ratio"),
        (
            "http.server.request.duration_seconds",
            "s",
            False,
            "http_server_request_duration_seconds",
        ),
    ],
)
def test_otlp_names_translate_as_prometheus_does(
    name: str, unit: str, monotonic: bool, expected: str
) -> None:
    """Dots to underscores, unit words appended once, `_total` for monotonic sums."""
    assert metric_name(name, unit, monotonic_sum=monotonic) == expected

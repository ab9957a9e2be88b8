"""Build the Grafana dashboard `manifests/grafana/nimbus-scenarios-dashboard.json` in code.

Built with grafana-foundation-sdk (the official typed builder; a dev dependency) so that the
JSON is never edited by hand: `make dashboard` writes it, `tests/deploy/test_grafana.py`
fails when the committed file differs from what this builds, and
`tests/telemetry/test_dashboard.py` runs every PromQL selector in it against what a real run
exported. Metric names: docs/telemetry.md. Datasources come from the variables DS_PROMETHEUS,
DS_LOKI and DS_TEMPO, whose defaults are the uids `prometheus`, `loki` and `tempo`.

Usage: python tools/dashboard.py [--check] [PATH]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from grafana_foundation_sdk.builders import (
    dashboard,
    logs,
    loki,
    prometheus,
    table,
    tempo,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    GridPos,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PATH = REPO / "manifests" / "grafana" / "nimbus-scenarios-dashboard.json"

UID = "nimbus-scenarios"
DATASOURCES = {"prometheus": "DS_PROMETHEUS", "loki": "DS_LOKI", "tempo": "DS_TEMPO"}
"""Datasource type → the dashboard variable naming it (its default: the type, as uid)."""

RUN = 'scenario=~"$scenario", run_id="$run_id"'
"""The label matchers every metric query of the run carries."""
RATE = "[$__rate_interval]"
LOKI_QUERY = '{service_name="nimbus-scenarios"} | json | run_id="$run_id"'
TRACEQL = '{ resource.service.name = "nimbus-scenarios" && span.nimbus.run_id = "$run_id" }'
RUN_QUERY = (
    "query_result(sort_desc(max by (run_id) "
    '(max_over_time(nimbus_run_start_time_seconds{scenario=~"$scenario"}[$__range]))))'
)
"""Runs newest first: by the start time each run exports, the query's order kept."""


def _ref(kind: str) -> DataSourceRef:
    return DataSourceRef(type_val=kind, uid=f"${{{DATASOURCES[kind]}}}")


def _explore(kind: str, query: dict[str, Any]) -> str:
    """A Grafana Explore URL for one query on the datasource variable of `kind`, over the
    dashboard's time range (variables are interpolated by Grafana when the link is followed)."""
    pane = {
        "datasource": f"${{{DATASOURCES[kind]}}}",
        "queries": [{"refId": "A", "datasource": {"type": kind, "uid": pane_uid(kind)}, **query}],
        "range": {"from": "${__from}", "to": "${__to}"},
    }
    panes = json.dumps({"run": pane}, separators=(",", ":"))
    return "/explore?schemaVersion=1&orgId=${__org}&panes=" + quote(panes, safe="${}_:,")


def pane_uid(kind: str) -> str:
    """The datasource uid in an Explore pane: the variable, interpolated by Grafana."""
    return f"${{{DATASOURCES[kind]}}}"


def _run_links() -> list[dashboard.DashboardLink]:
    """The links every panel carries: the run's traces in Tempo and its logs in Loki."""
    traces = _explore("tempo", {"queryType": "traceql", "query": TRACEQL, "limit": 50})
    lines = _explore("loki", {"expr": LOKI_QUERY, "queryType": "range"})
    return [
        dashboard.DashboardLink("Run traces (Tempo)").url(traces).target_blank(True),
        dashboard.DashboardLink("Run logs (Loki)").url(lines).target_blank(True),
    ]


def _prom(expr: str, legend: str, ref: str, *, exemplar: bool = False) -> prometheus.Dataquery:
    query = (
        prometheus.Dataquery()
        .datasource(_ref("prometheus"))
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref)
        .range()
    )
    if exemplar:
        query = query.exemplar(True)
    return query


def _series(
    title: str, description: str, unit: str, grid: tuple[int, int, int, int]
) -> timeseries.Panel:
    x, y, w, h = grid
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(_ref("prometheus"))
        .unit(unit)
        .line_width(2)
        .fill_opacity(10)
        .grid_pos(GridPos(h=h, w=w, x=x, y=y))
        .links(_run_links())
    )


def _datasource_variable(kind: str) -> dashboard.DatasourceVariable:
    label = {"prometheus": "Prometheus", "loki": "Loki", "tempo": "Tempo"}[kind]
    return (
        dashboard.DatasourceVariable(DATASOURCES[kind])
        .label(label)
        .type(kind)
        .current(VariableOption(selected=False, text=kind, value=kind))
    )


def build() -> dict[str, Any]:
    """The dashboard as JSON-ready data."""
    quantiles = (("0.5", "p50"), ("0.9", "p90"), ("0.95", "p95"), ("0.99", "p99"))
    latency = _series(
        "Latency percentiles",
        "Send to response or error, of every finished request (sampled or not). The dots are "
        "exemplars: sampled requests, each a link to its trace.",
        "s",
        (12, 0, 12, 8),
    )
    for i, (q, legend) in enumerate(quantiles):
        expr = (
            f"histogram_quantile({q}, sum by (le) "
            f"(rate(nimbus_request_duration_seconds_bucket{{{RUN}}}{RATE})))"
        )
        latency = latency.with_target(_prom(expr, legend, "ABCD"[i], exemplar=legend == "p99"))
    builder = (
        dashboard.Dashboard("nimbus-scenarios: load test runs")
        .uid(UID)
        .description(
            "One nimbus-scenarios run: target vs achieved rate, latency with exemplars, errors "
            "by request and status, in flight, replicas; every panel links to the run's traces "
            "and logs. Metric names: docs/telemetry.md."
        )
        .tags(["nimbus-scenarios", "load-test"])
        .timezone("browser")
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .refresh("10s")
        .time("now-1h", "now")
        .links(_run_links())
        .with_variable(_datasource_variable("prometheus"))
        .with_variable(_datasource_variable("loki"))
        .with_variable(_datasource_variable("tempo"))
        .with_variable(
            dashboard.QueryVariable("scenario")
            .label("Scenario")
            .datasource(_ref("prometheus"))
            .query("label_values(nimbus_run_info, scenario)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .include_all(True)
            .all_value(".*")
        )
        .with_variable(
            dashboard.QueryVariable("run_id")
            .label("Run (newest first)")
            .datasource(_ref("prometheus"))
            .query(RUN_QUERY)
            .regex('/run_id="([^"]+)"/')
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.DISABLED)
        )
        .with_row(dashboard.Row("Load").grid_pos(GridPos(h=1, w=24, x=0, y=0)))
        .with_panel(
            _series(
                "Target vs achieved rate",
                "The plan's target arrival rate and the rate actually sent, requests/s; "
                "dropped: due but never sent (in-flight cap or late start).",
                "reqps",
                (0, 1, 12, 8),
            )
            .with_target(_prom(f"sum(nimbus_load_target_rate_per_second{{{RUN}}})", "target", "A"))
            .with_target(
                _prom(f"sum(nimbus_load_achieved_rate_per_second{{{RUN}}})", "achieved", "B")
            )
            .with_target(
                _prom(f"sum(rate(nimbus_requests_dropped_total{{{RUN}}}{RATE}))", "dropped", "C")
            )
        )
        .with_panel(latency.grid_pos(GridPos(h=8, w=12, x=12, y=1)))
        .with_panel(
            _series(
                "Errors by request and status",
                "Finished requests that failed, per second, by request template, status class "
                "and error.type (the status code, or why there was no response).",
                "reqps",
                (0, 9, 12, 8),
            ).with_target(
                _prom(
                    "sum by (request, status_class, error_type) "
                    f'(rate(nimbus_request_duration_seconds_count{{{RUN}, outcome="error"}}'
                    f"{RATE}))",
                    "{{request}} {{status_class}} {{error_type}}",
                    "A",
                )
            )
        )
        .with_panel(
            _series(
                "Requests by request",
                "Sent and failed per second, per request template (failed also counts requests "
                "abandoned in flight at a stop).",
                "reqps",
                (12, 9, 12, 8),
            )
            .with_target(
                _prom(
                    f"sum by (request) (rate(nimbus_requests_sent_total{{{RUN}}}{RATE}))",
                    "{{request}} sent",
                    "A",
                )
            )
            .with_target(
                _prom(
                    f"sum by (request) (rate(nimbus_requests_failed_total{{{RUN}}}{RATE}))",
                    "{{request}} failed",
                    "B",
                )
            )
        )
        .with_panel(
            _series(
                "In flight", "Requests sent and not yet finished.", "short", (0, 17, 8, 8)
            ).with_target(_prom(f"sum(nimbus_requests_in_flight{{{RUN}}})", "in flight", "A"))
        )
        .with_panel(
            _series(
                "Replicas observed",
                "The watched Deployment's replicas as the run saw them.",
                "short",
                (8, 17, 8, 8),
            ).with_target(_prom(f"max by (kind) (nimbus_replicas{{{RUN}}})", "{{kind}}", "A"))
        )
        .with_panel(
            _series("Phase", "The phase running.", "short", (16, 17, 8, 8)).with_target(
                _prom(
                    f"count by (phase) (nimbus_load_target_rate_per_second{{{RUN}}})",
                    "{{phase}}",
                    "A",
                )
            )
        )
        .with_row(dashboard.Row("Logs and traces").grid_pos(GridPos(h=1, w=24, x=0, y=25)))
        .with_panel(
            logs.Panel()
            .title("Run logs")
            .description("The runner's log lines for this run, in Loki.")
            .datasource(_ref("loki"))
            .grid_pos(GridPos(h=10, w=14, x=0, y=26))
            .show_time(True)
            .wrap_log_message(True)
            .enable_log_details(True)
            .links(_run_links())
            .with_target(loki.Dataquery().datasource(_ref("loki")).expr(LOKI_QUERY).ref_id("A"))
        )
        .with_panel(
            table.Panel()
            .title("Run traces")
            .description(
                "The run's traces in Tempo (its root span and sampled requests carry "
                "nimbus.run_id); click a trace ID to open it."
            )
            .datasource(_ref("tempo"))
            .grid_pos(GridPos(h=10, w=10, x=14, y=26))
            .links(_run_links())
            .with_target(
                tempo.TempoQuery()
                .datasource(_ref("tempo"))
                .query_type("traceql")
                .query(TRACEQL)
                .limit(50)
                .table_type("traces")
                .ref_id("A")
            )
        )
    )
    data: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    for number, panel in enumerate(data["panels"], start=1):
        panel["id"] = number  # unique ids, stable across builds
    return data


def render() -> str:
    """The dashboard file's text."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    """Write the dashboard (or with --check, exit 1 when the file differs)."""
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    path = Path(paths[0]) if paths else DEFAULT_PATH
    text = render()
    if check:
        same = path.exists() and path.read_text(encoding="utf-8") == text
        if not same:
            print(f"{path} differs from tools/dashboard.py: run `make dashboard`", file=sys.stderr)
        return 0 if same else 1
    path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

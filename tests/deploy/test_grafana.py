"""The Grafana dashboard: built in code, datasource-agnostic, run variables, documented names."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from typing import Any

from tests.deploy.support import GRAFANA, REPO, load_documents

DASHBOARD = GRAFANA / "nimbus-scenarios-dashboard.json"
DOC = REPO / "docs" / "telemetry.md"
DATASOURCE_VARIABLES = {"prometheus": "DS_PROMETHEUS", "loki": "DS_LOKI", "tempo": "DS_TEMPO"}
LOKI_QUERY = '{service_name="nimbus-scenarios"} | json | run_id="$run_id"'


def dashboard() -> dict[str, Any]:
    """The dashboard JSON."""
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def datasource_refs(value: Any) -> Iterator[dict[str, Any]]:
    """Every `datasource` object anywhere in the JSON."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "datasource" and isinstance(item, dict):
                yield item
            yield from datasource_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from datasource_refs(item)


def documented_metrics() -> set[str]:
    """The Prometheus names in docs/telemetry.md's metrics table (its second column)."""
    text = DOC.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `nimbus\.[\w.]+` \| `(nimbus_\w+)`", text, re.M))


def test_datasources_come_from_variables() -> None:
    """No datasource uid is hard-coded: each is ${DS_...}, a datasource variable of that type."""
    data = dashboard()
    variables = {v["name"]: v for v in data["templating"]["list"]}
    refs = [r for r in datasource_refs(data) if r.get("type") != "grafana"]
    assert refs
    for ref in refs:
        name = DATASOURCE_VARIABLES[ref["type"]]
        assert ref["uid"] == f"${{{name}}}"
    for kind, name in DATASOURCE_VARIABLES.items():
        assert variables[name]["type"] == "datasource"
        assert variables[name]["query"] == kind
        assert variables[name]["current"]["value"] == kind  # NimbusGuard's uids by default
    assert "__inputs" not in data, "provisioning does not fill __inputs; use variables"


def test_scenario_and_run_variables() -> None:
    """Template variables `scenario` and `run_id` come from the runner's metrics."""
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert "nimbus_" in variables["scenario"]["query"]
    assert "run_id" in variables["run_id"]["query"]
    assert "$scenario" in variables["run_id"]["query"]
    assert "sort_desc" in variables["run_id"]["query"]  # newest first, the query's order kept
    assert variables["run_id"]["sort"] == 0


def test_panels_cover_the_run() -> None:
    """Panels: rates, latency, errors, replicas, the run's Loki logs and its Tempo traces."""
    found = {p["title"]: p for p in panels(dashboard()["panels"])}
    for title in (
        "Target vs achieved rate",
        "Latency percentiles",
        "Errors by request and status",
        "In flight",
        "Replicas observed",
        "Run logs",
        "Run traces",
    ):
        assert title in found, f"no panel {title!r}"
    (logs,) = found["Run logs"]["targets"]
    assert logs["expr"] == LOKI_QUERY
    (traces,) = found["Run traces"]["targets"]
    assert traces["queryType"] == "traceql"
    assert "$run_id" in traces["query"]
    ids = [p["id"] for p in panels(dashboard()["panels"])]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard()["panels"]):
        if panel["type"] != "row":
            urls = [link["url"] for link in panel["links"]]
            assert any("${DS_TEMPO}" in url and "$run_id" in url for url in urls), panel["title"]
            assert any("${DS_LOKI}" in url and "$run_id" in url for url in urls), panel["title"]
    (latency,) = [p for p in panels(dashboard()["panels"]) if p["title"] == "Latency percentiles"]
    assert any(t.get("exemplar") for t in latency["targets"])


def test_queries_use_only_documented_metrics() -> None:
    """Each metric a query reads is in docs/cluster.md's table; each documented one is used."""
    documented = documented_metrics()
    assert documented
    used: set[str] = set()
    for panel in panels(dashboard()["panels"]):
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("type") == "prometheus":
                assert '$run_id"' in target["expr"]
                found = re.findall(r"\b(nimbus_\w+?)(?:_bucket|_count|_sum)?\{", target["expr"])
                used.update(found)
    assert used <= documented
    assert documented - used <= {"nimbus_requests_scheduled_total", "nimbus_run_info"} | {
        "nimbus_run_start_time_seconds"  # the run_id variable's query
    }


def test_provider_and_component() -> None:
    """The provider names no datasource; the component ships the dashboard for the sidecar."""
    (provider,) = load_documents(GRAFANA / "dashboard-provider.yaml")
    assert "datasource" not in json.dumps(provider).lower()
    (kustomization,) = load_documents(GRAFANA / "kustomization.yaml")
    assert kustomization["kind"] == "Component"
    generators = {g["name"]: g for g in kustomization["configMapGenerator"]}
    dashboard_map = generators["nimbus-scenarios-dashboard"]
    assert dashboard_map["files"] == [DASHBOARD.name]
    assert dashboard_map["options"]["labels"]["grafana_dashboard"] == "1"


def test_the_committed_json_is_what_the_builder_makes() -> None:
    """manifests/grafana's dashboard is tools/dashboard.py's output (`make dashboard`)."""
    spec = importlib.util.spec_from_file_location("dashboard_tool", REPO / "tools" / "dashboard.py")
    assert spec is not None
    assert spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert DASHBOARD.read_text(encoding="utf-8") == tool.render(), "run `make dashboard`"

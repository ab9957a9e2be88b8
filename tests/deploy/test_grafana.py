"""The Grafana dashboard: datasource-agnostic, run variables, and only documented metric names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from tests.deploy.support import GRAFANA, REPO, load_documents

DASHBOARD = GRAFANA / "nimbus-scenarios-dashboard.json"
DOC = REPO / "docs" / "cluster.md"
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
    """The metric names in docs/cluster.md's telemetry table."""
    return set(re.findall(r"^\| `(nimbus_\w+)` \|", DOC.read_text(encoding="utf-8"), re.M))


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
    assert "nimbus_" in variables["scenario"]["definition"]
    assert "run_id" in variables["run_id"]["definition"]
    assert "$scenario" in variables["run_id"]["definition"]


def test_panels_cover_the_run() -> None:
    """Panels: rates, latency, errors, replicas, the run's Loki logs and its Tempo traces."""
    found = {p["title"]: p for p in panels(dashboard()["panels"])}
    for title in (
        "Target vs achieved rate",
        "Latency percentiles",
        "Errors",
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


def test_queries_use_only_documented_metrics() -> None:
    """Each metric a query reads is in docs/cluster.md's table; each documented one is used."""
    documented = documented_metrics()
    assert documented
    used: set[str] = set()
    for panel in panels(dashboard()["panels"]):
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("type") == "prometheus":
                assert '$run_id"' in target["expr"]
                used.update(
                    re.findall(r"\b(nimbus_\w+?)(?:_bucket|_count|_sum)?\{", target["expr"])
                )
    assert used == documented


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

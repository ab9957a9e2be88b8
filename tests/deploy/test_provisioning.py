"""Grafana provisioning: the datasources YAML, its correlations, and the Alloy wiring.

Grafana, Tempo, Loki and Alloy cannot run here, so this checks structure: the YAML parses, the
uids agree with the dashboard's datasource variables and the Explore link's default, every
correlation points at a provisioned datasource, the Loki derived field finds the trace id in
a real stdout JSON line, and the Alloy file wires OTLP traces to Tempo, metrics to Prometheus
and logs (OTLP and tailed) to Loki.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import structlog

from nimbus_scenarios.telemetry import context as run_context
from nimbus_scenarios.telemetry.links import TEMPO_DATASOURCE_UID
from nimbus_scenarios.telemetry.logs import configure_logging, get_logger
from tests.deploy.support import GRAFANA, load_documents

UIDS = {"tempo": "tempo", "loki": "loki", "prometheus": "prometheus"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def datasources() -> dict[str, dict[str, Any]]:
    """The provisioned datasources by type."""
    (document,) = load_documents(GRAFANA / "datasources.yaml")
    assert document["apiVersion"] == 1
    return {d["type"]: d for d in document["datasources"]}


def test_uids_match_the_dashboard_and_the_explore_link() -> None:
    """tempo, loki, prometheus: the dashboard variables' defaults and the link's default uid."""
    provisioned = datasources()
    assert {kind: d["uid"] for kind, d in provisioned.items()} == UIDS
    dashboard = json.loads((GRAFANA / "nimbus-scenarios-dashboard.json").read_text("utf-8"))
    defaults = {
        v["query"]: v["current"]["value"]
        for v in dashboard["templating"]["list"]
        if v["type"] == "datasource"
    }
    assert defaults == UIDS
    assert provisioned["tempo"]["uid"] == TEMPO_DATASOURCE_UID


def test_every_correlation_points_at_a_provisioned_datasource() -> None:
    """Tempo to Loki (trace id) and Prometheus; Loki and Prometheus exemplars to Tempo."""
    provisioned = datasources()
    uids = {d["uid"]: kind for kind, d in provisioned.items()}
    tempo = provisioned["tempo"]["jsonData"]
    assert uids[tempo["tracesToLogsV2"]["datasourceUid"]] == "loki"
    assert tempo["tracesToLogsV2"]["filterByTraceID"] is True
    assert uids[tempo["tracesToMetrics"]["datasourceUid"]] == "prometheus"
    assert uids[tempo["serviceMap"]["datasourceUid"]] == "prometheus"
    for query in tempo["tracesToMetrics"]["queries"]:
        # Grafana expands $VAR in provisioning files: $__tags must be written $$__tags.
        assert "$$__tags" in query["query"]
        assert re.search(r"(?<!\$)\$__tags", query["query"]) is None
    derived = provisioned["loki"]["jsonData"]["derivedFields"]
    assert {uids[f["datasourceUid"]] for f in derived} == {"tempo"}
    assert {f["matcherType"] for f in derived} == {"regex", "label"}
    assert all(f["url"] == "$${__value.raw}" for f in derived)
    (exemplar,) = provisioned["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert uids[exemplar["datasourceUid"]] == "tempo"
    # The label the OTLP -> Prometheus translation gives an exemplar's trace id.
    assert exemplar["name"] == "trace_id"


def test_the_derived_field_finds_the_trace_id_in_a_real_log_line() -> None:
    """A stdout JSON line as the runner writes it: the regex captures exactly its trace_id."""
    (field,) = [
        f for f in datasources()["loki"]["jsonData"]["derivedFields"] if f["matcherType"] == "regex"
    ]
    out = io.StringIO()
    run_context.reset()
    try:
        configure_logging(stream=out, json=True)
        ctx = run_context.current()
        ctx.trace_id, ctx.span_id, ctx.run_id = TRACE_ID, "00f067aa0ba902b7", "run1"
        get_logger().info("phase_started", phase="warm")
    finally:
        run_context.reset()
        structlog.reset_defaults()
    line = out.getvalue().strip()
    assert json.loads(line)["trace_id"] == TRACE_ID
    assert json.loads(line)["span_id"] == "00f067aa0ba902b7"
    found = re.search(field["matcherRegex"], line)
    assert found is not None
    assert found.group(1) == TRACE_ID


# ------------------------------------------------------------------------------------ Alloy
_BLOCK = re.compile(r'^([a-z_][a-z0-9_.]*) "([a-z0-9_]+)" \{', re.M)
_REF = re.compile(r"\b([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+)\.(input|receiver|output|targets)\b")


def alloy_components() -> dict[str, str]:
    """Each top-level component (`kind.label`) and its body."""
    text = (GRAFANA / "alloy.alloy").read_text("utf-8")
    text = "\n".join(
        line.split("//", 1)[0] if "://" not in line else line for line in text.splitlines()
    )
    components: dict[str, str] = {}
    for match in _BLOCK.finditer(text):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                break
        components[f"{match.group(1)}.{match.group(2)}"] = text[match.end() : end]
    return components


def _next(components: dict[str, str], name: str, signal: str | None) -> set[str]:
    """Components `name` sends `signal` to (its `output` line for that signal, or forward_to)."""
    body = components[name]
    lines = [
        line
        for line in body.splitlines()
        if (signal is not None and re.match(rf"\s*{signal}\s*=", line))
        or re.match(r"\s*(forward_to|targets)\s*=", line)
    ]
    targets = {m.group(1) for line in lines for m in _REF.finditer(line)}
    unknown = targets - set(components)
    assert not unknown, f"{name} refers to undefined {unknown}"
    return targets


def _reaches(components: dict[str, str], start: str, signal: str | None) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_next(components, name, signal))
    return seen


def test_alloy_wires_otlp_to_tempo_prometheus_and_loki() -> None:
    """From the OTLP receiver: traces end at the Tempo exporter, metrics in Prometheus remote
    write, logs at Loki's OTLP endpoint; the tailed pods go through the JSON stage to Loki."""
    components = alloy_components()
    receiver = "otelcol.receiver.otlp.jobs"
    assert '"0.0.0.0:4318"' in components[receiver]
    traces = _reaches(components, receiver, "traces")
    assert "otelcol.exporter.otlp.tempo" in traces
    assert '"tempo:4317"' in components["otelcol.exporter.otlp.tempo"]
    metrics = _reaches(components, receiver, "metrics")
    assert {"otelcol.exporter.prometheus.jobs", "prometheus.remote_write.prometheus"} <= metrics
    assert "send_exemplars = true" in components["prometheus.remote_write.prometheus"]
    logs = _reaches(components, receiver, "logs")
    assert "otelcol.exporter.otlphttp.loki" in logs
    assert '"http://loki:3100/otlp"' in components["otelcol.exporter.otlphttp.loki"]
    for exporter in ("otelcol.exporter.otlp.tempo", "otelcol.exporter.otlphttp.loki"):
        assert exporter not in _reaches(components, receiver, "metrics")
    tailed = _reaches(components, "loki.source.kubernetes.nimbus_pods", None)
    assert {"loki.process.nimbus_json", "loki.write.loki"} <= tailed
    process = components["loki.process.nimbus_json"]
    assert 'trace_id = "trace_id"' in re.sub(r"\s+", " ", process)
    assert (
        "app.kubernetes.io/name=nimbus-scenarios" in components["discovery.kubernetes.nimbus_pods"]
    )


def test_the_component_ships_the_provisioning() -> None:
    """The kustomize component generates the datasources (sidecar label) and Alloy ConfigMaps."""
    (kustomization,) = load_documents(GRAFANA / "kustomization.yaml")
    generators = {g["name"]: g for g in kustomization["configMapGenerator"]}
    datasource_map = generators["nimbus-scenarios-datasources"]
    assert datasource_map["files"] == ["datasources.yaml"]
    assert datasource_map["options"]["labels"]["grafana_datasource"] == "1"
    assert generators["nimbus-scenarios-alloy"]["files"] == ["config.alloy=alloy.alloy"]
    for generator in generators.values():
        for entry in generator["files"]:
            assert (GRAFANA / entry.split("=")[-1]).is_file()

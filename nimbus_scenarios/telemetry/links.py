"""Links from a run to its trace: a Grafana Explore URL on the Tempo datasource (uid `tempo`)."""

from __future__ import annotations

import json
from typing import Final
from urllib.parse import quote

__all__ = ["TEMPO_DATASOURCE_UID", "explore_link", "trace_summary"]

TEMPO_DATASOURCE_UID: Final = "tempo"


def explore_link(grafana_url: str, trace_id: str) -> str:
    """Grafana Explore (10+, `panes` URL form) showing trace `trace_id` from Tempo.

    ``grafana_url`` is Grafana's base URL (``http://grafana:3000``, or with a sub-path).
    """
    panes = {
        "trace": {
            "datasource": TEMPO_DATASOURCE_UID,
            "queries": [
                {
                    "refId": "A",
                    "datasource": {"type": "tempo", "uid": TEMPO_DATASOURCE_UID},
                    "queryType": "traceql",
                    "query": trace_id,
                }
            ],
            "range": {"from": "now-24h", "to": "now"},
        }
    }
    encoded = quote(json.dumps(panes, separators=(",", ":")), safe="")
    return f"{grafana_url.rstrip('/')}/explore?schemaVersion=1&orgId=1&panes={encoded}"


def trace_summary(trace_id: str | None, grafana_url: str | None = None) -> list[str]:
    """The end summary's trace lines: the trace id, and the Explore link when Grafana is known."""
    if not trace_id:
        return []
    lines = [f"trace id: {trace_id}"]
    if grafana_url:
        lines.append(f"trace: {explore_link(grafana_url, trace_id)}")
    return lines

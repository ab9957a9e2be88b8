"""Tests of `links`: the Grafana Explore link to a run's trace and the summary's trace lines."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from nimbus_scenarios.telemetry.links import explore_link, trace_summary

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def test_explore_link_points_at_tempo() -> None:
    """The Explore link opens the trace id on the Tempo datasource (uid tempo)."""
    link = explore_link("http://grafana:3000/", TRACE_ID)
    assert link.startswith("http://grafana:3000/explore?")
    panes = json.loads(parse_qs(urlsplit(link).query)["panes"][0])
    (pane,) = panes.values()
    assert pane["datasource"] == "tempo"
    assert pane["queries"][0]["query"] == TRACE_ID
    assert pane["queries"][0]["datasource"] == {"type": "tempo", "uid": "tempo"}


def test_trace_summary_lines() -> None:
    """No trace, no lines; the trace id alone; and the link when Grafana is known."""
    assert trace_summary(None, "http://g") == []
    assert trace_summary(TRACE_ID) == [f"trace id: {TRACE_ID}"]
    assert trace_summary(TRACE_ID, "http://g") == [
        f"trace id: {TRACE_ID}",
        f"trace: {explore_link('http://g', TRACE_ID)}",
    ]

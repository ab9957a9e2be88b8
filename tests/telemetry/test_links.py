"""Tests of `links`: the Grafana Explore link to a run's trace and the summary's trace lines."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from nimbus_scenarios.errors import UsageError
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.telemetry.links import (
    ORG_VARIABLE,
    TEMPO_UID_VARIABLE,
    ExploreTarget,
    explore_link,
    explore_target,
    trace_summary,
)

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


def _org_and_uid(link: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(link).query)
    (pane,) = json.loads(query["panes"][0]).values()
    assert pane["queries"][0]["datasource"]["uid"] == pane["datasource"]
    return query["orgId"][0], pane["datasource"]


def test_explore_target_flags_then_environment_then_defaults() -> None:
    """The flag wins over the variable, the variable over the default (tempo in org 1)."""
    env = {TEMPO_UID_VARIABLE: "traces-prod", ORG_VARIABLE: "3"}
    assert explore_target({}) == ExploreTarget("tempo", 1)
    assert explore_target(env) == ExploreTarget("traces-prod", 3)
    assert explore_target(env, tempo_uid="P214B5B846CF3925F", org="7") == ExploreTarget(
        "P214B5B846CF3925F", 7
    )
    link = explore_link("http://g", TRACE_ID, explore_target(env))
    assert _org_and_uid(link) == ("3", "traces-prod")
    assert _org_and_uid(explore_link("http://g", TRACE_ID)) == ("1", "tempo")


@pytest.mark.parametrize(
    ("env", "flags", "named"),
    [
        ({ORG_VARIABLE: "zero"}, {}, ORG_VARIABLE),
        ({}, {"org": "0"}, "--grafana-org"),
        ({TEMPO_UID_VARIABLE: "a b"}, {}, TEMPO_UID_VARIABLE),
        ({}, {"tempo_uid": "x" * 41}, "--grafana-tempo-uid"),
    ],
)
def test_a_value_grafana_cannot_take_is_a_usage_error(
    env: dict[str, str], flags: dict[str, str], named: str
) -> None:
    """A bad org or uid is refused with exit 2, naming where it came from."""
    with pytest.raises(UsageError) as caught:
        explore_target(env, **flags)
    assert caught.value.exit_code == ExitCode.USAGE
    assert named in str(caught.value)

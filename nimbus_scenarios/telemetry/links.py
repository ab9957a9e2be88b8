"""Links from a run to its trace: a Grafana Explore URL on a Tempo datasource.

The datasource uid and the organisation come from `run --grafana-tempo-uid` / `--grafana-org`,
else `NIMBUS_GRAFANA_TEMPO_UID` / `NIMBUS_GRAFANA_ORG`, else `tempo` and 1: the uid that
manifests/grafana/datasources.yaml provisions and Grafana's first organisation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from nimbus_scenarios.errors import UsageError

__all__ = [
    "ORG_VARIABLE",
    "TEMPO_DATASOURCE_UID",
    "TEMPO_UID_VARIABLE",
    "ExploreTarget",
    "explore_link",
    "explore_target",
    "trace_summary",
]

TEMPO_DATASOURCE_UID: Final = "tempo"
TEMPO_UID_VARIABLE: Final = "NIMBUS_GRAFANA_TEMPO_UID"
ORG_VARIABLE: Final = "NIMBUS_GRAFANA_ORG"
_UID_MAX: Final = 40  # Grafana's limit on a datasource uid


@dataclass(frozen=True, slots=True)
class ExploreTarget:
    """Which Tempo datasource, in which Grafana organisation, the Explore link opens."""

    datasource_uid: str = TEMPO_DATASOURCE_UID
    org_id: int = 1


def _uid(text: str, source: str) -> str:
    uid = text.strip()
    if not uid or len(uid) > _UID_MAX or not all(c.isalnum() or c in "-_." for c in uid):
        raise UsageError(
            f"{source}: a Grafana datasource uid is 1 to {_UID_MAX} letters, digits, "
            f"'-', '_' or '.'; got {text!r}"
        )
    return uid


def _org(text: str, source: str) -> int:
    try:
        org = int(text.strip())
    except ValueError:
        org = 0
    if org < 1:
        raise UsageError(
            f"{source}: a Grafana organisation id is a whole number from 1; got {text!r}"
        )
    return org


def explore_target(
    environ: Mapping[str, str],
    *,
    tempo_uid: str | None = None,
    org: str | None = None,
) -> ExploreTarget:
    """The Explore link's datasource and org: the flags' values, else the variables, else the
    defaults; `UsageError` (exit 2) for a value Grafana could not take."""
    uid_text = tempo_uid if tempo_uid is not None else environ.get(TEMPO_UID_VARIABLE, "")
    uid_source = "--grafana-tempo-uid" if tempo_uid is not None else TEMPO_UID_VARIABLE
    org_text = org if org is not None else environ.get(ORG_VARIABLE, "")
    org_source = "--grafana-org" if org is not None else ORG_VARIABLE
    return ExploreTarget(
        datasource_uid=_uid(uid_text, uid_source) if uid_text.strip() else TEMPO_DATASOURCE_UID,
        org_id=_org(org_text, org_source) if org_text.strip() else 1,
    )


def explore_link(grafana_url: str, trace_id: str, target: ExploreTarget | None = None) -> str:
    """Grafana Explore (10+, `panes` URL form) showing trace `trace_id` from Tempo.

    ``grafana_url`` is Grafana's base URL (``http://grafana:3000``, or with a sub-path);
    ``target`` the datasource and org (default: uid `tempo` in org 1).
    """
    where = target if target is not None else ExploreTarget()
    uid = where.datasource_uid
    panes = {
        "trace": {
            "datasource": uid,
            "queries": [
                {
                    "refId": "A",
                    "datasource": {"type": "tempo", "uid": uid},
                    "queryType": "traceql",
                    "query": trace_id,
                }
            ],
            "range": {"from": "now-24h", "to": "now"},
        }
    }
    encoded = quote(json.dumps(panes, separators=(",", ":")), safe="")
    base = grafana_url.rstrip("/")
    return f"{base}/explore?schemaVersion=1&orgId={where.org_id}&panes={encoded}"


def trace_summary(
    trace_id: str | None, grafana_url: str | None = None, target: ExploreTarget | None = None
) -> list[str]:
    """The end summary's trace lines: the trace id, and the Explore link when Grafana is known."""
    if not trace_id:
        return []
    lines = [f"trace id: {trace_id}"]
    if grafana_url:
        lines.append(f"trace: {explore_link(grafana_url, trace_id, target)}")
    return lines

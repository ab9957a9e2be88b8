"""What the HTML report shows, as data: `build_page(results)` turns a `RunResults` into the rows,
facts and notes the page's templates lay out, every value already formatted for people.

Its place: between the results model and `report.html`. The decisions live here (which facts,
what counts as cut short, how a value reads in its unit), so the templates hold only layout and
mypy checks the logic. Strings stay raw: the templates escape them (autoescape), once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from nimbus_scenarios.report._format import (
    DASH,
    count,
    duration,
    exit_meaning,
    expectation_value,
    expected_value,
    millis,
    offset,
    rate,
    start_lines,
    verdict_word,
)
from nimbus_scenarios.report.per_request import PerRequest, per_request
from nimbus_scenarios.report.scale_events import ScalingSection, scale_events
from nimbus_scenarios.report.timeline import Marker
from nimbus_scenarios.results.model import (
    Judgement,
    LoadResult,
    PhaseResult,
    RequestResult,
    RunResults,
    RunVerdict,
    Verdict,
)
from nimbus_scenarios.secrets import mask_url, mask_urls_in_text
from nimbus_scenarios.telemetry.links import TEMPO_DATASOURCE_UID, ExploreTarget, explore_link

__all__ = [
    "Alert",
    "EventItem",
    "ExpectationRow",
    "Fact",
    "Page",
    "PhaseRow",
    "RequestRow",
    "RequestTable",
    "Tile",
    "badge_class",
    "build_page",
]

_BADGE_CLASSES: Final[Mapping[str, str]] = {
    "passed": "ok",
    "failed": "bad",
    "aborted": "warn",
    "error": "err",
    "not_judged": "muted",
    "partial": "muted",
}
_SAFE_URL: Final = re.compile(r"^https?://[^\s\"'<>`]+$", re.IGNORECASE)
_TRACE_ID: Final = re.compile(r"[0-9a-fA-F]{16,32}")


def badge_class(verdict: Verdict | RunVerdict) -> str:
    """The CSS class of a verdict's badge (green, red, orange, purple, grey)."""
    return _BADGE_CLASSES.get(verdict.value, "muted")


@dataclass(frozen=True, slots=True)
class Fact:
    """A header fact: shown as text, as `<code>` pieces, or as a link when `href` is set."""

    label: str
    values: tuple[str, ...]
    code: bool = False
    href: str | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """A box under the facts: `tone` is `err` or `warn`."""

    tone: str
    headline: str
    text: str


@dataclass(frozen=True, slots=True)
class Tile:
    """A big number with its label."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class ExpectationRow:
    """One judged expectation, its values in its unit."""

    verdict: Verdict
    scope: str
    text: str
    observed: str
    expected: str
    held: str
    window: str
    detail: str


@dataclass(frozen=True, slots=True)
class PhaseRow:
    """One phase: plan, what ran, rates, counts and latency."""

    name: str
    shape: str
    planned: str
    ran: str | None
    """None: the phase did not run."""
    cut_short: bool
    target: str
    achieved: str
    scheduled: str
    sent: str
    succeeded: str
    failed: str
    dropped: str
    failed_hot: bool
    dropped_hot: bool
    latency: tuple[str, str, str, str]
    """p50, p95, p99, max."""


@dataclass(frozen=True, slots=True)
class RequestRow:
    """One request template's counts, and its status codes and error kinds."""

    name: str
    sent: str
    succeeded: str
    failed: str
    timed_out: str
    truncated: str
    """Responses whose body was cut at the transports' cap."""
    dropped: str
    outcomes: str
    failed_hot: bool
    dropped_hot: bool


@dataclass(frozen=True, slots=True)
class RequestTable:
    """Per-request counts over a scope: the run, or one phase."""

    scope: str
    rows: tuple[RequestRow, ...]


@dataclass(frozen=True, slots=True)
class EventItem:
    """A line in the events list; `kind` colours its dot."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Page:
    """Everything the page shows, apart from the charts."""

    title: str
    scenario: str
    verdict: RunVerdict
    facts: tuple[Fact, ...]
    alerts: tuple[Alert, ...]
    tiles: tuple[Tile, ...]
    expectation_summary: str
    expectations: tuple[ExpectationRow, ...]
    no_expectations: str
    phases: tuple[PhaseRow, ...]
    requests: RequestTable | None
    requests_by_phase: tuple[RequestTable, ...]
    per_request: PerRequest | None
    """The per-request section's failure tables; None when the section is not shown."""
    events: tuple[EventItem, ...]
    source: str
    schema_version: int
    scenario_hash: str
    scaling: ScalingSection | None = None
    """The "Scale events" section; None when the document has no `scaling` section."""


def _grafana(results: RunResults) -> Fact | None:
    """A link to the run's trace in Grafana (or to Grafana); a URL that is not http(s) is
    shown as text, never made a link."""
    url = results.grafana_url
    if not url:
        return None
    if not _SAFE_URL.match(url):
        return Fact("grafana", (url,), code=True)
    trace = results.trace_id
    if trace and _TRACE_ID.fullmatch(trace):
        target = ExploreTarget(
            datasource_uid=results.grafana_tempo_uid or TEMPO_DATASOURCE_UID,
            org_id=results.grafana_org or 1,
        )
        link = explore_link(url, trace, target)
        return Fact("grafana", ("open the trace in Grafana",), href=link)
    return Fact("grafana", ("open Grafana",), href=url)


def _started(moment: dt.datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def _facts(results: RunResults) -> tuple[Fact, ...]:
    code = results.exit_code
    facts = [
        Fact("run id", (results.run_id,), code=True),
        Fact("exit code", (f"{int(code)} ({exit_meaning(code)})",)),
        Fact("duration", (duration(results.duration_s),)),
        Fact("started", (_started(results.started_at),)),
        # The document masks URL passwords when it is built; masked again here for documents
        # written by other versions or by hand.
        Fact("target", (mask_url(results.target) or DASH,), code=True),
        Fact("trace id", (results.trace_id,), code=True)
        if results.trace_id
        else Fact("trace id", (DASH,)),
    ]
    link = _grafana(results)
    if link is not None:
        facts.append(link)
    if results.shard is None:
        shards = len(results.merged_from or ())
        facts.append(Fact("shards", (f"merged from {shards}",)))
    elif results.shard.count > 1:
        facts.append(Fact("shard", (f"{results.shard.index} of {results.shard.count}",)))
    if results.params:
        pairs = tuple(mask_urls_in_text(f"{k}={v}") for k, v in sorted(results.params.items()))
        facts.append(Fact("params", pairs, code=True))
    if results.tool_version:
        facts.append(Fact("tool", (f"nimbus-scenarios {results.tool_version}",)))
    return tuple(facts)


def _alerts(results: RunResults) -> tuple[Alert, ...]:
    alerts = []
    if results.error:
        alerts.append(Alert("err", "Infrastructure error.", results.error))
    if results.abort is not None:
        at = results.abort.at_s
        when = "" if at is None else f" at {offset(at)}"
        alerts.append(Alert("warn", f"Aborted{when}.", results.abort.reason))
    lost = results.lost_at_s
    if lost is not None and results.replica_source is not None:
        headline = f"Replica source lost at {offset(lost)}."
        alerts.append(Alert("warn", headline, results.replica_source.description))
    return tuple(alerts)


def _tiles(results: RunResults) -> tuple[Tile, ...]:
    totals = results.totals
    done = totals.succeeded + totals.failed
    share = f" ({100 * totals.failed / done:.1f}%)" if done else ""
    latency = totals.latency_ms
    tiles = [
        Tile("sent", count(totals.sent)),
        Tile("failed", count(totals.failed) + share),
        Tile("dropped", count(totals.dropped)),
        Tile("p50", millis(None if latency is None else latency.p50)),
        Tile("p95", millis(None if latency is None else latency.p95)),
        Tile("p99", millis(None if latency is None else latency.p99)),
    ]
    if results.replicas:
        tiles.append(Tile("peak ready", str(max(p.ready for p in results.replicas))))
    return tuple(tiles)


def _expectation(judgement: Judgement) -> ExpectationRow:
    e = judgement.expectation
    window = judgement.window_s
    met = judgement.met_at_s
    if met is None:
        held = DASH
    elif window is not None:
        held = f"at {offset(met)}"
    elif e.scope in {"before", "after"}:
        held = f"after {duration(met)}"  # counted from the stage's start, not the run's
    else:
        held = offset(met)
    observed = judgement.observed
    return ExpectationRow(
        verdict=judgement.verdict,
        scope=e.scope,
        text=e.text,
        observed=DASH if observed is None else expectation_value(e.kind, observed),
        expected=expected_value(e),
        held=held,
        window=DASH if window is None else f"{offset(window[0])} \u2192 {offset(window[1])}",
        detail=judgement.detail,
    )


def _expectation_summary(judgements: Iterable[Judgement]) -> str:
    tally = Counter(j.verdict for j in judgements)
    return ", ".join(f"{n} {verdict_word(v)}" for v, n in sorted(tally.items()))


def _phase(phase: PhaseResult) -> PhaseRow:
    load = phase.load
    latency = load.latency_ms
    ran = None
    cut_short = False
    if phase.ran and phase.ran_s is not None:
        ran = f"{offset(phase.ran_s[0])} \u2192 {offset(phase.ran_s[1])}"
        cut_short = phase.ran_s[1] + 1e-3 < phase.end_s
    return PhaseRow(
        name=phase.name,
        shape=phase.shape,
        planned=f"{offset(phase.start_s)} \u2192 {offset(phase.end_s)}",
        ran=ran,
        cut_short=cut_short,
        target=rate(phase.target_rate),
        achieved=rate(phase.achieved_rate),
        scheduled=count(load.scheduled),
        sent=count(load.sent),
        succeeded=count(load.succeeded),
        failed=count(load.failed),
        dropped=count(load.dropped),
        failed_hot=load.failed > 0,
        dropped_hot=load.dropped > 0,
        latency=(
            (DASH, DASH, DASH, DASH)
            if latency is None
            else (
                millis(latency.p50),
                millis(latency.p95),
                millis(latency.p99),
                millis(latency.max),
            )
        ),
    )


def _outcomes(request: RequestResult) -> str:
    """Status codes and error kinds with their counts (`200`, times sign, `291`, ...)."""
    parts = [f"{status}\u00d7{n:,}" for status, n in sorted(request.status_counts.items())]
    parts += [f"{kind}\u00d7{n:,}" for kind, n in sorted(request.errors_by_kind.items())]
    return " \u00b7 ".join(parts) or DASH


def _requests(scope: str, load: LoadResult) -> RequestTable | None:
    if not load.requests:
        return None
    rows = tuple(
        RequestRow(
            name=r.name,
            sent=count(r.sent),
            succeeded=count(r.succeeded),
            failed=count(r.failed),
            timed_out=count(r.timed_out),
            truncated=count(r.truncated),
            dropped=count(r.dropped),
            outcomes=_outcomes(r),
            failed_hot=r.failed > 0,
            dropped_hot=r.dropped > 0,
        )
        for r in load.requests
    )
    return RequestTable(scope, rows)


def _events(results: RunResults, markers: Iterable[Marker]) -> tuple[EventItem, ...]:
    events = [EventItem(str(m.kind), m.title) for m in markers]
    for step in results.cleanup:
        status = f"status {step.status}" if step.status is not None else "done"
        events.append(EventItem("cleanup", f"cleanup {step.request}: {step.error or status}"))
    events.extend(EventItem("start", line) for line in start_lines(results))
    events.extend(EventItem("note", note) for note in results.notes)
    return tuple(events)


def build_page(results: RunResults, markers: Iterable[Marker], schema_version: int) -> Page:
    """The page's content for one results document; `markers` are the timeline's (kills and
    the abort, listed under events too)."""
    by_phase = (_requests(p.name, p.load) for p in results.phases)
    return Page(
        title=f"{results.scenario} \u00b7 {verdict_word(results.verdict)} \u00b7 nimbus-scenarios",
        scenario=results.scenario,
        verdict=results.verdict,
        facts=_facts(results),
        alerts=_alerts(results),
        tiles=_tiles(results),
        expectation_summary=_expectation_summary(results.expectations),
        expectations=tuple(_expectation(j) for j in results.expectations),
        no_expectations=(
            "No expectations were judged"
            + (" (the run stopped before judging)." if results.error else ".")
        ),
        phases=tuple(_phase(p) for p in results.phases),
        requests=_requests("run", results.totals),
        requests_by_phase=tuple(t for t in by_phase if t is not None),
        per_request=per_request(results),
        events=_events(results, markers),
        source=mask_urls_in_text(results.scenario_source),
        schema_version=schema_version,
        scenario_hash=results.scenario_hash[:16],
        scaling=scale_events(results.scaling),
    )

"""The per-second series of each request template over a whole run: frozen, thawed, merged and
checked against the templates' counters.

Its place: the `engine` stage, beside `engine.stats`. `RunStats` owns one `SecondSeries` per
template (``RunStats.template_series``), and every phase's `RequestStats` of that template holds
the same one, so the hot path records into it next to the run-wide series without a lookup. The
series count what the run-wide one counts (scheduled and dropped by scheduled time, sent by send
time, succeeded and failed by completion, the latency of responses by completion), for one
template's requests only: per-request guards read them while the run goes on.

A run thawed from a document written before templates had series has none for its templates
(`RunStats.request_series` answers None); merging it with one that has them keeps none for those
templates, since the sum would hold only part of the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from nimbus_scenarios.engine.records import Counts, RequestSeconds, RequestSnapshot, SecondRecord
from nimbus_scenarios.engine.request_stats import RequestStats, add_counts
from nimbus_scenarios.engine.series import COUNTERS, SecondSeries, merge_series
from nimbus_scenarios.errors import ResultsError

__all__ = [
    "freeze_series",
    "merge_template_series",
    "request_snapshots",
    "series_for",
    "series_problems",
    "template_counts",
    "thaw_series",
]


def _busy(record: SecondRecord) -> bool:
    counts = (record.scheduled, record.sent, record.dropped, record.succeeded, record.failed)
    return any(counts) or record.histogram is not None


def freeze_series(templates: Mapping[str, SecondSeries]) -> tuple[RequestSeconds, ...]:
    """Each template's seconds, in the mapping's order, leaving out seconds with nothing in
    them (a template that ran in one phase costs only that phase's seconds)."""
    return tuple(
        RequestSeconds(name, tuple(r for r in series.freeze() if _busy(r)))
        for name, series in templates.items()
    )


def thaw_series(records: Sequence[RequestSeconds]) -> dict[str, SecondSeries]:
    """The finished series of each template a record names.

    Raises ResultsError when a template is named twice.
    """
    templates: dict[str, SecondSeries] = {}
    for record in records:
        if record.name in templates:
            raise ResultsError(f"request {record.name!r} has two per-second series")
        templates[record.name] = SecondSeries.thaw(record.seconds)
    return templates


def merge_template_series(
    a: Mapping[str, SecondSeries],
    b: Mapping[str, SecondSeries],
    a_names: Iterable[str],
    b_names: Iterable[str],
) -> dict[str, SecondSeries]:
    """Two runs' template series added second by second (``a``'s order, then ``b``'s new ones).

    ``a_names`` and ``b_names`` are the templates each run recorded anything for: a template
    one run recorded without a series for it has no series in the sum.
    """
    recorded = (set(a_names), set(b_names))
    merged: dict[str, SecondSeries] = {}
    for name in [*a, *(n for n in b if n not in a)]:
        mine, theirs = a.get(name), b.get(name)
        if (mine is None and name in recorded[0]) or (theirs is None and name in recorded[1]):
            continue
        if mine is None or theirs is None:
            only = mine if theirs is None else theirs
            assert only is not None
            merged[name] = merge_series(only, SecondSeries(only.started_at))
        else:
            merged[name] = merge_series(mine, theirs)
    return merged


def series_for(templates: dict[str, SecondSeries], name: str, like: SecondSeries) -> SecondSeries:
    """Template ``name``'s series in ``templates``, added (on ``like``'s clock) if missing."""
    found = templates.get(name)
    if found is None:
        found = templates[name] = SecondSeries(like.started_at, live_seconds=like.live_seconds)
    return found


def series_problems(
    templates: Mapping[str, SecondSeries], counts: Mapping[str, Counts]
) -> list[str]:
    """Where a template's per-second sums differ from its counters summed over the phases
    (``counts``, by template); a template with counters and no series is not checked."""
    problems: list[str] = []
    for name, series in templates.items():
        held = counts.get(name, Counts())
        for counter in COUNTERS:
            in_series = sum(series.counters(counter))
            in_phases: int = getattr(held, counter)
            if in_series != in_phases:
                problems.append(
                    f"request {name!r}: per-second {counter} sum {in_series} != phases' {in_phases}"
                )
    return problems


def template_counts(phases: Iterable[Mapping[str, RequestStats]]) -> dict[str, Counts]:
    """Each template's counters summed over the phases (each phase's templates by name)."""
    counts: dict[str, Counts] = {}
    for requests in phases:
        for name, request in requests.items():
            counts[name] = counts.get(name, Counts()) + request.counts()
    return counts


def request_snapshots(phases: Iterable[Mapping[str, RequestStats]]) -> tuple[RequestSnapshot, ...]:
    """Each template's failures, statuses and error kinds so far, summed over the phases."""
    failed: dict[str, int] = {}
    statuses: dict[str, dict[int, int]] = {}
    kinds: dict[str, dict[str, int]] = {}
    for requests in phases:
        for name, request in requests.items():
            failed[name] = failed.get(name, 0) + request.failed
            add_counts(statuses.setdefault(name, {}), request.status_counts)
            add_counts(kinds.setdefault(name, {}), request.errors_by_kind)
    return tuple(
        RequestSnapshot(name, n, statuses[name], kinds[name]) for name, n in failed.items()
    )

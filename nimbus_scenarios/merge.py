"""Merging shard results into one run: counts add up, histograms merge, verdicts are re-judged.

Shards of one scenario (`run --shard I/N`) each write a results document. `merge_results`
refuses documents of different scenarios, sources or params, documents that are themselves
merged, and a set of shards that is not every index 0..N-1 exactly once (unless
`allow_partial`); checks every encoded histogram before decoding it; adds their counts; merges
their HDR histograms, per phase and per request template (so merged percentiles are exact to
histogram precision); sums the
per-second series; and judges every load expectation again on the merged data, with the plan
every shard embedded. Replica expectations, the `before`/`after` hypotheses, kills and cleanup
belong to shard 0, whose verdicts are kept as they are; so does the `scaling` section (every
shard watches the same Deployment; without shard 0, the lowest shard present's, as its replica
data). Each shard's `start_late_s` is kept in
`merged_from`, and `start_skew` says how far apart the shards started: the latest start minus
the earliest, and which shard was latest.

A partial merge (`allow_partial` with shards missing) judges the load of the shards present:
`achieved` against their share of the plan, replica expectations and hypotheses not at all
without shard 0. Its verdict is never `passed`: `partial` (exit 4) unless something failed (1)
or aborted (3), and its notes say which shards are missing.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from functools import reduce

from nimbus_scenarios.engine.records import PhaseRecord
from nimbus_scenarios.engine.stats import PhaseStats, RunStats, merge
from nimbus_scenarios.errors import ResultsError
from nimbus_scenarios.judge.expectations import judge_load, planned_of, scope_of
from nimbus_scenarios.judge.verdict import run_verdict
from nimbus_scenarios.plan.model import ExpectationPlan
from nimbus_scenarios.results.build import load_result, rounded_judgement
from nimbus_scenarios.results.histograms import histogram_problems
from nimbus_scenarios.results.model import (
    Judgement,
    MergedShard,
    PhaseResult,
    RunResults,
    StartSkew,
    Verdict,
)

__all__ = ["merge_results", "start_skew"]

# What hdrhistogram and the counters may raise on a histogram that passed `histogram_problems`
# but is still not what it claims (its counts, say): the last guard at this boundary.
_DECODE_ERRORS = (ValueError, TypeError, IndexError, OverflowError, zlib.error)


def _shard(results: RunResults) -> tuple[int, int]:
    shard = results.shard
    return (0, 1) if shard is None else (shard.index, shard.count)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _indexes(indexes: Sequence[int]) -> str:
    return ", ".join(map(str, sorted(indexes)))


def _check_compatible(shards: Sequence[RunResults], names: Sequence[str]) -> list[int]:
    """Refuse documents that do not belong together; the shard indexes missing (in order)."""
    first = shards[0]
    for other in shards[1:]:
        for what, mine, theirs in (
            ("scenarios", first.scenario, other.scenario),
            ("scenario sources", first.scenario_hash, other.scenario_hash),
            ("params", dict(first.params), dict(other.params)),
        ):
            if mine != theirs:
                raise ResultsError(
                    f"cannot merge results of different {what}: run {first.run_id} has "
                    f"{_short(mine)}, run {other.run_id} has {_short(theirs)}"
                )
    for results, name in zip(shards, names, strict=True):
        if results.merged_from is not None:
            # Its shards are not known by index and count any more: merged again with the
            # missing ones, a partial merge would pass as a whole one.
            raise ResultsError(
                f"{name}: already a merged document (of {len(results.merged_from)} shards); "
                "merge the shards' own results"
            )
    shards_seen = [_shard(r) for r in shards]
    counts = {count for _, count in shards_seen}
    if len(counts) > 1:
        raise ResultsError(f"cannot merge results of different shard counts: {sorted(counts)}")
    indexes = [index for index, _ in shards_seen]
    if len(set(indexes)) != len(indexes):
        raise ResultsError(f"the same shard appears twice: {sorted(indexes)}")
    (count,) = counts
    return [i for i in range(count) if i not in set(indexes)]


def _thaw(results: RunResults, name: str) -> RunStats:
    """A shard's statistics as counters, every histogram checked before it is decoded."""
    found = next(histogram_problems(results.stats), None)
    if found is not None:
        path, problem = found
        raise ResultsError(f"{name}: not a valid results document: {path}: {problem}")
    try:
        return RunStats.thaw(results.stats)
    except _DECODE_ERRORS as exc:
        raise ResultsError(f"{name}: its statistics cannot be read: {exc}") from None


def merge_results(
    shards: Sequence[RunResults],
    *,
    allow_partial: bool = False,
    names: Sequence[str] | None = None,
) -> RunResults:
    """One results document for the whole run from its shards' documents.

    `names` say where each document came from, for messages (default: its run id). Raises
    ResultsError for documents that cannot be merged, and for missing shards unless
    `allow_partial`.
    """
    if not shards:
        raise ResultsError("nothing to merge")
    named = list(names) if names is not None else [f"run {r.run_id}" for r in shards]
    if len(named) != len(shards):
        raise ValueError("give one name per document")
    missing = _check_compatible(shards, named)
    count = _shard(shards[0])[1]
    if missing and not allow_partial:
        raise ResultsError(
            f"shard{'s' if len(missing) > 1 else ''} {_indexes(missing)} of {count} "
            f"{'are' if len(missing) > 1 else 'is'} missing: a merge needs every shard "
            f"0..{count - 1} exactly once (--allow-partial judges a subset, as partial)"
        )
    order = sorted(range(len(shards)), key=lambda i: _shard(shards[i])[0])
    ordered = [shards[i] for i in order]
    primary = ordered[0]
    try:
        stats = reduce(merge, (_thaw(shards[i], named[i]) for i in order))
        record = stats.freeze()
    except _DECODE_ERRORS as exc:
        raise ResultsError(f"the shards' statistics cannot be merged: {exc}") from None
    planned = {
        phase.name: sum(p.planned or 0 for r in ordered for p in r.phases if p.name == phase.name)
        for phase in primary.phases
    }
    has_shard_0 = 0 not in missing
    if has_shard_0:
        kept = primary.expectations
    else:
        kept = tuple(Judgement(e, Verdict.NOT_JUDGED) for e in primary.plan.all_expectations)
    judgements = [_rejudge(j, primary, stats, planned, has_shard_0) for j in kept]
    records = {phase.name: phase for phase in record.phases}
    phases = tuple(_merged_phase(phase, ordered, planned, records) for phase in primary.phases)
    aborts = [r.abort for r in ordered if r.abort is not None]
    errors = [r.error for r in ordered if r.error]
    verdict, code = run_verdict(
        judgements, aborted=bool(aborts), infrastructure=bool(errors), partial=bool(missing)
    )
    notes = primary.notes
    if missing:
        notes = (_partial_note(missing, count, primary, planned), *notes)
    return dataclasses.replace(
        primary,
        run_id="+".join(r.run_id for r in ordered),
        verdict=verdict,
        exit_code=code,
        error="; ".join(errors) or None,
        abort=aborts[0] if aborts else None,
        merged_from=tuple(
            MergedShard(r.run_id, _shard(r)[0], r.verdict, r.start_late_s) for r in ordered
        ),
        start_late_s=None,
        start_skew=start_skew(ordered),
        shard=None,
        started_at=min(r.started_at for r in ordered),
        ended_at=max(r.ended_at for r in ordered),
        phases=phases,
        expectations=tuple(judgements),
        totals=load_result(record.total),
        seconds=record.seconds,
        stats=record,
        notes=notes,
    )


def start_skew(shards: Sequence[RunResults]) -> StartSkew | None:
    """How far apart the shards started their phases, over those that had a common start
    (None when none had one)."""
    starts = [(r.start_late_s, _shard(r)[0]) for r in shards if r.start_late_s is not None]
    if not starts:
        return None
    latest, shard = max(starts)
    earliest = min(late for late, _ in starts)
    return StartSkew(skew_s=round(latest - earliest, 3), latest_shard=shard, latest_late_s=latest)


def _partial_note(
    missing: Sequence[int], count: int, primary: RunResults, planned: dict[str, int]
) -> str:
    """What a partial merge judged, and against what."""
    present = count - len(missing)
    phases = primary.plan.phases
    whole = sum(p.scheduled_total or 0 for p in phases)
    share = sum(planned[p.name] for p in primary.phases if p.planned is not None)
    closed = " in open-model phases" if any(p.scheduled_total is None for p in phases) else ""
    against = (
        f"`achieved` against their planned share ({share:,} of the plan's {whole:,} "
        f"requests{closed})"
    )
    replicas = (
        "; replica expectations and the before/after hypotheses are not judged (shard 0, "
        "which judges them, is missing)"
        if 0 in missing
        else ""
    )
    return (
        f"partial merge: {present} of {count} shards (missing: {_indexes(missing)}); the load "
        f"is judged over the shards present, {against}{replicas}"
    )


def _rejudge(
    j: Judgement,
    primary: RunResults,
    stats: RunStats,
    planned: dict[str, int],
    has_shard_0: bool,
) -> Judgement:
    """A load expectation judged again on the merged statistics; any other kept as it is
    (replica windows and hypotheses are shard 0's), or not judged without shard 0."""
    e = j.expectation
    if not e.kind.over_load:
        if has_shard_0:
            return j
        return Judgement(e, Verdict.NOT_JUDGED, detail="not judged: shard 0 is missing")
    if e.scope == "scenario":
        scheduled = sum(
            _planned_for(e, p, primary, stats, planned) or _scheduled(e, stats, p.name)
            for p in primary.phases
        )
        return rounded_judgement(judge_load(e, stats.total(), scheduled=scheduled or None))
    phase_stats = stats.phases.get(e.scope)
    if phase_stats is None:
        return Judgement(e, Verdict.NOT_JUDGED, detail="not run")
    phase = next((p for p in primary.phases if p.name == e.scope), None)
    wanted = None if phase is None else _planned_for(e, phase, primary, stats, planned)
    return rounded_judgement(judge_load(e, phase_stats, scheduled=wanted or None))


def _planned_for(
    e: ExpectationPlan,
    phase: PhaseResult,
    primary: RunResults,
    stats: RunStats,
    planned: dict[str, int],
) -> int | None:
    """What the plan scheduled in `phase` for `e` over the shards merged: the phase's, or (for
    `of NAME`) its template's."""
    if phase.planned is None:
        return None
    whole = planned[phase.name]
    if e.request is None:
        return whole
    phase_stats = stats.phases.get(phase.name) or PhaseStats(phase.name)  # none if not run
    plan = next((p for p in primary.plan.phases if p.name == phase.name), None)
    return planned_of(
        e.request,
        phase_stats,
        planned=whole,
        plan_counts=None if plan is None else plan.scheduled,
        plan_total=None if plan is None else plan.scheduled_total,
    )


def _scheduled(e: ExpectationPlan, stats: RunStats, phase: str) -> int:
    found = stats.phases.get(phase)
    return scope_of(e, found).scheduled if found is not None else 0


def _merged_phase(
    phase: PhaseResult,
    shards: Sequence[RunResults],
    planned: dict[str, int],
    records: dict[str, PhaseRecord],
) -> PhaseResult:
    same = [p for r in shards for p in r.phases if p.name == phase.name]
    targets = [p.target_rate for p in same if p.target_rate is not None]
    achieved = [p.achieved_rate for p in same if p.achieved_rate is not None]
    record = records.get(phase.name)
    return dataclasses.replace(
        phase,
        ran=any(p.ran for p in same),
        planned=planned[phase.name] if phase.planned is not None else None,
        target_rate=round(sum(targets), 3) if targets else None,
        achieved_rate=round(sum(achieved), 3) if achieved else None,
        load=load_result(record) if record is not None else phase.load,
    )

"""Merging shard results into one run: counts add up, histograms merge, verdicts are re-judged.

Shards of one scenario (`run --shard I/N`) each write a results document. `merge_results`
refuses documents of different scenarios, sources or params; adds their counts; merges their
HDR histograms (so merged percentiles are exact to histogram precision); sums the per-second
series; and judges every load expectation again on the merged data, with the plan every shard
embedded. Replica expectations, kills and cleanup belong to shard 0, whose verdicts are kept as
they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import reduce

from nimbus_scenarios.engine.records import PhaseRecord
from nimbus_scenarios.engine.stats import RunStats, merge
from nimbus_scenarios.errors import ResultsError
from nimbus_scenarios.judge.expectations import judge_load
from nimbus_scenarios.judge.verdict import run_verdict
from nimbus_scenarios.results.build import load_result, rounded_judgement
from nimbus_scenarios.results.model import (
    Judgement,
    MergedShard,
    PhaseResult,
    RunResults,
    Verdict,
)

__all__ = ["merge_results"]


def _shard(results: RunResults) -> tuple[int, int]:
    shard = results.shard
    return (0, 1) if shard is None else (shard.index, shard.count)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_compatible(shards: Sequence[RunResults]) -> None:
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
    shards_seen = [_shard(r) for r in shards]
    counts = {count for _, count in shards_seen}
    if len(counts) > 1:
        raise ResultsError(f"cannot merge results of different shard counts: {sorted(counts)}")
    indexes = [index for index, _ in shards_seen]
    if len(set(indexes)) != len(indexes):
        raise ResultsError(f"the same shard appears twice: {sorted(indexes)}")


def merge_results(shards: Sequence[RunResults]) -> RunResults:
    """One results document for the whole run from its shards' documents."""
    if not shards:
        raise ResultsError("nothing to merge")
    _check_compatible(shards)
    ordered = sorted(shards, key=lambda r: _shard(r)[0])
    primary = ordered[0]
    stats = reduce(merge, (RunStats.thaw(r.stats) for r in ordered))
    record = stats.freeze()
    planned = {
        phase.name: sum(p.planned or 0 for r in ordered for p in r.phases if p.name == phase.name)
        for phase in primary.phases
    }
    judgements = [_rejudge(j, primary, stats, planned) for j in primary.expectations]
    records = {phase.name: phase for phase in record.phases}
    phases = tuple(_merged_phase(phase, ordered, planned, records) for phase in primary.phases)
    aborts = [r.abort for r in ordered if r.abort is not None]
    errors = [r.error for r in ordered if r.error]
    verdict, code = run_verdict(judgements, aborted=bool(aborts), infrastructure=bool(errors))
    return dataclasses.replace(
        primary,
        run_id="+".join(r.run_id for r in ordered),
        verdict=verdict,
        exit_code=code,
        error="; ".join(errors) or None,
        abort=aborts[0] if aborts else None,
        merged_from=tuple(MergedShard(r.run_id, _shard(r)[0], r.verdict) for r in ordered),
        shard=None,
        started_at=min(r.started_at for r in ordered),
        ended_at=max(r.ended_at for r in ordered),
        phases=phases,
        expectations=tuple(judgements),
        totals=load_result(record.total),
        seconds=record.seconds,
        stats=record,
    )


def _rejudge(
    j: Judgement, primary: RunResults, stats: RunStats, planned: dict[str, int]
) -> Judgement:
    """A load expectation judged again on the merged statistics; any other kept as it is
    (replica windows and hypotheses are shard 0's)."""
    e = j.expectation
    if not e.kind.over_load:
        return j
    if e.scope == "scenario":
        scheduled = sum(
            planned[p.name] if p.planned is not None else _scheduled(stats, p.name)
            for p in primary.phases
        )
        return rounded_judgement(judge_load(e, stats.total(), scheduled=scheduled or None))
    phase_stats = stats.phases.get(e.scope)
    if phase_stats is None:
        return Judgement(e, Verdict.NOT_JUDGED, detail="not run")
    return rounded_judgement(judge_load(e, phase_stats, scheduled=planned.get(e.scope) or None))


def _scheduled(stats: RunStats, phase: str) -> int:
    found = stats.phases.get(phase)
    return found.scheduled if found is not None else 0


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

"""Merging shard results into one run: counts add up, histograms merge, verdicts are re-judged.

Shards of one scenario (`run --shard I/N`) each write a results document. `merge_documents`
refuses documents of different scenarios, sources or params; adds their counts; merges their
HDR histograms (so merged percentiles are exact to histogram precision); sums the per-second
series; and judges every load expectation again on the merged data. Replica expectations, kills
and cleanup belong to shard 0, whose verdicts are kept as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from typing import Any

from nimbus_scenarios.engine.records import (
    Counts,
    Histograms,
    LatencySummary,
    PhaseRecord,
    RequestRecord,
    SecondLatencySummary,
    SecondRecord,
    StatsRecord,
)
from nimbus_scenarios.engine.stats import RunStats, merge
from nimbus_scenarios.errors import ResultsError as NimbusResultsError
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.judge.expectations import Judgement, Verdict, judge_load
from nimbus_scenarios.language.errors import ScenarioError, Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import ExpectationPlan, Plan
from nimbus_scenarios.results import SCHEMA_VERSION, ResultsError
from nimbus_scenarios.secrets import MASK as SECRET

__all__ = ["merge_documents"]


def _shard(document: dict[str, Any]) -> tuple[int, int]:
    shard = document.get("shard") or {}
    return int(shard.get("index", 0)), int(shard.get("count", 1))


def _check_compatible(documents: Sequence[dict[str, Any]]) -> None:
    first = documents[0]
    for other in documents[1:]:
        for key, what in (
            ("scenario", "scenarios"),
            ("scenario_hash", "scenario sources"),
            ("params", "params"),
        ):
            if other.get(key) != first.get(key):
                mine, theirs = _short(first.get(key)), _short(other.get(key))
                raise ResultsError(
                    f"cannot merge results of different {what}: run {first.get('run_id')} has "
                    f"{mine}, run {other.get('run_id')} has {theirs}"
                )
    shards = [_shard(d) for d in documents]
    counts = {count for _, count in shards}
    if len(counts) > 1:
        raise ResultsError(f"cannot merge results of different shard counts: {sorted(counts)}")
    indexes = [index for index, _ in shards]
    if len(set(indexes)) != len(indexes):
        raise ResultsError(f"the same shard appears twice: {sorted(indexes)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _scheduled(stats: RunStats, phase: str) -> int:
    found = stats.phases.get(phase)
    return found.scheduled if found is not None else 0


def _plan(document: dict[str, Any]) -> Plan:
    overrides = {k: v for k, v in (document.get("params") or {}).items() if v != SECRET}
    try:
        return compile_source(
            Source(f"{document['scenario']} (from results)", document["scenario_source"]),
            overrides,
            max_rate=float("inf"),
        )
    except (ScenarioError, KeyError) as exc:
        raise ResultsError(f"the results' scenario source cannot be compiled: {exc}") from None


def merge_documents(documents: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One results document for the whole run from its shards' documents."""
    from nimbus_scenarios.runner import counts_doc, judgement_doc, stats_doc

    if not documents:
        raise ResultsError("nothing to merge")
    _check_compatible(documents)
    ordered = sorted(documents, key=lambda d: _shard(d)[0])
    primary = ordered[0]
    plan = _plan(primary)
    try:
        stats = reduce(merge, (RunStats.thaw(_stats_record(d["stats"])) for d in ordered))
    except NimbusResultsError as exc:  # the engine's; the CLI still catches results' own
        raise ResultsError(str(exc)) from None
    by_text: dict[tuple[str, str], ExpectationPlan] = {}
    for phase in plan.phases:
        for e in phase.expectations:
            by_text[(e.scope, e.text)] = e
    for e in plan.expectations:
        by_text[(e.scope, e.text)] = e
    planned = {
        phase["name"]: sum(
            (p.get("planned") or 0)
            for d in ordered
            for p in d["phases"]
            if p["name"] == phase["name"]
        )
        for phase in primary["phases"]
    }
    judgements: list[dict[str, Any]] = []
    stats_section = stats_doc(stats.freeze())
    total = stats.total()
    for item in primary["expectations"]:
        found = by_text.get((item["scope"], item["text"]))
        if found is None or found.kind not in {"latency", "errors", "achieved"}:
            judgements.append(item)  # replica windows and hypotheses: shard 0's verdict
            continue
        e = found
        if e.scope == "scenario":
            scheduled: int | None = sum(
                planned[p["name"]] if p.get("planned") is not None else _scheduled(stats, p["name"])
                for p in primary["phases"]
            )
            judged = judge_load(e, total, scheduled=scheduled or None)
        else:
            phase_stats = stats.phases.get(e.scope)
            if phase_stats is None:
                judgements.append(judgement_doc(Judgement(e, Verdict.NOT_JUDGED, detail="not run")))
                continue
            judged = judge_load(e, phase_stats, scheduled=planned.get(e.scope) or None)
        judgements.append(judgement_doc(judged))
    phases = []
    for phase in primary["phases"]:
        name = phase["name"]
        merged = dict(phase)
        shard_phases = [p for d in ordered for p in d["phases"] if p["name"] == name]
        merged["ran"] = any(p.get("ran") for p in shard_phases)
        merged["planned"] = planned[name] if phase.get("planned") is not None else None
        for key in ("target_rate", "achieved_rate"):
            values = [p.get(key) for p in shard_phases if p.get(key) is not None]
            merged[key] = round(sum(values), 3) if values else None
        if name in stats.phases:
            merged.update(counts_doc(stats.phases[name]))
        phases.append(merged)
    aborts = [d["abort"] for d in ordered if d.get("abort")]
    errors = [d["error"] for d in ordered if d.get("error")]
    verdicts = [Verdict(j["verdict"]) for j in judgements]
    code: int
    if aborts:
        code = ExitCode.ABORTED
    elif Verdict.FAILED in verdicts:
        code = ExitCode.FAILED
    elif errors or Verdict.NOT_JUDGED in verdicts:
        code = ExitCode.INFRASTRUCTURE
    else:
        code = ExitCode.OK
    verdict = {0: "passed", 1: "failed", 3: "aborted"}.get(code, "error")
    document = dict(primary)
    document.update(
        {
            "schema_version": SCHEMA_VERSION,
            "run_id": "+".join(str(d["run_id"]) for d in ordered),
            "verdict": verdict,
            "exit_code": code,
            "error": "; ".join(errors) or None,
            "abort": aborts[0] if aborts else None,
            "merged_from": [
                {"run_id": d["run_id"], "shard": _shard(d)[0], "verdict": d["verdict"]}
                for d in ordered
            ],
            "shard": None,
            "started_at": min(d["started_at"] for d in ordered),
            "ended_at": max(d["ended_at"] for d in ordered),
            "phases": phases,
            "expectations": judgements,
            "totals": counts_doc(total),
            "seconds": stats_section["seconds"],
            "stats": stats_section,
        }
    )
    return document


# The engine's records read back from the results' JSON `stats` section (`runner.stats_doc`),
# until the typed results replace it.


def _stats_record(data: dict[str, Any]) -> StatsRecord:
    try:
        return StatsRecord(
            format=data["format"],
            latency_unit=data["latency_unit"],
            phases=tuple(_phase_record(p) for p in data["phases"]),
            total=_phase_record(data["total"]),
            seconds=tuple(_second_record(s) for s in data["seconds"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultsError(f"the results' stats cannot be read: {exc!r}") from None


def _phase_record(data: dict[str, Any]) -> PhaseRecord:
    return PhaseRecord(
        name=data["name"],
        counts=Counts(**data["counts"]),
        errors_by_kind=dict(data["errors_by_kind"]),
        status_counts={int(k): int(n) for k, n in data["status_counts"].items()},
        latency_ms=LatencySummary(**data["latency_ms"]),
        service_time_ms=LatencySummary(**data["service_time_ms"]),
        histograms=Histograms(**data["histograms"]),
        requests=tuple(
            RequestRecord(
                name=r["name"],
                counts=Counts(**r["counts"]),
                errors_by_kind=dict(r["errors_by_kind"]),
                status_counts={int(k): int(n) for k, n in r["status_counts"].items()},
            )
            for r in data["requests"]
        ),
    )


def _second_record(data: dict[str, Any]) -> SecondRecord:
    latency = data["latency_ms"]
    return SecondRecord(
        second=data["second"],
        scheduled=data["scheduled"],
        sent=data["sent"],
        dropped=data["dropped"],
        succeeded=data["succeeded"],
        failed=data["failed"],
        latency_ms=None if latency is None else SecondLatencySummary(**latency),
        histogram=data["histogram"],
    )

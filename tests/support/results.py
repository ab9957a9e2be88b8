"""Results documents for tests: plans from scenario text, frozen statistics by hand, and a
`RunResults` built the way a run builds one (`results.build`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from nimbus_scenarios.engine.records import (
    Counts,
    Histograms,
    LatencySummary,
    PhaseRecord,
    RequestRecord,
    SecondRecord,
    StatsRecord,
)
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.judge.verdict import run_verdict
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.results.build import RunFacts, build_results
from nimbus_scenarios.results.model import Judgement, RunResults, RunVerdict, ShardInfo, Stage

EMPTY_HISTOGRAM = "HISTFAAAABx4nJNpmSzMgADMUJoRRFybvITB/gNEAABQ2gSH"
"""hdrhistogram's encoding of an empty 1 us .. 1 h, 3-digit histogram."""

UNSHARDED = ShardInfo(0, 1)

SCENARIO = """\
scenario "factory" {
  watch deployment "consumer"
  request work = GET "/work"
  request health = GET "/health" { header "Authorization" = "Bearer s3cret" }
  phase "warm" 10s {
    rate 2/s
    send 75% work, 25% health
    expect replicas >= 1 within 5s
    expect p95 < 1s
  }
  phase "ramp" 20s {
    ramp 2/s -> 6/s
    send work
    expect errors < 5%
  }
  expect achieved >= 90%
}
"""


def plan_of(text: str = SCENARIO) -> Plan:
    """The compiled plan of scenario `text`."""
    return compile_source(Source("factory.scn", text), watch_given=True)


def latency(p50: float = 10.0) -> LatencySummary:
    """A latency summary in ms rising from `p50`."""
    return LatencySummary(p50, p50 * 1.5, p50 * 2, p50 * 3, p50 * 4, p50 * 1.2)


def phase_record(
    name: str,
    counts: Counts,
    *,
    requests: Sequence[RequestRecord] = (),
    statuses: Mapping[int, int] | None = None,
    errors: Mapping[str, int] | None = None,
) -> PhaseRecord:
    """A phase's record with the given counts (latency made up, histograms empty)."""
    return PhaseRecord(
        name=name,
        counts=counts,
        errors_by_kind=dict(errors or {}),
        status_counts=dict(statuses if statuses is not None else {200: counts.succeeded}),
        latency_ms=latency(),
        service_time_ms=latency(8.0),
        histograms=Histograms(EMPTY_HISTOGRAM, EMPTY_HISTOGRAM),
        requests=tuple(requests),
    )


def stats_of(phases: Sequence[PhaseRecord]) -> StatsRecord:
    """A run's statistics from its phases' records (the total adds the counts up)."""
    total = Counts()
    for phase in phases:
        total = total + phase.counts
    seconds = tuple(SecondRecord(s, 2, 2, 0, 2, 0, None, None) for s in range(3))
    return StatsRecord(phases=tuple(phases), total=phase_record("total", total), seconds=seconds)


def results_of(
    plan: Plan | None = None,
    *,
    stats: StatsRecord | None = None,
    judgements: Sequence[Judgement] = (),
    phases_run: Mapping[str, tuple[float, float]] | None = None,
    shard: ShardInfo = UNSHARDED,
    scenario_text: str = SCENARIO,
    **facts: object,
) -> RunResults:
    """A results document as a run would build it; the verdict follows the judgements."""
    plan = plan or plan_of(scenario_text)
    if stats is None:
        stats = stats_of(
            [
                phase_record(
                    "warm",
                    Counts(20, 20, 0, 19, 1, 0),
                    requests=[
                        RequestRecord("work", Counts(15, 15, 0, 15, 0, 0), {}, {200: 15}),
                        RequestRecord("health", Counts(5, 5, 0, 4, 1, 0), {"reset": 1}, {200: 4}),
                    ],
                    errors={"reset": 1},
                    statuses={200: 19},
                ),
                phase_record("ramp", Counts(80, 80, 0, 80, 0, 0)),
            ]
        )
    ran = phases_run if phases_run is not None else {"warm": (0.0, 10.0), "ramp": (10.0, 30.0)}
    verdict, code = run_verdict(judgements, aborted=False, infrastructure=False)
    started = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
    run_facts = RunFacts(
        run_id=str(facts.pop("run_id", "run0")),
        scenario_text=scenario_text,
        target="http://127.0.0.1:8000",
        shard=shard,
        started_at=started,
        ended_at=started + dt.timedelta(seconds=31),
        stage_reached=Stage.CLEANUP,
        phases_run=ran,
        **facts,  # type: ignore[arg-type]
    )
    return build_results(plan, run_facts, stats, judgements, verdict, code)


def verdict_of(results: RunResults) -> tuple[RunVerdict, ExitCode]:
    """The results' verdict and exit code."""
    return results.verdict, results.exit_code

"""Results documents for tests, built the way a run builds them.

A scenario's text is compiled with `pipeline.compile_source`; what a run would have recorded is
written out as `engine.records`; and `results.build.build_results` makes the `RunResults`, so a
document carries the embedded plan, rounding and shard shares exactly as a real run's does.

`make_results(text, ...)` is the factory. What was recorded is either played from the plan,
second by second (every arrival sent, `failing(s)` of them failed as 404s of the `missing` or
`bad` template, the given latency), or written by hand with `phase_record` and `stats_of`
(`stats=`). Expectations are judged as `outcomes` says by their text (the others pass) or by
the `judgements` given; the verdict and exit code follow from them, from `abort` and from
`error`, unless given.

Documents ready made:

- `results_of(...)`: `SCENARIO` (two phases, a credential header) with hand-written records,
  `recorded_stats()`: 100 requests, one of them reset; nothing judged unless told;
- `full_results()`: a 60 s, four-phase run with replica samples, a pod kill, replica windows, two
  failed latency expectations, a trace id and a Grafana link (`data/full.scn`);
- `aborted_results()`: an abort guard fired 3 s in; a phase is named with markup
  (`data/aborted.scn`), and so is the scenario in the document (`ABORTED_NAME`);
- `infra_results()`: the target did not answer at pre-flight, nothing ran (`data/infra.scn`);
- `hostile_results()`: the full run with markup, quotes and control characters in every string a
  person wrote;
- `per_request_results()`: `SCENARIO` recorded through the engine's `RunStats` (so with each
  template's per-second series): `work` slow and failing with 500s and timeouts, `health` fast;
- `scaling_results()`: the full run with a `scaling` section (`full_scaling()`): two metrics,
  four pods (one running before the run, one killed, one restarted after an OOMKill), two scale
  events with every step; `blind_scaling()` is the same run seen without permission to watch
  pods and with a scale event whose metric, pods and readiness were not seen.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.judge.verdict import run_verdict
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.results.build import RunFacts, build_results
from nimbus_scenarios.results.model import (
    Abort,
    CleanupResult,
    Judgement,
    KillResult,
    PhaseResult,
    ReplicaSourceResult,
    RunResults,
    RunVerdict,
    SampleResult,
    ShardInfo,
    Stage,
    Verdict,
)
from nimbus_scenarios.scaling import (
    AutoscalerSample,
    Condition,
    MetricStatus,
    PodRecord,
    ScaleEvent,
    ScalingRecord,
    TargetKind,
)

DATA = Path(__file__).parent / "data"
"""Scenario sources: `full.scn`, `aborted.scn`, `infra.scn`."""

EMPTY_HISTOGRAM = "HISTFAAAABx4nJNpmSzMgADMUJoRRFybvITB/gNEAABQ2gSH"
"""hdrhistogram's encoding of an empty 1 us .. 1 h, 3-digit histogram."""

HOSTILE = (
    "<script>window.__pwned=1;alert('x')</script>"
    '<img src=x onerror="window.__pwned=2">&amp;"\'</textarea>'
)
STARTED = dt.datetime(2026, 11, 26, 9, 44, 43, 932088, tzinfo=dt.UTC)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
GRAFANA = "http://grafana.example.test:3000"
POD = "consumer-7d9f8b6c5-x2k4q"

FULL_SOURCE = (DATA / "full.scn").read_text(encoding="utf-8")
ABORTED_SOURCE = (DATA / "aborted.scn").read_text(encoding="utf-8")
INFRA_SOURCE = (DATA / "infra.scn").read_text(encoding="utf-8")
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
"""The default scenario: two phases, a 75/25 mix, a literal credential header, a replica window."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the judge said about one expectation (looked up by its text)."""

    verdict: Verdict
    observed: float | None = None
    met_at_s: float | None = None
    detail: str = ""


Latency = Callable[[int], tuple[float, float, float] | None]
"""A second's latency percentiles (p50, p95, p99) in ms, or None when nothing completed."""


def plan_of(text: str = SCENARIO, overrides: Mapping[str, str] | None = None) -> Plan:
    """The plan of a scenario's text, as `run` compiles it (with a replica source given)."""
    return compile_source(Source("<test>", text), overrides, watch_given=True)


def _arrivals_until(plan: Plan, t: float) -> float:
    """The plan's rate integrated from 0 to `t` (segments are linear; bursts count whole)."""
    total = 0.0
    for phase in plan.phases:
        if phase.burst_every_s > 0:
            if t > phase.start_s:
                elapsed = min(t, phase.end_s) - phase.start_s
                total += phase.burst_size * (int(elapsed // phase.burst_every_s) + 1)
            continue
        for s in phase.segments:
            if t <= s.start_s:
                continue
            stop = min(t, s.end_s)
            rate_at_stop = phase.rate_at(stop) if stop < s.end_s else s.rate_end
            total += (stop - s.start_s) * (s.rate_start + rate_at_stop) / 2
    return total


def _summary(values: Sequence[float]) -> LatencySummary:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return LatencySummary(
        p50=at(0.5),
        p90=at(0.9),
        p95=at(0.95),
        p99=at(0.99),
        max=ordered[-1],
        mean=sum(ordered) / len(ordered),
    )


def play(
    plan: Plan,
    until: float,
    *,
    failing: Callable[[int], int] = lambda _second: 0,
    latency: Latency = lambda _second: (50.0, 90.0, 120.0),
) -> tuple[SecondRecord, ...]:
    """Per-second records of the plan played until `until`: every arrival sent, `failing(s)`
    of them failed, the given latency."""
    seconds = []
    for second in range(int(until + 0.999)):
        end = min(second + 1.0, until)
        scheduled = round(_arrivals_until(plan, end)) - round(_arrivals_until(plan, second))
        if scheduled <= 0:
            continue
        failed = min(failing(second), scheduled)
        percentiles = latency(second)
        seconds.append(
            SecondRecord(
                second=second,
                scheduled=scheduled,
                sent=scheduled,
                dropped=0,
                succeeded=scheduled - failed,
                failed=failed,
                latency_ms=(
                    None
                    if percentiles is None
                    else SecondLatencySummary(scheduled, *percentiles, max=percentiles[2])
                ),
                histogram=None,
            )
        )
    return tuple(seconds)


def _phase_record(
    name: str, mix: Sequence[tuple[str, float]], seconds: Sequence[SecondRecord]
) -> PhaseRecord:
    sent = sum(s.sent for s in seconds)
    failed = sum(s.failed for s in seconds)
    counts = Counts(sent, sent, 0, sum(s.succeeded for s in seconds), failed, 0)
    values = [v for s in seconds if s.latency_ms for v in (s.latency_ms.p50, s.latency_ms.p95)]
    latency = _summary(values) if values else LatencySummary(0, 0, 0, 0, 0, 0)
    # Failures are 404s of the `missing` (or `bad`) template when the mix has one.
    failing = next((n for n, _ in mix if n in {"missing", "bad"}), mix[0][0] if mix else "")
    shares = [round(sent * share / 100) for _, share in mix]
    if shares:
        shares[-1] = sent - sum(shares[:-1])
        names = [n for n, _ in mix]
        lacking = failed - shares[names.index(failing)]
        if lacking > 0:  # the failing template sent at least the failures
            shares[names.index(failing)] += lacking
            shares[shares.index(max(shares))] -= lacking
    requests = []
    for (template, _), n in zip(mix, shares, strict=True):
        fails = failed if template == failing else 0
        statuses = {code: k for code, k in ((200, n - fails), (404, fails)) if k}
        requests.append(RequestRecord(template, Counts(n, n, 0, n - fails, fails, 0), {}, statuses))
    statuses = {code: k for code, k in ((200, counts.succeeded), (404, failed)) if k}
    return PhaseRecord(
        name=name,
        counts=counts,
        errors_by_kind={},
        status_counts=statuses,
        latency_ms=latency,
        service_time_ms=latency,
        histograms=Histograms(EMPTY_HISTOGRAM, EMPTY_HISTOGRAM),
        requests=tuple(requests),
    )


def _stats(
    plan: Plan, seconds: Sequence[SecondRecord], ran: Mapping[str, tuple[float, float]]
) -> StatsRecord:
    phases = []
    totals: dict[str, Counts] = {}
    for phase in plan.phases:
        if phase.name not in ran:
            continue
        inside = [s for s in seconds if phase.start_s <= s.second < phase.end_s]
        record = _phase_record(phase.name, phase.mix, inside)
        phases.append(record)
        for r in record.requests:
            totals[r.name] = totals.get(r.name, Counts()) + r.counts
    total = _phase_record("total", (), seconds)
    requests = tuple(
        RequestRecord(
            name,
            counts,
            {},
            {code: k for code, k in ((200, counts.succeeded), (404, counts.failed)) if k},
        )
        for name, counts in sorted(totals.items())
    )
    total = dataclasses.replace(total, requests=requests)
    return StatsRecord(phases=tuple(phases), total=total, seconds=tuple(seconds))


def make_results(
    text: str = SCENARIO,
    *,
    plan: Plan | None = None,
    overrides: Mapping[str, str] | None = None,
    until: float | None = None,
    stats: StatsRecord | None = None,
    seconds: Sequence[SecondRecord] | None = None,
    failing: Callable[[int], int] = lambda _second: 0,
    latency: Latency = lambda _second: (50.0, 90.0, 120.0),
    outcomes: Mapping[str, Outcome] | None = None,
    judgements: Sequence[Judgement] | None = None,
    shard: ShardInfo = UNSHARDED,
    verdict: RunVerdict | None = None,
    exit_code: ExitCode | None = None,
    started_at: dt.datetime = STARTED,
    ended_at: dt.datetime | None = None,
    **facts: object,
) -> RunResults:
    """A results document for scenario `text` (compiled, unless its `plan` is given) played
    until `until` (the plan's end by default), ending 2.5 s later unless `ended_at` says.

    The records are `stats` when given, else `seconds` (or the plan played, see `play`) summed
    up per phase. Expectations are judged by `judgements`, else as `outcomes` says by their text
    (the others pass). The verdict and exit code are those the judge gives (aborted with an
    `abort`, an error with an `error`) unless both are given. `facts` are more `RunFacts`
    fields (kills, abort, replica_source, run_id, target, phases_run, ...).
    """
    assert outcomes is None or judgements is None, "give outcomes or judgements, not both"
    plan = plan or plan_of(text, overrides)
    stop = plan.phases_end_s if until is None else until
    ran = {p.name: (p.start_s, min(p.end_s, stop)) for p in plan.phases if p.start_s < stop}
    if judgements is None:
        given = outcomes or {}
        judgements = [
            Judgement(e, o.verdict, o.observed, o.met_at_s, o.detail)
            for e in plan.all_expectations
            for o in (given.get(e.text, Outcome(Verdict.PASSED)),)
        ]
    if verdict is None or exit_code is None:
        aborted, infrastructure = facts.get("abort") is not None, facts.get("error") is not None
        verdict, exit_code = run_verdict(judgements, aborted=aborted, infrastructure=infrastructure)
    run_facts = RunFacts(
        run_id=str(facts.pop("run_id", "4d2c9a7b1e30")),
        scenario_text=text,
        target=str(facts.pop("target", "http://127.0.0.1:8000")),
        shard=shard,
        started_at=started_at,
        ended_at=ended_at or started_at + dt.timedelta(seconds=stop + 2.5),
        stage_reached=Stage.CLEANUP,
        phases_run=facts.pop("phases_run", ran),  # type: ignore[arg-type]
        **facts,  # type: ignore[arg-type]
    )
    if stats is None:
        played = play(plan, stop, failing=failing, latency=latency) if seconds is None else seconds
        stats = _stats(plan, played, run_facts.phases_run)
    return build_results(plan, run_facts, stats, judgements, verdict, exit_code)


# ---------------------------------------------------------------- records written by hand
def latency_summary(p50: float = 10.0) -> LatencySummary:
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
        latency_ms=latency_summary(),
        service_time_ms=latency_summary(8.0),
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


def recorded_stats() -> StatsRecord:
    """`SCENARIO`'s records: warm sent 15 `work` and 5 `health`, one of which was reset; ramp
    sent its 80 and all succeeded."""
    return stats_of(
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


RECORDED_START = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def results_of(plan: Plan | None = None, **changes: object) -> RunResults:
    """`SCENARIO`'s document (or `plan`'s, compiled from `scenario_text`) from
    `recorded_stats()`: run `run0`, 31 s from `RECORDED_START`, nothing judged unless
    `judgements` are given; other `changes` go to `make_results`."""
    text = str(changes.pop("scenario_text", SCENARIO))
    defaults: dict[str, object] = {
        "stats": recorded_stats(),
        "judgements": (),
        "run_id": "run0",
        "started_at": RECORDED_START,
        "ended_at": RECORDED_START + dt.timedelta(seconds=31),
    }
    return make_results(text, plan=plan, **{**defaults, **changes})  # type: ignore[arg-type]


# ---------------------------------------------------------------- documents ready made
def _full_latency(second: int) -> tuple[float, float, float] | None:
    if second < 10:
        return (66.0 + second, 123.0, 130.0)
    if second < 30:
        p50 = 100.0 + 25 * (second - 10)
        return (p50, p50 * 1.8, p50 * 2.2)
    return (2800.0, 3440.0, 5690.0)


FULL_SAMPLES = (
    (-4.2, 1, 1),
    (14.2, 1, 2),
    (19.8, 2, 2),
    (31.5, 2, 3),
    (36.9, 3, 3),
    (38.1, 2, 3),
    (43.6, 3, 3),
    (52.0, 3, 1),
    (55.4, 1, 1),
)
FULL_OUTCOMES = {
    "expect health succeeds within 10s": Outcome(
        Verdict.PASSED, 1.0, 0.0, "succeeded after 1 attempt"
    ),
    "expect replicas == 1 within 10s": Outcome(Verdict.PASSED, 1.0, 0.004, "1 replicas"),
    "expect replicas >= 2 within 25s": Outcome(Verdict.PASSED, 2.0, 19.8, "2 at +10s"),
    "expect ready replicas >= 2 throughout": Outcome(Verdict.PASSED, 2.0, 30.0, "held throughout"),
    "expect replicas <= 1 within 20s": Outcome(Verdict.PASSED, 1.0, 55.4, "1 at +10s"),
    "expect p95 < 2s": Outcome(Verdict.FAILED, 3.440639, None, "3.441s"),
    "expect p99 < 1500ms": Outcome(Verdict.FAILED, 5.689343, None, "5.689s"),
    "expect errors < 10%": Outcome(Verdict.PASSED, 4.276316, None, "13/304 failed"),
    "expect achieved >= 95%": Outcome(Verdict.PASSED, 100.0, None, "304/304 sent"),
    "expect health succeeds": Outcome(Verdict.PASSED, 1.0, 0.003, "succeeded after 1 attempt"),
}
_FULL_FAILURES = {12, 15, 18, 21, 24, 27, 29, 31, 33, 35, 37, 39, 41}


def replica_source(
    samples: Sequence[tuple[float, int, int]] = FULL_SAMPLES,
    lost_at_s: float | None = None,
    description: str = "deployment nimbusguard/consumer",
) -> ReplicaSourceResult:
    """A replica source that saw `samples` of (offset, ready, desired)."""
    return ReplicaSourceResult(
        description=description,
        autoscaler="keda-hpa-consumer",
        lost_at_s=lost_at_s,
        samples=tuple(SampleResult(t, ready, desired, desired) for t, ready, desired in samples),
    )


def full_results(**changes: object) -> RunResults:
    """The 60 s, four-phase run (peak 8/s, set on the command line) with 304 requests sent;
    `changes` replace its arguments to `make_results`."""
    arguments: dict[str, object] = {
        "overrides": {"peak": "8/s"},
        "until": 60.0,
        "outcomes": FULL_OUTCOMES,
        "failing": lambda s: 1 if s in _FULL_FAILURES else 0,
        "latency": _full_latency,
        "verdict": RunVerdict.FAILED,
        "exit_code": ExitCode.FAILED,
        "trace_id": TRACE_ID,
        "grafana_url": GRAFANA,
        "kills": (KillResult("hold", 38.0, 1, pods=(POD,)),),
        "replica_source": replica_source(),
        "phases_run": {
            "warmup": (0.0, 10.001),
            "ramp": (10.001, 30.0),
            "hold": (30.001, 45.001),
            "cooldown": (45.001, 60.0),
        },
    }
    return make_results(FULL_SOURCE, **{**arguments, **changes})  # type: ignore[arg-type]


# ---------------------------------------------------------------- the scaling section
TRIGGER = "s0-prometheus"
"""The full run's KEDA trigger (requests per second per replica, target 5)."""
POD_BEFORE = "consumer-7d9f8b6c5-a1b2c"
POD_FIRST = "consumer-7d9f8b6c5-d3e4f"
POD_REPLACEMENT = "consumer-7d9f8b6c5-g5h6i"
ABLE = Condition("AbleToScale", "True", "ReadyForNewScale")


def _status(
    at: float, desired: int, current: int, rps: float | None, cpu: float | None
) -> AutoscalerSample:
    return AutoscalerSample(
        at,
        desired,
        current,
        metrics=(
            MetricStatus(TRIGGER, TargetKind.AVERAGE_VALUE, 5.0, rps, active=rps is not None),
            MetricStatus("cpu", TargetKind.UTILIZATION, 80.0, cpu),
        ),
        conditions=(ABLE, Condition("ScalingActive", "True", "ValidMetricFound")),
    )


FULL_AUTOSCALER = (
    _status(-4.2, 1, 1, None, None),
    _status(3.0, 1, 1, 1.2, 20.0),
    _status(12.0, 1, 1, 6.1, 55.0),
    _status(14.2, 2, 1, 6.1, 55.0),
    _status(20.0, 2, 2, 4.4, 48.0),
    _status(30.9, 2, 2, 7.8, 71.0),
    _status(31.5, 3, 2, 7.8, 71.0),
    _status(37.0, 3, 3, 4.9, 50.0),
    _status(47.0, 3, 3, 0.4, 6.0),
    _status(52.0, 1, 3, 0.4, 6.0),
    _status(55.4, 1, 1, 0.0, 4.0),
)
"""The autoscaler as the full run's replica samples have it: desired 1 -> 2 at 14.2 s (the
trigger 6.1 > 5 since 12.0 s), 2 -> 3 at 31.5 s (7.8 > 5 since 30.9 s), 3 -> 1 at 52.0 s."""
FULL_PODS = (
    PodRecord(POD_BEFORE, created=-300.0, scheduled=-299.9, started=-296.0, ready=-294.0),
    PodRecord(POD_FIRST, created=14.4, scheduled=14.5, started=17.0, ready=19.8, deleted=52.3),
    PodRecord(POD, created=31.7, scheduled=31.8, started=33.0, ready=36.9, deleted=38.0),
    PodRecord(
        POD_REPLACEMENT,
        created=38.1,
        scheduled=38.2,
        started=39.5,
        ready=43.6,
        deleted=52.3,
        restarts=1,
        terminations=("OOMKilled",),
    ),
)
"""The full run's pods: one running from before the run, one for each rise of desired replicas
(the second killed at 38 s), and its replacement, which restarted once after an OOMKill."""
FULL_EVENTS = (
    ScaleEvent(
        1,
        2,
        14.2,
        load_change='phase "ramp" started',
        load_change_s=10.001,
        metric=TRIGGER,
        metric_value=6.1,
        metric_target=5.0,
        metric_above_s=12.0,
        pods_created_s=14.4,
        ready_s=19.8,
        pod_startups_s=(5.4,),
    ),
    ScaleEvent(
        2,
        3,
        31.5,
        load_change='phase "hold" started',
        load_change_s=30.001,
        metric=TRIGGER,
        metric_value=7.8,
        metric_target=5.0,
        metric_above_s=30.9,
        pods_created_s=31.7,
        ready_s=36.9,
        pod_startups_s=(5.2,),
    ),
)


def full_scaling(**changes: object) -> ScalingRecord:
    """The full run's `scaling` section (see `FULL_AUTOSCALER`, `FULL_PODS`, `FULL_EVENTS`);
    `changes` replace its fields."""
    record = ScalingRecord(
        autoscaler=FULL_AUTOSCALER, pods=FULL_PODS, pods_watched=True, events=FULL_EVENTS
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


BLIND_NOTE = (
    "pods were not watched (no permission to watch pods in namespace nimbusguard): "
    "the pods' start-up is missing from the breakdown"
)


def blind_scaling() -> ScalingRecord:
    """The full run's section seen without `watch` on pods, and with its second event's metric
    and readiness not seen either (the run ended first)."""
    first = FULL_EVENTS[0]
    return full_scaling(
        pods=(),
        pods_watched=False,
        notes=(BLIND_NOTE,),
        events=(
            dataclasses.replace(first, pods_created_s=None, pod_startups_s=()),
            ScaleEvent(2, 3, 31.5, load_change='phase "hold" started', load_change_s=30.001),
        ),
    )


def scaling_results(**changes: object) -> RunResults:
    """The full run with its `scaling` section (`full_scaling()` unless `scaling` is given)."""
    return full_results(**{"scaling": full_scaling(), **changes})


ABORTED_NAME = "x<script>alert(1)</script>&'"
"""The aborted run's scenario name: markup, which validation refuses in a scenario file but a
document written by another tool or by hand may hold."""


def aborted_results() -> RunResults:
    """A run stopped by its abort guard at +3.0s, in its second phase; the third never ran; its
    scenario is named with markup (`ABORTED_NAME`)."""
    reason = "guard `abort when errors > 50% over 2s` fired: 10/15 failed over 2s"
    plan = plan_of(ABORTED_SOURCE)
    played = play(
        plan, 3.005, failing=lambda s: 10 if s >= 2 else 0, latency=lambda _s: (1.9, 9.2, 9.2)
    )
    # One request in flight at the abort completes in the next second, as on a real run.
    *before, last = played
    last = dataclasses.replace(last, failed=last.failed - 1)
    late = SecondRecord(3, 0, 0, 0, 0, 1, SecondLatencySummary(1, 3.7, 3.7, 3.7, 3.7), None)
    played = (*before, last)
    results = make_results(
        ABORTED_SOURCE,
        until=3.005,
        seconds=(*played, late),
        outcomes={
            "expect p95 < 1s": Outcome(Verdict.PASSED, 0.003653, None, "0.004s"),
            "expect errors < 1%": Outcome(Verdict.FAILED, 50.0, None, "10/20 failed"),
            "expect achieved >= 95%": Outcome(Verdict.PASSED, 100.0, None, "20/20 sent"),
        },
        verdict=RunVerdict.ABORTED,
        exit_code=ExitCode.ABORTED,
        abort=Abort(reason, 3.005, Stage.PHASES),
        phases_run={"ok <i>": (0.0, 2.001), "bad": (2.001, 3.005)},
    )
    return dataclasses.replace(
        results,
        scenario=ABORTED_NAME,
        plan=dataclasses.replace(results.plan, scenario=ABORTED_NAME),
    )


def infra_results() -> RunResults:
    """A run whose target did not answer at pre-flight: nothing ran, nothing was judged."""
    results = make_results(
        INFRA_SOURCE,
        until=0.0,
        verdict=RunVerdict.ERROR,
        exit_code=ExitCode.INFRASTRUCTURE,
        target="http://127.0.0.1:9",
        error="target http://127.0.0.1:9 does not answer (connect error)",
        phases_run={},
    )
    return dataclasses.replace(results, expectations=(), stage_reached=Stage.PREFLIGHT)


def _hostile_phase(phase: PhaseResult) -> PhaseResult:
    return dataclasses.replace(
        phase, name=f"{phase.name} {HOSTILE}", shape=f"{phase.shape} {HOSTILE}"
    )


def _hostile_judgement(judgement: Judgement) -> Judgement:
    e = judgement.expectation
    expectation = dataclasses.replace(e, text=f"{e.text} {HOSTILE}", scope=f"{e.scope}{HOSTILE}")
    return dataclasses.replace(judgement, expectation=expectation, detail=f"detail {HOSTILE} \x07")


def hostile_results() -> RunResults:
    """The full run with markup, quotes and control characters in every string a person
    wrote, an abort at +50s and a `javascript:` Grafana URL."""
    results = full_results()
    source = results.replica_source
    assert source is not None
    return dataclasses.replace(
        results,
        scenario=f"shop {HOSTILE}",
        run_id=f"id{HOSTILE}",
        target=f"http://x/{HOSTILE}",
        trace_id=f"trace{HOSTILE}",
        grafana_url="javascript:window.__pwned=3//",
        error=f"boom {HOSTILE}\x00\x1b[31m",
        params={f"p{HOSTILE}": f"v{HOSTILE}"},
        scenario_source=f"scenario {HOSTILE} {{ }}\n</pre></code>{HOSTILE}",
        notes=(f"note {HOSTILE}",),
        abort=Abort(f"guard {HOSTILE}", 50.0, Stage.PHASES),
        phases=tuple(_hostile_phase(p) for p in results.phases),
        expectations=tuple(_hostile_judgement(j) for j in results.expectations),
        kills=tuple(dataclasses.replace(k, pods=(f"pod-{HOSTILE}",)) for k in results.kills),
        cleanup=(CleanupResult(f"req {HOSTILE}", error=f"failed {HOSTILE}"),),
        replica_source=dataclasses.replace(source, description=f"deployment {HOSTILE}"),
        scaling=_hostile_scaling(),
    )


def _hostile_scaling() -> ScalingRecord:
    """The full run's section with markup in every string the cluster or a person wrote."""
    record = full_scaling()
    samples = tuple(
        dataclasses.replace(
            sample,
            metrics=tuple(
                dataclasses.replace(m, name=f"{m.name}{HOSTILE}") for m in sample.metrics
            ),
            conditions=tuple(
                dataclasses.replace(c, reason=HOSTILE, message=HOSTILE) for c in sample.conditions
            ),
        )
        for sample in record.autoscaler
    )
    pods = tuple(
        dataclasses.replace(p, name=f"{p.name}-{HOSTILE}", terminations=(HOSTILE,))
        for p in record.pods
    )
    events = tuple(
        dataclasses.replace(e, load_change=HOSTILE, metric=f"m{HOSTILE}") for e in record.events
    )
    return dataclasses.replace(
        record, autoscaler=samples, pods=pods, events=events, notes=(f"note {HOSTILE}",)
    )


# ---------------------------------------------------------------- recorded by the engine
def per_request_stats() -> StatsRecord:
    """`SCENARIO` played through `RunStats` at its planned rates: `work` answers in 400 ms and
    from +12 s on every fifth is a 500 and every seventh times out (no response); `health`
    answers 200 in 5 ms."""
    plan = plan_of(SCENARIO)
    run = RunStats(0.0)
    for phase in plan.phases:
        stats = run.phase(phase.name)
        names = [name for name, _ in phase.mix]
        n = round(_arrivals_until(plan, phase.end_s) - _arrivals_until(plan, phase.start_s))
        for i in range(n):
            at = phase.start_s + (i + 0.5) * (phase.end_s - phase.start_s) / n
            name = names[i % 4 == 3] if len(names) > 1 else names[0]
            request = stats.request(name)
            stats.schedule(at, request)
            stats.mark_sent(at, request)
            if name == "health":
                stats.record(at, at, at + 0.005, 200, True, request)
            elif at >= 12 and i % 7 == 0:
                stats.record(at, at, at + 1.0, None, False, request, error_kind="timeout")
            elif at >= 12 and i % 5 == 0:
                stats.record(at, at, at + 0.4, 500, False, request)
            else:
                stats.record(at, at, at + 0.4, 200, True, request)
    assert run.check_accounting() == []
    return run.freeze()


def per_request_results(**changes: object) -> RunResults:
    """`SCENARIO`'s document from `per_request_stats()`; `changes` go to `make_results`."""
    return make_results(SCENARIO, **{"stats": per_request_stats(), **changes})  # type: ignore[arg-type]

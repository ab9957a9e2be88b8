"""Building a results document from a run's records: phases placed by the plan and counted by
the engine, a shard's share of the plan, rounding, and secrets (credential headers, URL
passwords) masked."""

from __future__ import annotations

import hashlib
import json

import pytest

from nimbus_scenarios.engine.records import Counts, RequestRecord, StatsRecord
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.results.build import rounded_judgement
from nimbus_scenarios.results.io import from_json, to_json
from nimbus_scenarios.results.model import (
    Judgement,
    ReplicaPoint,
    ReplicaSourceResult,
    SampleResult,
    ShardInfo,
    Verdict,
)
from tests.support.results import (
    make_results,
    phase_record,
    plan_of,
    recorded_stats,
    results_of,
    stats_of,
)


def test_phases_take_place_from_the_plan_and_counts_from_the_records() -> None:
    """A phase's offsets and shape come from the plan; its counts and requests from the
    engine's record; achieved is sent over the time it ran."""
    results = results_of()
    warm, ramp = results.phases
    assert (warm.name, warm.start_s, warm.end_s, warm.shape) == ("warm", 0.0, 10.0, "rate 2/s")
    assert (warm.planned, warm.target_rate, warm.achieved_rate) == (20, 2.0, 2.0)
    assert (warm.load.sent, warm.load.failed, warm.load.errors_by_kind) == (20, 1, {"reset": 1})
    assert [(r.name, r.sent, r.failed) for r in warm.load.requests] == [
        ("work", 15, 0),
        ("health", 5, 1),
    ]
    assert ramp.shape == "ramp 2/s -> 6/s"
    assert ramp.planned == 80
    assert results.totals.sent == 100


def test_a_phase_that_never_ran_has_zero_counts_and_no_latency() -> None:
    """Not run: ran is false, counts are zero and latency is absent, not zero."""
    stats = stats_of([phase_record("warm", Counts(20, 20, 0, 20, 0, 0))])
    results = results_of(stats=stats, phases_run={"warm": (0.0, 10.0)})
    ramp = results.phases[1]
    assert (ramp.ran, ramp.ran_s, ramp.achieved_rate) == (False, None, None)
    assert (ramp.load.sent, ramp.load.latency_ms, ramp.load.requests) == (0, None, ())


def test_a_shard_plans_its_own_share() -> None:
    """Shard 1 of 3 plans the arrivals k with k mod 3 == 1: 7 of warm's 20, 27 of ramp's 80."""
    results = results_of(shard=ShardInfo(1, 3))
    assert [p.planned for p in results.phases] == [7, 27]
    assert results.phases[0].target_rate == 0.7


def test_values_are_rounded_once_as_written() -> None:
    """Observed values keep six decimals; offsets and rates three."""
    e = plan_of().all_expectations[0]
    judgement = rounded_judgement(Judgement(e, Verdict.PASSED, 1.23456789, 4.00049, "x"))
    assert (judgement.observed, judgement.met_at_s) == (1.234568, 4.0)
    results = results_of(phases_run={"warm": (0.0, 10.00049), "ramp": (10.00049, 30.0)})
    assert results.phases[0].ran_s == (0.0, 10.0)


def test_replicas_are_the_source_samples_seen_as_points() -> None:
    """`replicas` lists (t, ready, desired) of every sample the source recorded."""
    source = ReplicaSourceResult(
        "deployment default/consumer",
        None,
        None,
        (SampleResult(0.0, 1, 1, 1), SampleResult(4.5, 1, 3, 2, 3)),
    )
    results = results_of(replica_source=source)
    assert results.replicas == (ReplicaPoint(0.0, 1, 1), ReplicaPoint(4.5, 1, 3))


def test_secret_header_values_are_masked_everywhere() -> None:
    """The literal `Authorization` value is masked in the source and in the embedded plan."""
    results = results_of()
    assert "s3cret" not in results.scenario_source
    assert '"***"' in results.scenario_source
    header = dict(results.plan.templates["health"].headers)["Authorization"]
    assert header.value == "***"


def test_a_phase_with_no_response_has_no_latency() -> None:
    """Twenty resets are completed requests but no response: latency is absent, not zero."""
    warm = phase_record("warm", Counts(20, 20, 0, 0, 20, 0), statuses={}, errors={"reset": 20})
    results = results_of(stats=stats_of([warm]), phases_run={"warm": (0.0, 10.0)})
    load = results.phases[0].load
    assert (load.failed, load.latency_ms, load.service_ms) == (20, None, None)
    assert results.totals.latency_ms is None


def test_truncated_responses_reach_the_phase_its_requests_and_the_totals() -> None:
    """`truncated` is written per phase, per request template and in the totals, and read back."""
    counts = Counts(20, 20, 0, 20, 0, 0, truncated=3)
    warm = phase_record(
        "warm", counts, requests=[RequestRecord("work", counts, {}, {200: 20})], statuses={200: 20}
    )
    results = results_of(stats=stats_of([warm]), phases_run={"warm": (0.0, 10.0)})
    load = results.phases[0].load
    assert (load.truncated, load.requests[0].truncated, results.totals.truncated) == (3, 3, 3)
    text = to_json(results)
    document = json.loads(text)
    assert document["phases"][0]["truncated"] == 3
    assert document["phases"][0]["requests"][0]["truncated"] == 3
    assert document["totals"]["truncated"] == 3
    assert from_json(text) == results


def test_passwords_in_urls_are_masked_in_the_source_params_target_and_plan() -> None:
    """`user:pass@` in the target literal, a param or a path is `***` in the scenario source,
    the params, the target and the embedded plan; the source's hash is of the real text."""
    text = SCENARIO_WITH_URLS
    results = make_results(
        text, stats=recorded_stats(), judgements=(), target="http://admin:hunter2@svc:8000"
    )
    document = to_json(results)
    for password in ("hunter2", "pw2", "pw3"):
        assert password not in document
    assert 'target "http://admin:***@svc:8000"' in results.scenario_source
    assert results.params == {"up": "http://q:***@up"}
    assert results.target == "http://admin:***@svc:8000"
    assert results.plan.target is not None
    assert results.plan.target.value == "http://admin:***@svc:8000"
    assert results.scenario_hash == hashlib.sha256(text.encode()).hexdigest()


SCENARIO_WITH_URLS = """\
scenario "factory" {
  target "http://admin:hunter2@svc:8000"
  watch deployment "consumer"
  param up = "http://q:pw2@up"
  request work = GET "/work?next=http://u:pw3@h" { query to = $up }
  request health = GET "/health"
  phase "warm" 10s {
    rate 2/s
    send 75% work, 25% health
  }
  phase "ramp" 20s {
    ramp 2/s -> 6/s
    send work
  }
}
"""


def _timed_stats() -> StatsRecord:
    """`warm` ran 18 slow `work` requests and 2 fast `health` ones, one of them reset."""
    run = RunStats(100.0)
    phase = run.phase("warm")
    for i in range(20):
        template = "work" if i < 18 else "health"
        request = phase.request(template)
        at = 100.0 + i * 0.1
        phase.schedule(at, request)
        phase.mark_sent(at + 0.05, request)
        if i == 19:
            phase.record(at, at + 0.05, at + 0.1, None, False, request, error_kind="reset")
        else:
            phase.record(
                at, at + 0.05, at + (0.8 if template == "work" else 0.01), 200, True, request
            )
    return run.freeze()


def test_each_request_template_has_its_latency_summaries() -> None:
    """Per template, per phase and in total: latency from the schedule and from the send, over
    its responses; written and read back (the histograms travel in `stats`)."""
    results = results_of(stats=_timed_stats(), phases_run={"warm": (0.0, 10.0)})
    for load in (results.phases[0].load, results.totals):
        work, health = load.requests
        assert (work.name, health.name) == ("work", "health")
        assert work.latency_ms is not None
        assert work.service_ms is not None
        assert work.latency_ms.p95 == pytest.approx(800, rel=1e-3)
        assert work.service_ms.p95 == pytest.approx(750, rel=1e-3)
        assert health.latency_ms is not None
        assert health.latency_ms.max == pytest.approx(10, rel=1e-3)
    text = to_json(results)
    assert from_json(text) == results
    assert json.loads(text)["stats"]["phases"][0]["requests"][0]["histograms"]["latency_us"]


def test_a_template_without_responses_or_without_histograms_has_no_latency() -> None:
    """No response: None, not zero; an older document (no template histograms) reads back."""
    reset_only = phase_record(
        "warm",
        Counts(2, 2, 0, 0, 2, 0),
        requests=[RequestRecord("work", Counts(2, 2, 0, 0, 2, 0), {"reset": 2}, {})],
        statuses={},
        errors={"reset": 2},
    )
    results = results_of(stats=stats_of([reset_only]), phases_run={"warm": (0.0, 10.0)})
    assert results.phases[0].load.requests[0].latency_ms is None
    older = results_of(phases_run={"warm": (0.0, 10.0)})  # templates carry counts only
    assert older.stats.phases[0].requests[0].histograms is None
    assert older.phases[0].load.requests[0].latency_ms is None
    text = to_json(older)
    assert "histograms" not in json.loads(text)["stats"]["phases"][0]["requests"][0]
    assert from_json(text) == older

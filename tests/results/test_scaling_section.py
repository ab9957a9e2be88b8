"""The results' `scaling` section: written and read back equal, left out when there is none,
rounded when built, read strictly and within its bounds."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from nimbus_scenarios.errors import ResultsError
from nimbus_scenarios.results.io import from_json, to_json
from nimbus_scenarios.results.scaling_section import MAX_PODS, MAX_REPLICAS
from nimbus_scenarios.scaling import PodRecord, ScaleEvent, TargetKind
from tests.support.results import (
    FULL_EVENTS,
    POD_BEFORE,
    TRIGGER,
    blind_scaling,
    full_results,
    full_scaling,
    scaling_results,
)

Data = dict[str, Any]


def _document() -> Data:
    data: Data = json.loads(to_json(scaling_results()))
    return data


def test_the_section_round_trips_with_its_enums_and_tuples() -> None:
    """Samples with metrics (a `TargetKind`) and conditions, pods with termination reasons,
    scale events with start-ups: all read back equal, through the JSON names of the model."""
    results = scaling_results()
    text = to_json(results)
    back = from_json(text, "r.json")
    assert back == results
    assert back.scaling is not None
    metric = back.scaling.autoscaler[1].metrics[0]
    assert (metric.name, metric.target_kind, metric.current) == (
        TRIGGER,
        TargetKind.AVERAGE_VALUE,
        1.2,
    )
    section = json.loads(text)["scaling"]
    assert section["autoscaler"][1]["metrics"][1]["target_kind"] == "Utilization"
    assert section["pods"][3]["terminations"] == ["OOMKilled"]
    assert section["events"][0]["pod_startups_s"] == [5.4]
    blind = scaling_results(scaling=blind_scaling())
    assert from_json(to_json(blind), "r.json") == blind


def test_a_document_without_the_section_leaves_it_out_and_older_ones_load() -> None:
    """No `scaling` key when there is none (as other optional sections); a document without
    the key reads back with None."""
    text = to_json(full_results())
    assert "scaling" not in json.loads(text)
    assert from_json(text, "r.json").scaling is None
    data = _document()
    del data["scaling"]
    assert from_json(json.dumps(data), "r.json").scaling is None


def test_a_section_with_only_some_fields_loads_with_their_defaults() -> None:
    """Fields with defaults may be left out (a tool writing a minimal section)."""
    data = _document()
    data["scaling"] = {"events": [{"from_replicas": 1, "to_replicas": 2, "decided_s": 3.5}]}
    scaling = from_json(json.dumps(data), "r.json").scaling
    assert scaling is not None
    assert scaling.events == (ScaleEvent(1, 2, 3.5),)
    assert (scaling.autoscaler, scaling.pods, scaling.pods_watched) == ((), (), False)


def test_times_and_values_are_rounded_when_built() -> None:
    """Offsets to the millisecond, metric values to six decimals, as the rest of the
    document."""
    record = full_scaling()
    sample = record.autoscaler[1]
    metric = dataclasses.replace(sample.metrics[0], current=1.23456789, target=5.0000001)
    raw = dataclasses.replace(
        record,
        autoscaler=(dataclasses.replace(sample, at=3.00049, metrics=(metric,)),),
        pods=(PodRecord("p", created=1.23456, ready=7.0004),),
        events=(dataclasses.replace(FULL_EVENTS[0], decided_s=14.20049, pod_startups_s=(5.4004,)),),
    )
    built = full_results(scaling=raw).scaling
    assert built is not None
    assert built.autoscaler[0].at == 3.0
    assert (built.autoscaler[0].metrics[0].current, built.autoscaler[0].metrics[0].target) == (
        1.234568,
        5.0,
    )
    assert (built.pods[0].created, built.pods[0].ready) == (1.235, 7.0)
    assert (built.events[0].decided_s, built.events[0].pod_startups_s) == (14.2, (5.4,))
    assert from_json(to_json(full_results(scaling=raw)), "r.json").scaling == built


Change = Callable[[Data], object]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s["autoscaler"][1]["metrics"][0].update(target_kind="Average"),
            "$.scaling.autoscaler[1].metrics[0].target_kind: expected one of 'AverageValue'",
        ),
        (lambda s: s["pods"][0].update(node="n1"), "$.scaling.pods[0].node: unknown field"),
        (lambda s: s.update(pods_watched="yes"), "$.scaling.pods_watched: expected true or false"),
        (lambda s: s["events"][0].pop("decided_s"), "$.scaling.events[0].decided_s: missing"),
        (
            lambda s: s["autoscaler"][0].update(at=1e6),
            "$.scaling.autoscaler[0].at: expected a run offset from -63.5 to 63.5 s",
        ),
        (
            lambda s: s["events"][1].update(ready_s=-100),
            "$.scaling.events[1].ready_s: expected a run offset",
        ),
        (
            lambda s: s["pods"][1].update(deleted=64),
            "$.scaling.pods[1].deleted: expected a run offset",
        ),
        (
            lambda s: s["events"][0]["pod_startups_s"].append(-1),
            "$.scaling.events[0].pod_startups_s[1]: expected a run offset from 0",
        ),
        (
            lambda s: s["autoscaler"][2].update(desired=-1),
            f"$.scaling.autoscaler[2].desired: expected a count from 0 to {MAX_REPLICAS}",
        ),
        (
            lambda s: s["pods"][3].update(restarts=2**40),
            "$.scaling.pods[3].restarts: expected a count",
        ),
        (
            lambda s: s["events"][0].update(to_replicas=2**31),
            "$.scaling.events[0].to_replicas: expected a count",
        ),
        (
            lambda s: s.update(pods=[{"name": f"p{i}"} for i in range(MAX_PODS + 1)]),
            f"$.scaling.pods: more pods than the {MAX_PODS:,}",
        ),
        (
            lambda s: s["autoscaler"][0].update(metrics=[s["autoscaler"][1]["metrics"][0]] * 101),
            "$.scaling.autoscaler[0].metrics: more metrics than the 100",
        ),
    ],
)
def test_a_wrong_section_is_refused_with_its_path(change: Change, message: str) -> None:
    """Strict types and bounds: a wrong enum, an unknown or missing field, a time outside the
    run (62.5 s long, so offsets within 63.5 s), a count no Deployment has, too many pods."""
    data = _document()
    change(data["scaling"])
    with pytest.raises(ResultsError) as caught:
        from_json(json.dumps(data), "r.json")
    assert message in str(caught.value)


def test_a_pod_may_have_started_long_before_the_run() -> None:
    """Pods running when the run began keep their real creation time (months before it), but
    none of a pod's times may lie after the run."""
    data = _document()
    assert data["scaling"]["pods"][0]["name"] == POD_BEFORE
    data["scaling"]["pods"][0]["created"] = -90 * 86_400.0
    scaling = from_json(json.dumps(data), "r.json").scaling
    assert scaling is not None
    assert scaling.pods[0].created == -90 * 86_400.0
    data["scaling"]["pods"][1]["ready"] = 100.0
    with pytest.raises(ResultsError, match=r"pods\[1\]\.ready: expected a run offset of at most"):
        from_json(json.dumps(data), "r.json")

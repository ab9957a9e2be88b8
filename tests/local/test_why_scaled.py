"""Why it scaled, end to end against the local fleet with real time: `quickstart` (the demo)
records scale events with every step filled and prints their breakdown, and a scenario that
expects `reaction < 1s` fails with exit 1, naming the reaction it measured."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.checks import read_results
from tests.support.cli import run_cli

STEPS = (
    "load_change",
    "load_change_s",
    "metric",
    "metric_value",
    "metric_target",
    "metric_above_s",
    "decided_s",
    "pods_created_s",
    "ready_s",
)


@pytest.mark.timeout(420)  # the demo plays for 2 min 15 s
def test_quickstart_shows_a_scale_event_with_every_step(tmp_path: Path) -> None:
    """The demo's ramp passes 5 req/s per replica: at least one rise of desired replicas, each
    step from the load change to ready recorded in order, and the console's line for it."""
    results = tmp_path / "quickstart.json"
    done = run_cli("run", "quickstart", "--local", "--results", str(results), timeout_s=400.0)
    assert done.code == 0, done.stderr
    scaling = read_results(results)["scaling"]
    assert scaling["pods_watched"] is True
    assert scaling["notes"] == []
    assert scaling["autoscaler"], "the local autoscaler's status was recorded"
    events = scaling["events"]
    assert events
    for event in events:
        assert all(event[step] is not None for step in STEPS), event
        assert event["to_replicas"] > event["from_replicas"]
        assert event["metric_value"] > event["metric_target"]
        assert (
            event["load_change_s"]
            <= event["metric_above_s"]
            <= event["decided_s"]
            <= event["pods_created_s"] + 1.0
            < event["ready_s"]
        ), event
        assert len(event["pod_startups_s"]) == event["to_replicas"] - event["from_replicas"]
    lines = done.stderr.splitlines()
    at = lines.index("scale events:")
    first = lines[at + 1]
    assert first.lstrip().startswith(f"+{events[0]['to_replicas'] - events[0]['from_replicas']}")
    assert "after phase" in first
    assert "rps per replica" in first
    assert "ready at" in first


REACTION = """
scenario "reaction" {
  watch deployment "consumer" namespace "nimbusguard"
  request work = stress cpu 1 memory 10MB for 1s async
  phase "ramp" 25s {
    rate 15/s
    send work
    expect reaction < 1s
  }
}
"""


@pytest.mark.timeout(220)
def test_a_reaction_expectation_the_fleet_cannot_meet_names_what_it_measured(
    tmp_path: Path,
) -> None:
    """The local autoscaler decides every 5 s over a 20 s window: `reaction < 1s` fails, and
    the FAIL line and the results give the measured reaction."""
    scenario = tmp_path / "reaction.scn"
    scenario.write_text(REACTION, encoding="utf-8")
    results = tmp_path / "reaction.json"
    done = run_cli("run", str(scenario), "--local", "--results", str(results), timeout_s=200.0)
    assert done.code == 1, done.stderr
    document = read_results(results)
    (judged,) = document["expectations"]
    assert judged["verdict"] == "failed"
    assert judged["observed"] >= 1.0
    event = document["scaling"]["events"][0]
    assert judged["observed"] == pytest.approx(
        event["decided_s"] - event["load_change_s"], abs=0.01
    )
    fail = next(line for line in done.stderr.splitlines() if line.strip().startswith("FAIL "))
    assert "expect reaction < 1s" in fail
    assert f"{judged['observed']:.1f}s after ramp started" in fail

"""The open-model engine against a loopback server: request counts per phase, the accounting
identities, the per-second shape of ramps and spikes, burst instants and template weights.

One scenario with a phase per shape runs once for the module (about 14 s); every test reads its
results document and what the server saw. Expected numbers are worked out here by hand from
the scenario text, not from the package's own arithmetic.
"""

from __future__ import annotations

from typing import Any

import pytest

from nimbus_scenarios.results.io import to_json_data
from tests.conftest import run_text
from tests.support.http import Hit, HttpServer

SCENARIO = """
scenario "shapes" {
  request r  = GET "/rate"
  request rp = GET "/ramp"
  request st = GET "/steps"
  request sp = GET "/spike"
  request b  = GET "/burst"
  request a  = GET "/mix-a"
  request c  = GET "/mix-c"

  phase "rate" 2s {
    rate 100/s
    send r
  }
  phase "ramp" 3s {
    ramp 20/s -> 200/s
    send rp
  }
  phase "steps" 2s {
    steps 50/s -> 150/s in 2
    send st
  }
  phase "spike" 3s {
    rate 20/s
    spike 200/s for 1s at 1s
    send sp
  }
  phase "burst" 3s {
    burst 20 every 1s
    send b
  }
  phase "mix" 1s {
    rate 100/s
    send 70% a, 30% c
  }
}
"""

# Requests each phase schedules: the integral of its rate (all integers here, so no ceiling).
EXPECTED_COUNTS = {
    "rate": 100 * 2,
    "ramp": (20 + 200) * 3 // 2,
    "steps": 50 + 150,
    "spike": 20 * 2 + 200,
    "burst": 20 * 3,
    "mix": 100,
}


def planned_rate(t: float) -> float:
    """The scenario's arrival rate at run offset `t`, written out from its text."""
    if t < 2:
        return 100.0
    if t < 5:
        return 20.0 + (200.0 - 20.0) * (t - 2) / 3
    if t < 6:
        return 50.0
    if t < 7:
        return 150.0
    if t < 10:
        return 200.0 if 8 <= t < 9 else 20.0
    if t < 13:
        return 20.0  # 20 at each whole second
    return 100.0 if t < 14 else 0.0


def planned_in_second(second: int) -> float:
    """The integral of the planned rate over [second, second + 1).

    Every shape boundary is a whole second and the rate is linear inside each second, so the
    rate at the midpoint times one second is the exact integral.
    """
    return planned_rate(second + 0.5)


@pytest.fixture(scope="module")
def shapes(module_server: HttpServer) -> tuple[dict[str, Any], list[Hit]]:
    """The results document of one run of SCENARIO and the requests the server saw."""
    outcome = run_text(SCENARIO, module_server.url)
    assert outcome.exit_code == 0, outcome.results
    # The JSON document, as users read it: its per-second series included.
    return to_json_data(outcome.results), list(module_server.hits)


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in document["phases"]}


def test_request_counts_per_phase_match_the_plan(shapes: tuple[dict[str, Any], list[Hit]]) -> None:
    """Each phase plans the integral of its rate and schedules and sends it within 1%."""
    document, _ = shapes
    phases = by_name(document)
    assert list(phases) == list(EXPECTED_COUNTS)
    for name, expected in EXPECTED_COUNTS.items():
        phase = phases[name]
        assert phase["planned"] == expected, name
        assert abs(phase["scheduled"] - expected) <= 0.01 * expected, (name, phase)
        assert abs(phase["sent"] - expected) <= 0.01 * expected, (name, phase)
        assert phase["failed"] == 0, (name, phase)
        assert phase["target_rate"] == pytest.approx(expected / (phase["end_s"] - phase["start_s"]))


def test_accounting_identities_hold_per_phase_and_in_total(
    shapes: tuple[dict[str, Any], list[Hit]],
) -> None:
    """scheduled = sent + dropped and sent = succeeded + failed, per phase, in total, per second."""
    document, _ = shapes
    for item in [*document["phases"], document["totals"]]:
        assert item["scheduled"] == item["sent"] + item["dropped"], item
        assert item["sent"] == item["succeeded"] + item["failed"], item
    totals = document["totals"]
    for key in ("scheduled", "sent", "dropped", "succeeded", "failed"):
        assert totals[key] == sum(p[key] for p in document["phases"]), key
        assert totals[key] == sum(s[key] for s in document["seconds"]), key


def test_server_saw_every_request_sent(shapes: tuple[dict[str, Any], list[Hit]]) -> None:
    """The server received exactly the requests each phase counts as sent."""
    document, hits = shapes
    paths = {"rate": "/rate", "ramp": "/ramp", "steps": "/steps", "spike": "/spike"}
    paths["burst"] = "/burst"
    phases = by_name(document)
    for name, path in paths.items():
        assert sum(1 for h in hits if h.path == path) == phases[name]["sent"], name


def test_per_second_counts_follow_the_planned_rate(
    shapes: tuple[dict[str, Any], list[Hit]],
) -> None:
    """Every whole second's scheduled and sent counts match the integral of the planned rate."""
    document, _ = shapes
    seconds = {s["second"]: s for s in document["seconds"]}
    for second in range(14):
        expected = planned_in_second(second)
        row = seconds[second]
        assert abs(row["scheduled"] - expected) <= 1, (second, row, expected)
        assert abs(row["sent"] - expected) <= 3 + 0.05 * expected, (second, row, expected)


def test_ramp_sent_rate_follows_the_line(shapes: tuple[dict[str, Any], list[Hit]]) -> None:
    """The ramp's per-second sent counts are 50, 110 and 170: the integrals of 20 + 60 t."""
    document, _ = shapes
    sent = [s["sent"] for s in document["seconds"][2:5]]
    for observed, expected in zip(sent, (50, 110, 170), strict=True):
        assert abs(observed - expected) <= 3 + 0.05 * expected, sent
    assert sent[0] < sent[1] < sent[2]


def test_spike_lands_in_its_second(shapes: tuple[dict[str, Any], list[Hit]]) -> None:
    """The 200/s spike at +1s of the spike phase fills run second 8; its neighbours stay at 20."""
    document, _ = shapes
    sent = {s["second"]: s["sent"] for s in document["seconds"]}
    assert abs(sent[8] - 200) <= 10, sent
    for second in (7, 9):
        assert abs(sent[second] - 20) <= 3, sent


def test_bursts_arrive_together_at_their_offsets(shapes: tuple[dict[str, Any], list[Hit]]) -> None:
    """Each burst's 20 requests reach the server within a few ms, one second apart."""
    document, hits = shapes
    times = sorted(h.at for h in hits if h.path == "/burst")
    assert len(times) == 60
    clusters: list[list[float]] = []
    for t in times:
        if clusters and t - clusters[-1][-1] < 0.3:
            clusters[-1].append(t)
        else:
            clusters.append([t])
    assert [len(c) for c in clusters] == [20, 20, 20]
    first = times[0]
    for k, cluster in enumerate(clusters):
        assert cluster[-1] - cluster[0] < 0.1, cluster
        # generous: on a loaded 2-core machine the server thread itself may wake late
        assert cluster[0] - first == pytest.approx(k, abs=0.25)
    seconds = {s["second"]: s["scheduled"] for s in document["seconds"]}
    assert [seconds[10], seconds[11], seconds[12]] == [20, 20, 20]


def test_weighted_mix_is_exact(shapes: tuple[dict[str, Any], list[Hit]]) -> None:
    """`send 70% a, 30% c` over 100 requests reaches the server as exactly 70 and 30."""
    _, hits = shapes
    assert sum(1 for h in hits if h.path == "/mix-a") == 70
    assert sum(1 for h in hits if h.path == "/mix-c") == 30

"""Hand-derived arithmetic for the valid corpus, checked against its golden plans.

Every number below was worked out by hand from the language page's rules (the comment next to
it shows the sum), not copied from the implementation. `tests/language/test_corpus.py` checks
that the golden files equal what `plan --json` prints today, so together these pin the
implementation to the page: a regenerated golden file that breaks the arithmetic fails here.

Rules used (scenario-language.md, "Exact arithmetic"):
- open model: ceil(integral of the rate over the phase) arrivals;
- `steps R1 -> R2 in N`: stair j lasts D/N at R1 + (R2 - R1) * j / (N - 1) (N = 1: R1);
- `burst N every D`: N arrivals at offsets 0, D, 2D, ... while the offset is before the end;
- `spike R for D at T`: the rate is R instead of the shape's during [T, T + D);
- a mix splits arrivals in Sainte-Laguë order on the exact weights: arrival n goes to the largest
  w / (2c + 1) (counts checked in test_properties too).
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

VALID = Path(__file__).resolve().parents[1] / "data" / "valid"

# file -> [(phase, start_s, end_s, scheduled_total, scheduled)]; None: closed model (users).
PHASES: dict[str, list[tuple[str, float, float, int | None, dict[str, int] | None]]] = {
    "rates": [
        ("two-per-second", 0, 30, 60, {"ping": 60}),  # 2/s x 30s
        ("tenth", 30, 60, 3, {"ping": 3}),  # 0.1/s x 30s, exactly 3 (no float drift)
        ("per-minute", 60, 150, 450, {"ping": 450}),  # 300/m = 5/s x 90s
        ("per-hour", 150, 7350, 180, {"ping": 180}),  # 90/h x 2h
        ("fraction-up", 7350, 7351.5, 1, {"ping": 1}),  # 0.3 x 1.5 = 0.45 -> 1
        ("three-tenths", 7351.5, 7361.5, 3, {"ping": 3}),  # 0.3 x 10 = 3 exactly, not 4
        ("millis", 7361.5, 7364, 10, {"ping": 10}),  # 4/s x 2.5s
        ("compound", 7364, 11025, 3661, {"ping": 3661}),  # 1h1m1s = 3661s x 1/s
    ],
    "ramps": [
        ("from-zero", 0, 10, 50, {"up": 50}),  # (0 + 10) / 2 x 10
        ("down", 10, 70, 360, {"up": 360}),  # (10 + 2) / 2 x 60
        ("to-zero", 70, 74, 6, {"up": 6}),  # (3 + 0) / 2 x 4
        ("half-up", 74, 77, 5, {"up": 5}),  # (1 + 2) / 2 x 3 = 4.5 -> 5
        ("tiny", 77, 78.5, 1, {"up": 1}),  # (0.3 + 0.7) / 2 x 1.5 = 0.75 -> 1
        ("per-minute", 78.5, 198.5, 240, {"up": 240}),  # (1 + 3) / 2 x 120
    ],
    "steps": [
        ("four-stairs", 0, 40, 100, {"job": 100}),  # (1 + 2 + 3 + 4) x 10s
        ("one-stair", 40, 50, 50, {"job": 50}),  # N = 1: R1 = 5/s x 10s
        ("from-zero", 50, 59, 45, {"job": 45}),  # (0 + 5 + 10) x 3s
        ("down-to-zero", 59, 66, 35, {"job": 35}),  # (10 + 0) x 3.5s
        ("thirds", 66, 76, 15, {"job": 15}),  # (1 + 1.5 + 2) x 10/3 s
        ("flat", 76, 81, 10, {"job": 10}),  # 2/s x 5s
    ],
    "users": [
        ("no-think", 0, 60, None, None),
        ("thinking", 60, 180, None, None),
        ("open", 180, 190, 10, {"slow": 10}),  # 1/s x 10s
    ],
    "bursts": [
        ("even", 0, 60, 30, {"hit": 30}),  # offsets 0..50 step 10: 6 x 5
        ("uneven", 60, 125, 35, {"hit": 35}),  # offsets 0..60: 7 x 5
        ("fractional", 125, 129, 9, {"hit": 9}),  # offsets 0, 1.5, 3: 3 x 3
        ("longer-than-phase", 129, 159, 10, {"hit": 10}),  # offset 0 only: 1 x 10
        ("single", 159, 161, 4, {"hit": 4}),  # offsets 0, .5, 1, 1.5: 4 x 1
    ],
    "spikes": [
        ("in-rate", 0, 60, 1250, {"s": 1250}),  # 5 x 50 + 100 x 10
        # ramp 2 -> 8 over 60s (r = 2 + t/10); 20/s in [10, 20), 30/s in [30, 35):
        # 25 + 200 + 45 + 150 + 168.75 = 588.75 -> 589
        ("in-ramp", 60, 120, 589, {"s": 589}),
        ("across-stairs", 120, 140, 60, {"s": 60}),  # 1 x 8 + 7 x 4 + 3 x 8
        ("back-to-back", 140, 170, 600, {"s": 600}),  # (10 + 20 + 30) x 10, no base left
        ("idle-spike", 170, 200, 25, {"s": 25}),  # 10/s x 2.5s
        ("idle-two-spikes", 200, 260, 22, {"s": 22}),  # 4 x 5 + 0.5 x 3 = 21.5 -> 22
        ("quiet", 260, 270, 0, {}),
    ],
    "mixes": [
        # Sainte-Laguë order, worked by hand on the reduced integer weights.
        ("ninety-ten", 0, 10, 100, {"a": 90, "b": 10}),  # 9:1, 10 full cycles
        ("thirds", 10, 20, 100, {"a": 33, "b": 33, "c": 34}),  # 333:333:334, first 100 picks
        ("seventy-thirty-short", 20, 21, 7, {"a": 5, "b": 2}),  # 7:3 -> a b a a a b a
        ("half-percent", 21, 41, 200, {"a": 199, "b": 1}),  # 199:1, one full cycle
        ("quarters", 41, 44, 15, {"a": 4, "b": 4, "c": 4, "d": 3}),  # 3 cycles + a b c
        ("eighths", 44, 49, 15, {"a": 2, "b": 6, "c": 7}),  # 1:3:4 cycle + c b c a b c b
        ("single-weighted", 49, 51, 2, {"d": 2}),
    ],
    "expectations": [
        ("warm", 0, 60, 120, {"work": 120}),  # 2/s x 60s
        ("hold", 60, 180, 1200, {"work": 960, "health": 240}),  # 10/s x 120s, 4:1
        ("calm", 180, 210, 0, {}),
    ],
    "guards_kills": [
        ("first", 0, 60, 300, {"work": 300}),
        ("second", 60, 150, None, None),
        ("third", 150, 160, 0, {}),
    ],
    "params": [
        ("from-param", 0, 30, 600, {"create": 450, "list": 150}),  # 20/s x 30s, 3:1
        ("ramp", 30, 60, 330, {"crunch": 330}),  # (2 + 20) / 2 x 30
        ("steps", 60, 90, 330, {"crunch": 330}),  # (2 + 11 + 20) x 10
        ("users", 90, 120, None, None),
        ("burst", 120, 150, 24, {"list": 24}),  # offsets 0..25 step 5: 6 x 4
    ],
    # 2:2:1, one cycle: private open login private open
    "secrets": [("only", 0, 5, 5, {"private": 2, "open": 2, "login": 1})],
    "settings_stress": [
        ("stress", 0, 10, 20, {"defaults": 5, "everything": 5, "kilobytes": 5, "gigabytes": 5}),
        ("keep", 10, 20, None, None),
    ],
    "cleanup": [("one", 0, 1, 1, {"reset": 1})],
    "comments": [("p", 0, 10, 44, {"a": 22, "b": 22})],  # 4 x 9 + 8 x 1
    "warnings": [("hog", 0, 60, 120, {"hog": 120}), ("rest", 60, 90, 0, {"hog": 0})],
    "idle_send": [("load", 0, 10, 20, {"work": 20}), ("rest", 10, 30, 0, {"work": 0})],  # 2 x 10
    "minimal": [("p", 0, 1, 0, {})],
    # Lone-CR line endings read as lines: two phases, not one unparseable line.
    "cr_only": [
        ("hold", 0, 10, 20, {"a": 20}),  # 2/s x 10s
        ("ramp", 10, 20, 20, {"a": 20}),  # (1 + 3) / 2 x 10s
    ],
    "layout": [("second-in-file", 0, 20, 40, {"b": 40}), ("third", 20, 110, None, None)],
    "per_request": [
        ("ramp", 0, 120, 2520, {"work": 2268, "health": 252}),  # (2 + 40) / 2 x 120, 9:1
        ("reports", 120, 180, 60, {"report": 60}),  # 1/s x 60s
    ],
    "set_status_code": [("p", 0, 60, 1200, {"work": 1200})],  # 20/s x 1m
    "weights": [
        # 333333333:333333333:333333334 over 1,000: shares 333.33 333.33 333.33 round to 999;
        # the next element in the order is the largest weight's, c's
        ("near-thirds", 0, 1000, 1000, {"a": 333, "b": 333, "c": 334}),
        # 10000/s x 9999.9999s = 99,999,999 = 10^8 - 1; shares of 33333331:66666669 (sum 10^8)
        # are 33333331 - 0.33333331 and 66666669 - 0.66666669, rounded: 33333331 + 66666668
        ("long-cycle", 1000, 10999.9999, 99999999, {"a": 33333331, "b": 66666668}),
    ],
    # 10 x (1 + 2 + ... + 50) = 12750 of stairs; the spikes across boundaries 1..49 take
    # j + (j + 1) each (2499 in all) and add 200 each (9800); the two at 0s and 1s take 2 of
    # stair 0 and add 30 + 40: 12750 - 2499 + 9800 - 2 + 70 = 20119
    "many_spikes": [("stairs", 0, 500, 20119, {"a": 20119})],
    "scaling": [
        ("warm", 0, 30, 60, {"work": 60}),  # 2/s x 30s
        # ramp r(t) = 2 + 38t/120: (2 + 40) / 2 x 120 = 2520, less the ramp under the spike
        # [60, 70): (21 + 24 1/6) / 2 x 10 = 225 5/6, plus the spike 60 x 10: 2894 1/6 -> 2895
        ("ramp", 30, 150, 2895, {"work": 2895}),
    ],
}

# Run length: phases plus any replica window that runs past them.
DURATIONS = {
    "rates": 11025,
    "ramps": 198.5,
    "steps": 81,
    "users": 190,
    "bursts": 161,
    "spikes": 270,
    "mixes": 51,
    "expectations": 240,  # "hold" starts at 60 with `within 3m`; the scenario's `within 4m`
    "guards_kills": 160,
    "params": 150,  # `within $wait` (2m) from 0 ends before the phases do
    "secrets": 5,
    "settings_stress": 20,
    "cleanup": 1,
    "comments": 20,  # `within 20s` from 0 outlasts the 10s phase
    "warnings": 90,
    "idle_send": 30,
    "minimal": 1,
    "cr_only": 20,
    "layout": 110,
    "per_request": 180,  # `within 1m` from 0 ends before the phases do
    "set_status_code": 60,
    "weights": 10999.9999,
    "many_spikes": 500,
    "scaling": 210,  # `reaction <= 1m` and `pod startup max < 1m` wait 1m past 150s
}


def golden(name: str) -> dict[str, Any]:
    """The golden plan of valid corpus file `name`."""
    data: dict[str, Any] = json.loads((VALID / f"{name}.plan.json").read_text(encoding="utf-8"))
    return data


def test_every_valid_file_is_hand_checked() -> None:
    """Each valid corpus file has hand-derived phase arithmetic in this module."""
    assert sorted(PHASES) == sorted(p.stem for p in VALID.glob("*.scn"))
    assert sorted(DURATIONS) == sorted(PHASES)


@pytest.mark.parametrize("name", sorted(PHASES))
def test_phase_offsets_and_counts_match_hand_arithmetic(name: str) -> None:
    """Phase offsets, scheduled totals and per-template counts equal the hand-worked values."""
    plan = golden(name)
    got = [
        (p["name"], p["start_s"], p["end_s"], p["scheduled_total"], p["scheduled"])
        for p in plan["phases"]
    ]
    assert got == PHASES[name]
    totals = [row[3] for row in PHASES[name]]
    expected_total = None if None in totals else sum(t for t in totals if t is not None)
    assert plan["scheduled_total"] == expected_total
    assert plan["duration_s"] == DURATIONS[name]
    assert plan["phases_end_s"] == PHASES[name][-1][2]


def test_burst_instants() -> None:
    """Burst phases count the instants at offsets 0, D, 2D, ... before the phase end."""
    bursts = {p["name"]: p["burst"] for p in golden("bursts")["phases"]}
    assert bursts == {
        "even": {"size": 5, "every_s": 10.0, "count": 6},
        "uneven": {"size": 5, "every_s": 10.0, "count": 7},
        "fractional": {"size": 3, "every_s": 1.5, "count": 3},
        "longer-than-phase": {"size": 10, "every_s": 60.0, "count": 1},
        "single": {"size": 1, "every_s": 0.5, "count": 4},
    }


def segments(plan: dict[str, Any], phase: str) -> list[tuple[float, ...]]:
    """(start, end, rate at start, rate at end, first arrival, count) of a phase's segments."""
    (found,) = [p for p in plan["phases"] if p["name"] == phase]
    return [
        (s["start_s"], s["end_s"], s["rate_start"], s["rate_end"], s["first"], s["count"])
        for s in found["segments"]
    ]


def test_spike_segments_in_a_ramp() -> None:
    """Spikes cut a ramp into pieces whose rates follow the ramp line outside the spikes."""
    # r(t) = 2 + t/10 from the phase start (60s); spikes at [10, 20) and [30, 35).
    assert segments(golden("spikes"), "in-ramp") == [
        (60, 70, 2, 3, 0, 25),  # integral 25
        (70, 80, 20, 20, 25, 200),  # 225
        (80, 90, 4, 5, 225, 45),  # 270
        (90, 95, 30, 30, 270, 150),  # 420
        (95, 120, 5.5, 8, 420, 169),  # 588.75 -> arrivals 420..588
    ]


def test_spike_segments_across_stairs() -> None:
    """A spike over a stair boundary replaces the end of one stair and the start of the next."""
    assert segments(golden("spikes"), "across-stairs") == [
        (120, 128, 1, 1, 0, 8),
        (128, 132, 7, 7, 8, 28),
        (132, 140, 3, 3, 36, 24),
    ]


def test_many_spikes_cut_every_stair() -> None:
    """Fifty stairs with a 2 s spike over each boundary, written last first, and two touching
    spikes at 0s and 1s: the segments alternate stair and spike in time order."""
    expected = [(0, 1, 30, 30), (1, 2, 40, 40), (2, 9, 1, 1)]
    for j in range(1, 50):  # spike over the boundary at 10j, then the rest of stair j (rate j+1)
        expected.append((10 * j - 1, 10 * j + 1, 100, 100))
        expected.append((10 * j + 1, 10 * j + 9 if j < 49 else 500, j + 1, j + 1))
    got = segments(golden("many_spikes"), "stairs")
    assert [s[:4] for s in got] == expected
    assert [s[5] for s in got[:5]] == [30, 40, 7, 200, 16]  # 1 x 7 and 2 x 8 between spikes
    assert all(a[4] + a[5] == b[4] for a, b in pairwise(got))


def test_stairs_of_fractional_width() -> None:
    """`steps 1/s -> 2/s in 3` over 10s has three stairs of 10/3 s at 1, 1.5 and 2 per second."""
    third = 10 / 3
    got = segments(golden("steps"), "thirds")
    assert [s[2] for s in got] == [1, 1.5, 2]
    assert [s[0] for s in got] == pytest.approx([66, 66 + third, 66 + 2 * third], abs=1e-6)
    # integrals 3.33, 5, 6.67: cumulative 3.33 / 8.33 / 15 -> arrivals 0..3, 4..8, 9..14
    assert [(s[4], s[5]) for s in got] == [(0, 4), (4, 5), (9, 6)]


def test_zero_rate_stairs_schedule_nothing() -> None:
    """A stair at 0/s holds no arrivals; the arrivals start on the first stair with load."""
    assert [s[4:] for s in segments(golden("steps"), "from-zero")] == [
        (0, 0),
        (0, 15),
        (15, 30),
    ]


def test_idle_spike_segments() -> None:
    """An idle phase with a spike schedules arrivals only inside the spike window."""
    assert segments(golden("spikes"), "idle-spike") == [
        (170, 190, 0, 0, 0, 0),
        (190, 192.5, 10, 10, 0, 25),
        (192.5, 200, 0, 0, 25, 0),
    ]


def test_expectation_windows() -> None:
    """Replica windows start at their scope's start; `within` may run past the phase end."""
    plan = golden("expectations")
    windows = [
        (e["scope"], e["window"], e.get("start_s"), e.get("end_s"))
        for p in plan["phases"]
        for e in p["expectations"]
        if e["kind"] == "replicas"
    ]
    assert windows == [
        ("warm", "throughout", 0, 60),
        ("warm", "at end", 0, 60),
        ("warm", "within", 0, 30),
        ("hold", "within", 60, 240),  # 3m from 60s, past the phase end at 180s
        ("hold", "throughout", 60, 180),
        ("calm", "at end", 180, 210),
    ]
    assert [(e.get("window"), e.get("start_s"), e.get("end_s")) for e in plan["expectations"]] == [
        (None, None, None),
        (None, None, None),
        (None, None, None),
        (None, None, None),
        ("throughout", 0, 210),
        ("at end", 0, 210),
        ("within", 0, 240),
    ]
    # before/after windows are relative to their stage, so they carry no run offsets
    for stage in ("before", "after"):
        assert all("start_s" not in e for e in plan[stage])
    subjects = [e["subject"] for e in plan["before"]]
    assert subjects == [
        "succeeds",
        "succeeds",
        "ready replicas",  # plain `replicas` means ready replicas
        "ready replicas",
        "desired replicas",
    ]


def test_scaling_windows() -> None:
    """`reaction` and `pod startup` start at their scope's start and are decided up to their
    duration past its end; `pod restarts` is a guard with no window."""
    plan = golden("scaling")
    ramp = plan["phases"][1]["expectations"]
    assert [(e["kind"], e["subject"], e["start_s"], e["end_s"], e["value"]) for e in ramp] == [
        ("reaction", "reaction", 30, 195, 45),  # the ramp ends at 150, + 45s
        ("pod startup", "pod startup p95", 30, 180, 30),
        ("pod startup", "pod startup max", 30, 210, 60),
    ]
    assert [(e["subject"], e["start_s"], e["end_s"]) for e in plan["expectations"]] == [
        ("reaction", 0, 210),  # the last phase ends at 150, + 1m
        ("pod startup p50", 0, 170),
    ]
    assert all("window" not in e for e in (*ramp, *plan["expectations"]))
    assert [(g["subject"], g["comparator"], g["value"], g["over_s"]) for g in plan["guards"]] == [
        ("pod restarts", ">", 3, None)
    ]


def test_expectation_values_are_in_base_units() -> None:
    """Latency thresholds are seconds, percentages are percent, replica counts are counts."""
    warm = golden("expectations")["phases"][0]["expectations"]
    values = {e["subject"]: e["value"] for e in warm if e["kind"] != "replicas"}
    assert values == {
        "p50": 0.1,
        "p90": 0.2,
        "p95": 1.0,
        "p99": 5.0,
        "max": 10.0,
        "mean": 0.001,
        "errors": 0.0,
        "achieved": 99.5,
    }


def test_kills_are_run_offsets() -> None:
    """`at T kill N pods` is placed at the phase start plus T."""
    kills = [
        (k["phase"], k["at_s"], k["count"])
        for p in golden("guards_kills")["phases"]
        for k in p["kills"]
    ]
    assert kills == [("first", 0, 1), ("first", 30, 2), ("second", 119.5, 1), ("third", 159, 3)]


def test_guards() -> None:
    """Guards keep their subject, threshold in base units and window (none for replicas)."""
    guards = [
        (g["subject"], g["comparator"], g["value"], g["over_s"])
        for g in golden("guards_kills")["guards"]
    ]
    assert guards == [
        ("errors", ">", 50, 30),
        ("errors", ">=", 10.5, 60),
        ("p50", ">", 1, 10),
        ("p90", ">", 2, 10),
        ("p95", ">", 3, 20),
        ("p99", ">=", 5, 60),
        ("max", ">", 30, 5),
        ("mean", ">", 0.5, 15),
        ("replicas", ">", 20, None),
        ("replicas", "<", 1, None),
        ("replicas", "==", 0, None),
        ("replicas", "!=", 7, None),
        ("replicas", "<=", 0, None),
    ]


def test_stress_mapping() -> None:
    """Stress options map onto the consumer's query: cpu, memory in MB, whole seconds, modes."""
    plan = golden("settings_stress")
    specs = {name: t["stress"] for name, t in plan["templates"].items() if t["stress"]}
    assert specs == {
        "defaults": {  # only `for`: cpu 1, 10 MB, async, immediate cleanup
            "cpu_intensity": 1,
            "memory_mb": 10,
            "duration_s": 1,
            "async_mode": True,
            "immediate_cleanup": True,
        },
        "everything": {
            "cpu_intensity": 10,
            "memory_mb": 500,
            "duration_s": 60,
            "async_mode": False,  # sync
            "immediate_cleanup": False,  # keep
        },
        "kilobytes": {  # 10240KB = 10MB, 1000ms = 1s
            "cpu_intensity": 1,
            "memory_mb": 10,
            "duration_s": 1,
            "async_mode": True,
            "immediate_cleanup": True,
        },
        "gigabytes": {  # 0.25GB = 256MB, 1m = 60s
            "cpu_intensity": 1,
            "memory_mb": 256,
            "duration_s": 60,
            "async_mode": True,
            "immediate_cleanup": True,
        },
        "keeper": {
            "cpu_intensity": 5,
            "memory_mb": 10,
            "duration_s": 30,
            "async_mode": True,
            "immediate_cleanup": False,
        },
    }
    everything = plan["templates"]["everything"]
    assert everything["method"] == "POST"
    assert everything["path"] == "/v2/process"  # settings' stress_path
    assert everything["query"] == {
        "cpu_intensity": "10",
        "memory_size": "500",
        "duration": "60",
        "async_mode": "false",
        "immediate_cleanup": "false",
    }
    assert plan["templates"]["plain"]["ok_status"] == ["200", "204"]


def test_settings() -> None:
    """Every settings line reaches the plan in base units; defaults fill the rest."""
    assert golden("settings_stress")["settings"] == {
        "timeout_s": 45.0,
        "max_inflight": 250,
        "connection_max_age_s": 0.0,
        "trace_sample": 12.5,
        "stress_path": "/v2/process",
        "headers": {"X-Run": "nightly"},
    }
    assert golden("minimal")["settings"] == {
        "timeout_s": 30.0,
        "max_inflight": 1000,
        "connection_max_age_s": 30.0,
        "trace_sample": 100.0,
        "stress_path": "/process",
        "headers": {},
    }


def test_params_reach_every_position() -> None:
    """Param values appear wherever they were referenced (settings, requests, shapes, windows)."""
    plan = golden("params")
    assert plan["description"] == "Params in every value position"
    assert plan["target"] == "http://svc.example:9000"
    assert plan["watch"] == {"deployment": "svc", "namespace": "ns-1"}
    assert plan["settings"] == {
        "timeout_s": 5.0,
        "max_inflight": 2,
        "connection_max_age_s": 45.0,
        "trace_sample": 2.0,
        "stress_path": "/api/items",
        "headers": {"X-Token": "t0ken"},
    }
    create = plan["templates"]["create"]
    assert create["path"] == "/api/items"
    assert create["query"] == {"verbose": "true", "page": "0.5"}
    assert create["headers"] == {"X-Token": "t0ken", "X-Trace": "t0ken"}
    assert create["body"] == '{"k": 1}'
    assert create["ok_status"] == ["201"]
    assert plan["templates"]["list"]["ok_status"] == ["2xx"]
    assert plan["templates"]["crunch"]["stress"]["cpu_intensity"] == 4
    assert plan["templates"]["crunch"]["stress"]["memory_mb"] == 64
    assert plan["templates"]["crunch"]["stress"]["duration_s"] == 3
    phases = {p["name"]: p for p in plan["phases"]}
    assert phases["from-param"]["shape_text"] == "rate 20/s"
    assert phases["from-param"]["spikes"] == ["spike 20/s for 5s at 5s"]
    assert phases["from-param"]["mix"] == {"create": 75.0, "list": 25.0}
    assert phases["from-param"]["kills"] == [{"phase": "from-param", "at_s": 10.0, "count": 2}]
    assert phases["steps"]["shape_text"] == "steps 2/s -> 20/s in 3"
    assert phases["users"]["users"] == {"count": 5, "think_s": 0.25}
    assert phases["burst"]["burst"] == {"size": 4, "every_s": 5.0, "count": 6}
    values = [(e["subject"], e["value"]) for e in phases["from-param"]["expectations"]]
    assert values == [("ready replicas", 2.0), ("p95", 0.8), ("errors", 2.0)]
    assert [(g["value"], g["over_s"]) for g in plan["guards"]] == [
        (75.0, 30.0),
        (0.8, 5.0),
        (2.0, None),
    ]
    assert plan["cleanup"][0] == {"template": None, "method": "DELETE", "path": "/api/items"}


def test_secrets_are_masked() -> None:
    """env() values and credential headers show as ***; other values are shown as written."""
    plan = golden("secrets")
    assert plan["target"] == "***"
    # a param sent as a credential header is masked in the params too; others are shown
    assert plan["params"] == {"api_key": "***", "session": "***", "plain": "shown-param"}
    assert plan["settings"]["headers"] == {
        "Authorization": "***",
        "X-Request-Source": "nimbus",
        "Cookie": "***",
    }
    settings_headers = {"Authorization": "***", "X-Request-Source": "nimbus", "Cookie": "***"}
    private = plan["templates"]["private"]
    assert private["headers"] == {
        **settings_headers,
        "X-Api-Key": "***",
        "PROXY-AUTHORIZATION": "***",  # header names are matched without case
        "X-Plain": "visible",
        "X-Also-Plain": "shown-param",
    }
    login = plan["templates"]["login"]
    assert login["headers"] == {**settings_headers, "proxy-authorization": "***"}
    assert private["query"] == {"token": "***", "plain": "shown"}
    assert private["body"] == "***"
    text = (VALID / "secrets.plan.json").read_text(encoding="utf-8")
    secrets = ("Zm9vOmJhcg", "session=abc", "from-a-param", "API_TOKEN", "TARGET_URL")
    for secret in secrets:
        assert secret not in text


def test_memory_in_flight_by_littles_law() -> None:
    """Planned stress memory in flight is rate x hold time x size (Little's law)."""
    assert golden("warnings")["peak_memory_in_flight_mb"] == 2 * 30 * 200
    assert golden("params")["peak_memory_in_flight_mb"] == 20 * 3 * 64
    assert golden("comments")["peak_memory_in_flight_mb"] == 8 * 2 * 10 * 0.5
    warnings = golden("warnings")["warnings"]
    assert len(warnings) == 3
    assert "11.7 GiB" in warnings[1]  # 12000 MB
    assert warnings[2].startswith("no `target`")
    assert golden("rates")["warnings"] == []


def test_validation_warnings_come_first_in_the_plan() -> None:
    """The plan lists validation's warnings (with their line) before its own."""
    idle = "this idle phase has no spike, so its `send` sends nothing"
    assert golden("warnings")["warnings"][0] == f"line 12: {idle}"
    assert golden("idle_send")["warnings"] == [f"line 13: {idle}"]


def test_cleanup_order() -> None:
    """Cleanup steps keep their written order, templates and inline requests alike."""
    steps = [(c["template"], c["method"], c["path"]) for c in golden("cleanup")["cleanup"]]
    assert steps == [
        (None, "DELETE", "/process/cleanup"),
        ("reset", None, None),
        (None, "POST", "/flush"),
        (None, "PUT", "/state"),
        (None, "PATCH", "/state"),
        (None, "GET", "/health"),
        (None, "HEAD", "/health"),
    ]

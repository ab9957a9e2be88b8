"""Properties of the exact arithmetic: arrivals, phase tiling, send mixes (Hypothesis) and
shard shares.

The integral of the rate is computed here independently, with fractions, from the language
page's definitions of the shapes and spikes; the plan must agree with it exactly.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from itertools import islice, pairwise

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.arrivals import (
    arrival_times,
    integer_weights,
    last_arrival_offset,
    mix_chooser,
    mix_counts,
    mix_order,
    shard_share,
)
from nimbus_scenarios.plan.model import Plan

# ---------------------------------------------------------------- values as text and exactly


@dataclass(frozen=True)
class Rate:
    """A rate literal and its exact value per second."""

    text: str
    per_s: Fraction


@dataclass(frozen=True)
class Duration:
    """A duration literal and its exact value in seconds."""

    text: str
    s: Fraction


@st.composite
def rates(draw: st.DrawFn, *, zero: bool = False) -> Rate:
    """Rates such as `3/s`, `0.3/s`, `1.25/s` or `90/m`; zero only when `zero`."""
    unit = draw(st.sampled_from(["s", "s", "m"]))
    top = 2000 if unit == "s" else 60000
    low = 0 if zero else 1
    # tenths (0.1/s, 0.3/s) often: their floats are inexact, so they catch float arithmetic
    hundredths = draw(st.integers(low, top) | st.integers(low, top // 10).map(lambda t: t * 10))
    whole, frac = divmod(hundredths, 100)
    text = f"{whole}" if frac == 0 else f"{whole}.{frac:02d}".rstrip("0")
    value = Fraction(hundredths, 100) / (60 if unit == "m" else 1)
    return Rate(f"{text}/{unit}", value)


def duration_text(ms: int) -> str:
    """A duration of `ms` milliseconds in one of the spellings the language allows."""
    if ms % 60000 == 0:
        return f"{ms // 60000}m"
    if ms > 60000 and ms % 1000 == 0:
        return f"{ms // 60000}m{ms % 60000 // 1000}s"
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    if ms % 100 == 0:
        return f"{ms / 1000:g}s"
    return f"{ms}ms"


def duration(ms: int) -> Duration:
    """A `Duration` of `ms` milliseconds."""
    return Duration(duration_text(ms), Fraction(ms, 1000))


# ---------------------------------------------------------------- open-model phases


@dataclass(frozen=True)
class Spike:
    """`spike R for D at T` in exact terms."""

    rate: Rate
    at: Duration
    length: Duration

    def text(self) -> str:
        """The spike statement."""
        return f"spike {self.rate.text} for {self.length.text} at {self.at.text}"


@dataclass(frozen=True)
class OpenPhase:
    """An open-model phase: its shape (rate, ramp, steps or idle), length and spikes."""

    shape: str
    first: Rate
    last: Rate
    stairs: int
    length: Duration
    spikes: tuple[Spike, ...]

    def text(self, index: int) -> str:
        """The phase block."""
        shape = {
            "rate": f"rate {self.first.text}",
            "ramp": f"ramp {self.first.text} -> {self.last.text}",
            "steps": f"steps {self.first.text} -> {self.last.text} in {self.stairs}",
            "idle": "idle",
        }[self.shape]
        lines = [f'  phase "p{index}" {self.length.text} {{', f"    {shape}"]
        lines += [f"    {s.text()}" for s in self.spikes]
        lines += ["    send work", "  }"]
        return "\n".join(lines)

    def base_rate_integral(self, a: Fraction, b: Fraction) -> Fraction:
        """The integral of the shape's own rate (no spikes) over [a, b] of the phase."""
        if b <= a:
            return Fraction(0)
        length = self.length.s
        r1, r2 = self.first.per_s, self.last.per_s
        match self.shape:
            case "rate":
                return r1 * (b - a)
            case "ramp":

                def at(t: Fraction) -> Fraction:
                    return r1 + (r2 - r1) * t / length

                return (at(a) + at(b)) / 2 * (b - a)
            case "steps":
                total = Fraction(0)
                width = length / self.stairs
                for j in range(self.stairs):
                    lo, hi = max(a, width * j), min(b, width * (j + 1))
                    if lo < hi:
                        rate = r1 if self.stairs == 1 else r1 + (r2 - r1) * j / (self.stairs - 1)
                        total += rate * (hi - lo)
                return total
            case _:
                return Fraction(0)

    def integral(self, t: Fraction) -> Fraction:
        """The integral of the phase's rate, spikes included, from its start to `t`."""
        t = min(max(t, Fraction(0)), self.length.s)
        total = self.base_rate_integral(Fraction(0), t)
        for spike in self.spikes:
            lo, hi = spike.at.s, min(spike.at.s + spike.length.s, t)
            if lo < hi:
                total += spike.rate.per_s * (hi - lo) - self.base_rate_integral(lo, hi)
        return total


@st.composite
def spike_lists(draw: st.DrawFn, length_ms: int, *, at_least: int) -> tuple[Spike, ...]:
    """Up to three spikes that fit in the phase and do not overlap (they may touch)."""
    count = draw(st.integers(at_least, 3))
    cuts = sorted(draw(st.lists(st.integers(0, length_ms), min_size=2 * count, max_size=2 * count)))
    spikes = []
    for i in range(count):
        start, end = cuts[2 * i], cuts[2 * i + 1]
        if end == start:
            continue
        spikes.append(Spike(draw(rates()), duration(start), duration(end - start)))
    if len(spikes) < at_least:
        spikes.append(Spike(draw(rates()), duration(0), duration(length_ms)))
    order = draw(st.permutations(range(len(spikes))))
    return tuple(spikes[i] for i in order)


@st.composite
def open_phases(draw: st.DrawFn) -> OpenPhase:
    """A random open-model phase of at most 20 s with rates of at most 20/s."""
    shape = draw(st.sampled_from(["rate", "ramp", "steps", "idle"]))
    # whole seconds often, so that integrals are often whole numbers (where ceil is sharpest)
    length_ms = draw(st.integers(1, 20000) | st.integers(1, 20).map(lambda s: s * 1000))
    first = draw(rates(zero=shape in {"ramp", "steps"}))
    last = draw(rates(zero=True))
    if shape in {"ramp", "steps"} and first.per_s == 0 and last.per_s == 0:
        last = Rate("1/s", Fraction(1))
    stairs = draw(st.integers(1, 6))
    with_spikes = draw(st.booleans())
    at_least = 1 if shape == "idle" else 0
    spikes = draw(spike_lists(length_ms, at_least=at_least)) if with_spikes or at_least else ()
    return OpenPhase(shape, first, last, stairs, duration(length_ms), spikes)


def scenario_text(phase_blocks: list[str]) -> str:
    """A complete scenario around the given phase blocks."""
    return "\n".join(
        [
            'scenario "property" {',
            '  target "http://svc.example"',
            '  request work = GET "/work"',
            '  request other = GET "/other"',
            *phase_blocks,
            "}",
            "",
        ]
    )


def compile_text(text: str) -> Plan:
    """A plan from scenario text."""
    return compile_source(Source("property.scn", text))


TOLERANCE = 1e-6
NUDGE = Fraction(1, 10**6)  # a microsecond


# Whole integrals from rates whose floats are inexact: float arithmetic gets their ceil wrong.
TENTH = Rate("0.1/s", Fraction(1, 10))
ZERO = Rate("0/s", Fraction(0))


@settings(max_examples=100, deadline=None)
@given(st.lists(open_phases(), min_size=1, max_size=3))
@example([OpenPhase("rate", TENTH, ZERO, 1, duration(30000), ())])
@example([OpenPhase("rate", Rate("1.1/s", Fraction(11, 10)), ZERO, 1, duration(10000), ())])
@example([OpenPhase("ramp", TENTH, Rate("0.3/s", Fraction(3, 10)), 1, duration(10000), ())])
@example(
    [
        OpenPhase(
            "idle",
            ZERO,
            ZERO,
            1,
            duration(10000),
            (
                Spike(Rate("2/s", Fraction(2)), duration(0), duration(1000)),
                Spike(Rate("2/s", Fraction(2)), duration(5000), duration(1000)),
            ),
        )
    ]
)
def test_open_model_arrivals_follow_the_integral(phases: list[OpenPhase]) -> None:
    """Arrivals number ceil(integral), lie in the phase, are ordered, and track the integral."""
    plan = compile_text(scenario_text([p.text(i) for i, p in enumerate(phases)]))
    start = Fraction(0)
    for spec, compiled in zip(phases, plan.phases, strict=True):
        total = spec.integral(spec.length.s)
        assert compiled.scheduled_total == math.ceil(total)
        arrivals = list(arrival_times(compiled))
        assert len(arrivals) == compiled.scheduled_total
        assert arrivals == sorted(arrivals)
        assert all(compiled.start_s <= a < compiled.end_s for a in arrivals)
        for k, at in enumerate(arrivals):
            offset = Fraction(at) - start
            # arrival k is where the integral reaches k ...
            assert abs(float(spec.integral(offset)) - k) <= TOLERANCE
            # ... and the integral passes k right after it (no arrival where the rate is zero)
            assert spec.integral(offset + NUDGE) > k
            # the number of arrivals before a moment stays within 1 of the integral up to it
            before = bisect.bisect_left(arrivals, at)
            assert abs(before - float(spec.integral(offset))) <= 1 + TOLERANCE
        for probe in range(11):
            offset = spec.length.s * probe / 10
            moment = float(start + offset)
            before = bisect.bisect_left(arrivals, moment)
            assert abs(before - float(spec.integral(offset))) <= 1 + TOLERANCE
        start += spec.length.s


@settings(max_examples=60, deadline=None)
@given(st.lists(open_phases(), min_size=1, max_size=3), st.lists(st.floats(-1, 70), max_size=30))
def test_rate_at_finds_the_segment_holding_the_moment(
    phases: list[OpenPhase], moments: list[float]
) -> None:
    """The plan's target rate at a moment is its segment's line there, as a scan over every
    phase and segment finds it (rate_at searches them by bisection)."""
    plan = compile_text(scenario_text([p.text(i) for i, p in enumerate(phases)]))
    boundaries = [s.start_s for p in plan.phases for s in p.segments]
    for t in [*moments, *boundaries, plan.phases_end_s]:
        expected = 0.0
        for segment in (s for p in plan.phases for s in p.segments):
            if segment.start_s <= t < segment.end_s:
                share = (t - segment.start_s) / (segment.end_s - segment.start_s)
                expected = segment.rate_start + (segment.rate_end - segment.rate_start) * share
                break
        assert plan.rate_at(t) == expected


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 50), st.integers(100, 60000), st.integers(1, 60000), st.integers(0, 60000))
def test_burst_arrivals(size: int, every_ms: int, length_ms: int, lead_ms: int) -> None:
    """`burst N every D` sends N at each offset 0, D, 2D, ... strictly before the phase end."""
    every, length = duration(every_ms), duration(length_ms)
    blocks = []
    if lead_ms:
        blocks.append(f'  phase "lead" {duration_text(lead_ms)} {{\n    idle\n  }}')
    blocks.append(
        f'  phase "b" {length.text} {{\n    burst {size} every {every.text}\n    send work\n  }}'
    )
    plan = compile_text(scenario_text(blocks))
    burst = plan.phases[-1]
    start = Fraction(lead_ms, 1000)
    instants = [start + every.s * j for j in range(math.ceil(length.s / every.s))]
    assert all(t - start < length.s for t in instants)
    assert burst.scheduled_total == size * len(instants)
    got = list(arrival_times(burst))
    expected = [float(t) for t in instants for _ in range(size)]
    assert got == pytest.approx(expected, rel=0, abs=1e-9)


@st.composite
def any_phase(draw: st.DrawFn) -> tuple[str, Fraction]:
    """Any phase block (every shape) and its exact length."""
    length_ms = draw(st.integers(1, 3_600_000))
    length = duration(length_ms)
    shape = draw(
        st.sampled_from(
            [
                "rate 1/s",
                "ramp 0/s -> 2/s",
                "steps 1/s -> 3/s in 3",
                "users 3 think 1s",
                "users 1",
                "burst 2 every 7s",
                "idle",
            ]
        )
    )
    send = "" if shape == "idle" else "\n    send work"
    return f'  phase "{{name}}" {length.text} {{\n    {shape}{send}\n  }}', length.s


@settings(max_examples=60, deadline=None)
@given(st.lists(any_phase(), min_size=1, max_size=8))
def test_phases_tile_the_timeline(phases: list[tuple[str, Fraction]]) -> None:
    """The first phase starts at 0, each next one where the previous ended, the last at the sum."""
    blocks = [block.replace("{name}", f"p{i}") for i, (block, _) in enumerate(phases)]
    plan = compile_text(scenario_text(blocks))
    assert plan.phases[0].start_s == 0
    for previous, current in pairwise(plan.phases):
        assert current.start_s == previous.end_s
    ends = [sum((length for _, length in phases[: i + 1]), Fraction(0)) for i in range(len(phases))]
    assert [p.end_s for p in plan.phases] == [float(e) for e in ends]
    assert plan.phases_end_s == float(ends[-1])
    assert [p.index for p in plan.phases] == list(range(len(phases)))


# ---------------------------------------------------------------- send mixes


def reference_swrr(weights: list[int], picks: int) -> list[int]:
    """nginx's smooth weighted round robin, written out here: the first highest wins a tie."""
    current = [0] * len(weights)
    chosen = []
    for _ in range(picks):
        current = [c + w for c, w in zip(current, weights, strict=True)]
        best = max(range(len(weights)), key=lambda i: (current[i], -i))
        current[best] -= sum(weights)
        chosen.append(best)
    return chosen


def reference_sainte_lague(weights: list[int], picks: int) -> list[int]:
    """The Sainte-Laguë order by its definition, with fractions: each arrival goes to the largest
    w / (2c + 1), the first of equals."""
    counts = [0] * len(weights)
    chosen = []
    for _ in range(picks):
        best = max(range(len(weights)), key=lambda i: (Fraction(weights[i], 2 * counts[i] + 1), -i))
        counts[best] += 1
        chosen.append(best)
    return chosen


def tally(picks: list[int], templates: int) -> list[int]:
    """How many picks each of `templates` templates got."""
    counts = Counter(picks)
    return [counts[i] for i in range(templates)]


@st.composite
def weight_lists(draw: st.DrawFn) -> list[Fraction]:
    """2 to 5 positive percentages with one decimal (33.3%) that add up to exactly 100%."""
    count = draw(st.integers(1, 5))
    cuts = sorted(draw(st.sets(st.integers(1, 999), min_size=count - 1, max_size=count - 1)))
    bounds = [0, *cuts, 1000]
    return [Fraction(hi - lo, 10) for lo, hi in pairwise(bounds)]


small_weights = st.lists(st.integers(1, 12) | st.integers(1, 400), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(small_weights, st.integers(0, 300))
def test_mix_order_is_the_sainte_lague_order(weights: list[int], total: int) -> None:
    """mix_order picks, arrival by arrival, what the definition with fractions picks."""
    assert list(islice(mix_order(weights), total)) == reference_sainte_lague(weights, total)


@settings(max_examples=150, deadline=None)
@given(small_weights, st.integers(0, 300))
def test_mix_counts_equal_walking_the_order(weights: list[int], total: int) -> None:
    """The closed form gives, after every prefix, the counts of walking the order one by one."""
    picks = reference_sainte_lague(weights, total)
    for n in range(total + 1):
        assert mix_counts(weights, n) == tally(picks[:n], len(weights))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(1, 3))
@example(1, 1, 2)
@example(33333331, 66666669, 1)  # the 10^8 cycle of issue 17, its first 300 picks
def test_two_templates_are_nginx_smooth_weighted_round_robin(a: int, b: int, cycles: int) -> None:
    """For two templates the order is nginx's smooth weighted round robin, pick for pick, over
    whole cycles (up to 300 picks), and so are the closed-form counts."""
    picks = min((a + b) * cycles, 300)
    order = list(islice(mix_order([a, b]), picks))
    assert order == reference_swrr([a, b], picks)
    assert mix_counts([a, b], picks) == tally(order, 2)


@settings(max_examples=100, deadline=None)
@given(small_weights, st.integers(0, 10**12), st.integers(0, 200))
def test_mix_counts_repeat_by_whole_cycles(weights: list[int], cycles: int, rest: int) -> None:
    """After any number of whole cycles the counts are the weights times the cycles, and the
    order starts over: the closed form at 10^12 cycles agrees with a walk of the remainder."""
    cycle = sum(weights)
    rest %= cycle
    walked = tally(reference_sainte_lague(weights, rest), len(weights))
    expected = [w * cycles + c for w, c in zip(weights, walked, strict=True)]
    assert mix_counts(weights, cycle * cycles + rest) == expected


@settings(max_examples=100, deadline=None)
@given(weight_lists(), st.integers(1, 3))
def test_every_full_cycle_holds_the_weights(weights: list[Fraction], cycles: int) -> None:
    """Each full cycle of the reduced weights holds every weight exactly."""
    ints = integer_weights(weights)
    assert all(i > 0 for i in ints)
    assert [Fraction(i, sum(ints)) for i in ints] == [w / 100 for w in weights]
    cycle = sum(ints)
    picks = list(islice(mix_order(ints), cycle * cycles))
    for c in range(cycles):
        assert tally(picks[c * cycle : (c + 1) * cycle], len(ints)) == ints
    assert mix_counts(ints, cycle * cycles) == [i * cycles for i in ints]


def mix_scenario(texts: list[str], per_second: int) -> str:
    """A one-second phase at `per_second` sending templates t0, t1, ... with weights `texts`."""
    names = [f"t{i}" for i in range(len(texts))]
    mix = ", ".join(f"{w}% {name}" for w, name in zip(texts, names, strict=True))
    return "\n".join(
        [
            'scenario "mix" {',
            *(f'  request {name} = GET "/{name}"' for name in names),
            '  phase "p" 1s {',
            f"    rate {per_second}/s",
            f"    send {mix if len(names) > 1 else names[0]}",
            "  }",
            "}",
            "",
        ]
    )


@st.composite
def decimal_weights(draw: st.DrawFn) -> tuple[list[str], list[Fraction]]:
    """2 to 4 percentages written with 7 to 9 decimals that add up to exactly 100%, as text and
    as the exact fractions the text means."""
    places = draw(st.integers(7, 9))
    whole = 100 * 10**places
    count = draw(st.integers(2, 4))
    cuts = sorted(draw(st.sets(st.integers(1, whole - 1), min_size=count - 1, max_size=count - 1)))
    units = [hi - lo for lo, hi in pairwise([0, *cuts, whole])]
    texts = [f"{u // 10**places}.{u % 10**places:0{places}d}" for u in units]
    return texts, [Fraction(u, 10**places) for u in units]


@settings(max_examples=100, deadline=None)
@given(decimal_weights(), st.integers(1, 2000))
@example(
    (
        ["33.3333333", "33.3333333", "33.3333334"],
        [Fraction(333333333, 10**7), Fraction(333333333, 10**7), Fraction(333333334, 10**7)],
    ),
    1000,
)
def test_weights_are_exact(weights: tuple[list[str], list[Fraction]], per_second: int) -> None:
    """A mix written with many decimals is split by its exact weights, never by floats: the
    compiled counts equal the order walked on the fractions' integer ratios."""
    texts, exact = weights
    phase = compile_text(mix_scenario(texts, per_second)).phases[0]
    scale = math.lcm(*(w.denominator for w in exact))
    ratios = [int(w * scale) for w in exact]
    divisor = math.gcd(*ratios)
    assert list(phase.weights) == [r // divisor for r in ratios]
    walked = tally(reference_sainte_lague(ratios, per_second), len(texts))
    assert phase.scheduled == {f"t{i}": count for i, count in enumerate(walked)}


def test_the_largest_of_near_thirds_gets_the_odd_arrival() -> None:
    """33.3333333%, 33.3333333%, 33.3333334% of 1,000 arrivals: the largest weight, c's, gets the
    334th (through a float and limit_denominator(10**6) it went to a)."""
    texts = ["33.3333333", "33.3333333", "33.3333334"]
    phase = compile_text(mix_scenario(texts, 1000)).phases[0]
    assert phase.scheduled == {"t0": 333, "t1": 333, "t2": 334}


@settings(max_examples=40, deadline=None)
@given(weight_lists(), st.integers(1, 400))
def test_phase_mix_counts_through_the_compiler(weights: list[Fraction], per_second: int) -> None:
    """A compiled phase splits its scheduled arrivals in Sainte-Laguë order."""
    texts = [f"{float(w):g}" for w in weights]
    phase = compile_text(mix_scenario(texts, per_second)).phases[0]
    assert phase.scheduled_total == per_second
    counts = tally(reference_sainte_lague(integer_weights(weights), per_second), len(weights))
    assert phase.scheduled == {f"t{i}": count for i, count in enumerate(counts)}


# ---------------------------------------------------------------- worked examples


def arrivals_of(body: str, length: str = "10s") -> list[float]:
    """Arrival offsets of a one-phase scenario whose phase holds `body`."""
    text = scenario_text([f'  phase "p" {length} {{\n{body}\n    send work\n  }}'])
    return list(arrival_times(compile_text(text).phases[0]))


def test_constant_rate_arrivals() -> None:
    """2/s for 30s is 60 arrivals every half second; 0.3/s for 10s is 3, every 10/3 s."""
    assert arrivals_of("    rate 2/s", "30s") == pytest.approx([k / 2 for k in range(60)])
    assert arrivals_of("    rate 0.3/s") == pytest.approx([0, 10 / 3, 20 / 3])


def test_ramp_arrivals_solve_the_quadratic() -> None:
    """A ramp 0 -> 10/s over 10s has 50 arrivals; the integral t^2 / 2 reaches k at sqrt(2k)."""
    got = arrivals_of("    ramp 0/s -> 10/s")
    assert got == pytest.approx([math.sqrt(2 * k) for k in range(50)], abs=1e-9)


def test_no_arrival_where_the_rate_is_zero() -> None:
    """Zero-rate stretches hold no arrival: the first one is where the load starts.

    The language page says the k-th arrival is at "the first moment the integral reaches k";
    read literally that puts arrival 0 of an idle phase with a later spike at the phase start
    (the integral is 0 there), and an arrival at the end of a spike whose integral is whole.
    The plan instead places arrival k where the integral passes k, so that every arrival falls
    where the rate is above zero, as the spike and idle rules require.
    """
    assert arrivals_of("    idle\n    spike 2/s for 2s at 6s") == pytest.approx([6, 6.5, 7, 7.5])
    assert arrivals_of("    steps 0/s -> 1/s in 2")[:2] == pytest.approx([5, 6])
    two_spikes = arrivals_of("    idle\n    spike 2/s for 1s at 0s\n    spike 2/s for 1s at 5s")
    assert two_spikes == pytest.approx([0, 0.5, 5, 5.5])


def test_shard_share_splits_exactly() -> None:
    """Shard shares of every total add up to the total and differ by at most one."""
    for total in range(40):
        for count in range(1, 6):
            shares = [shard_share(total, i, count) for i in range(count)]
            assert sum(shares) == total
            assert max(shares) - min(shares) <= 1


@settings(max_examples=150, deadline=None)
@given(small_weights, st.integers(1, 3))
def test_mix_chooser_is_the_mix_order(weights: list[int], cycles: int) -> None:
    """The chooser the engine steps (a replayed cycle, or template 0 for one template) picks
    what mix_order picks, over several whole cycles and a part of one."""
    picks = sum(weights) * cycles + 7
    assert list(islice(mix_chooser(weights), picks)) == list(islice(mix_order(weights), picks))


@pytest.mark.parametrize(
    "shape",
    [
        "rate 7/s",
        "rate 0.3/s",
        "ramp 2/s -> 40/s",
        "ramp 40/s -> 0/s",
        "steps 1/s -> 9/s in 4",
        "burst 25 every 7s",
        "rate 3/s\n    spike 50/s for 5s at 10s",
    ],
)
def test_last_arrival_offset_is_the_last_arrival(shape: str) -> None:
    """last_arrival_offset, computed without walking the arrivals, is exactly the offset of
    the last one arrival_times yields (the pacer's ticks never end after it)."""
    text = f"""scenario "s" {{
  request a = GET "/a"
  phase "warm" 3s {{
    rate 1/s
    send a
  }}
  phase "p" 1m {{
    {shape}
    send a
  }}
}}
"""
    phase = compile_source(Source("s.scn", text), max_rate=1_000_000).phases[1]
    assert last_arrival_offset(phase) == list(arrival_times(phase))[-1]


def test_a_phase_without_arrivals_has_no_last_arrival() -> None:
    """An idle phase schedules nothing, and so has no last arrival."""
    text = """scenario "s" {
  request a = GET "/a"
  phase "p" 10s {
    idle
  }
}
"""
    phase = compile_source(Source("s.scn", text), max_rate=1_000_000).phases[0]
    assert list(arrival_times(phase)) == []
    assert last_arrival_offset(phase) is None

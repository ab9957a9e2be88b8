"""Spikes cut into a phase's rate pieces in one sweep (`plan.pieces`), checked against the
quadratic algorithm it replaced, and held to a linear amount of work by counting loop steps."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.pieces import Piece, Tally, Window, segments, stairs, with_spikes

Quad = tuple[Fraction, Fraction, Fraction, Fraction]


def quadratic_reference(pieces: list[Quad], spikes: list[Window]) -> list[Quad]:
    """The plan's algorithm before issue 17: each spike, in the order written, cuts every piece
    and re-sorts them all (P x S work)."""

    def lerp(start: Fraction, end: Fraction, r0: Fraction, r1: Fraction, at: Fraction) -> Fraction:
        if end == start:
            return r0
        return r0 + (r1 - r0) * (at - start) / (end - start)

    for at, until, rate in spikes:
        result: list[Quad] = []
        for start, end, r0, r1 in pieces:
            for lo, hi in ((start, min(end, at)), (max(start, until), end)):
                if lo < hi:
                    result.append(
                        (lo, hi, lerp(start, end, r0, r1, lo), lerp(start, end, r0, r1, hi))
                    )
        result.append((at, until, rate, rate))
        pieces = sorted(result)
    return pieces


fractions = st.builds(Fraction, st.integers(0, 400), st.sampled_from([1, 2, 3, 10, 7]))


@st.composite
def base_pieces(draw: st.DrawFn) -> list[Piece]:
    """1 to 40 pieces tiling [0, L): flat stairs or ramps, at cut points on a fine grid."""
    cuts = sorted(draw(st.sets(st.integers(1, 399), max_size=39)))
    bounds = [Fraction(c, 4) for c in [0, *cuts, 400]]
    pieces = []
    for lo, hi in pairwise(bounds):
        r0 = draw(fractions)
        r1 = draw(st.just(r0) | fractions)
        pieces.append(Piece(lo, hi, r0, r1))
    return pieces


@st.composite
def spike_windows(draw: st.DrawFn, length: Fraction) -> list[Window]:
    """Up to 40 spikes inside [0, length) that do not overlap (they may touch), in any order."""
    count = draw(st.integers(0, 40))
    grid = int(length * 4)
    cuts = sorted(draw(st.lists(st.integers(0, grid), min_size=2 * count, max_size=2 * count)))
    windows = [
        Window(Fraction(cuts[2 * i], 4), Fraction(cuts[2 * i + 1], 4), draw(fractions) + 1)
        for i in range(count)
        if cuts[2 * i] < cuts[2 * i + 1]
    ]
    return draw(st.permutations(windows))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_one_sweep_equals_the_quadratic_algorithm(data: st.DataObject) -> None:
    """Cutting spikes in one sweep gives exactly the pieces the old per-spike rebuild gave."""
    pieces = data.draw(base_pieces())
    spikes = data.draw(spike_windows(pieces[-1].end))
    assert with_spikes(pieces, spikes) == quadratic_reference(list(pieces), spikes)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_work_is_linear_in_pieces_and_spikes(data: st.DataObject) -> None:
    """Pieces out and loop steps stay within a constant times pieces in plus spikes.

    The old algorithm took a step per piece per spike: 40 pieces and 40 spikes were 1,600+ steps,
    far above the bound.
    """
    pieces = data.draw(base_pieces())
    spikes = data.draw(spike_windows(pieces[-1].end))
    tally = Tally()
    result = with_spikes(pieces, spikes, tally)
    assert len(result) <= len(pieces) + 2 * len(spikes)
    segments(result, Fraction(0), tally)
    assert tally.steps <= 5 * len(pieces) + 6 * len(spikes)


def test_the_tally_counts_the_steps_taken() -> None:
    """The tally is not idle: a piece and a spike in its middle take a step each way at least."""
    tally = Tally()
    pieces = [Piece(Fraction(0), Fraction(10), Fraction(1), Fraction(1))]
    result = with_spikes(pieces, [Window(Fraction(4), Fraction(5), Fraction(9))], tally)
    assert [(p.start, p.end, p.rate_start) for p in result] == [(0, 4, 1), (4, 5, 9), (5, 10, 1)]
    assert tally.steps >= 3


@settings(max_examples=100, deadline=None)
@given(fractions, fractions, st.integers(1, 30), st.integers(1, 600))
def test_stairs_are_the_language_pages_steps(
    first: Fraction, last: Fraction, count: int, tenths: int
) -> None:
    """Stair j lasts D/N at R1 + (R2 - R1) j / (N - 1) and the stairs tile the phase."""
    length = Fraction(tenths, 10)
    got = stairs(first, last, count, length)
    expected = [
        (
            length * j / count,
            length * (j + 1) / count,
            first if count == 1 else first + (last - first) * j / (count - 1),
        )
        for j in range(count)
    ]
    assert [(p.start, p.end, p.rate_start) for p in got] == expected
    assert all(p.rate_start == p.rate_end for p in got)


def test_many_spikes_on_many_stairs_make_linearly_many_segments() -> None:
    """Through the compiler: 1,000 stairs and 300 one-second spikes make at most 1,000 + 600
    segments, and the arrivals add up: 1/s for the 700 seconds outside spikes, 500 per spike."""
    spikes = "\n".join(f"    spike 500/s for 1s at {3 * i}s" for i in range(300))
    text = (
        'scenario "s" {\n  request h = GET "/h"\n  phase "p" 1000s {\n'
        f"    steps 1/s -> 1/s in 1000\n{spikes}\n    send h\n  }}\n}}\n"
    )
    phase = compile_source(Source("s.scn", text)).phases[0]
    assert len(phase.segments) <= 1000 + 2 * 300
    assert phase.scheduled_total == 1000 - 300 + 300 * 500

"""The spike overlap check's sweep finds exactly the pairs comparing every spike with every
earlier one finds, in the same order (the golden `overlapping_spikes` pins the messages)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.validate.phases import _overlaps

_SPIKE = n.Spike(n.BadLiteral("1/s", ""), n.BadLiteral("1s", ""), n.BadLiteral("0s", ""))


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 6)), max_size=30))
def test_the_sweep_finds_every_overlap_in_source_order(spans: list[tuple[int, int]]) -> None:
    windows = [(Fraction(at), Fraction(at + length), _SPIKE) for at, length in spans]
    brute = [
        (later, earlier)
        for later, (at, end, _) in enumerate(windows)
        for earlier, (start, other_end, _) in enumerate(windows[:later])
        if at < other_end and start < end
    ]
    assert _overlaps(windows) == brute

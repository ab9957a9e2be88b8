"""Literal values read the same in a file and in `--set`: compound durations and env names."""

from __future__ import annotations

from fractions import Fraction

import pytest

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.literals import env_name_problem, parse_value


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h30m", 5400),  # 3600 + 30 x 60
        ("1m30s", 90),
        ("1h5s", 3605),  # a unit may be skipped
        ("2s500ms", Fraction(5, 2)),
        ("1h1m1s1ms", Fraction(3661001, 1000)),
        ("1m90s", 150),  # descending and once each; a part may exceed the next unit
        ("1.5m", 90),
    ],
)
def test_descending_units_are_durations(text: str, seconds: Fraction | int) -> None:
    """A compound duration with units from largest to smallest, each once, is read exactly."""
    value = parse_value(text)
    assert isinstance(value, n.Literal)
    assert (value.kind, value.exact) == (n.Kind.DURATION, seconds)


@pytest.mark.parametrize(
    ("text", "why", "hint"),
    [
        ("1m1m", "`m` appears twice", "2m"),
        ("1s1s", "`s` appears twice", "2s"),
        ("2ms1.25ms", "`ms` appears twice", "3.25ms"),
        ("1s1m", "must go from the largest to the smallest", "1m1s"),
        ("30s1m", "must go from the largest to the smallest", "1m30s"),
        ("500ms2s", "must go from the largest to the smallest", "2s500ms"),
        ("90m1h", "must go from the largest to the smallest", "2h30m"),
        ("0.5ms1s", "must go from the largest to the smallest", "1s0.5ms"),
    ],
)
def test_repeated_or_ascending_units_are_refused_with_the_spelling_meant(
    text: str, why: str, hint: str
) -> None:
    """`1m1m` (was 120s) and `1s1m` (was 61s) are errors that say why and suggest a spelling
    of the same length of time."""
    value = parse_value(text)
    assert isinstance(value, n.BadLiteral)
    assert why in value.message
    assert f"`{text}`" in value.message
    assert value.hint == hint
    fixed = parse_value(hint)
    assert isinstance(fixed, n.Literal)
    assert fixed.kind is n.Kind.DURATION


def test_huge_number_inside_a_compound_is_too_long_not_a_crash() -> None:
    """A 5000-digit part after the first unit is refused like a long leading number (Python
    refuses to convert more than 4300 digits to an int)."""
    value = parse_value("1m" + "9" * 5000 + "s")
    assert isinstance(value, n.BadLiteral)
    assert value.message.endswith("is too long")


@pytest.mark.parametrize("name", ["A", "_", "API_TOKEN", "a1", "_9"])
def test_env_names_that_are_fine(name: str) -> None:
    """Letters, digits and `_`, not starting with a digit."""
    assert env_name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "start"),
    [
        ("", "`env(...)` needs the name"),
        ("A B=C", "`A B=C` is not"),
        ("9LIVES", "`9LIVES` is not"),
        ("KEY-1", "`KEY-1` is not"),
        ("A\nB", "`A\\nB` is not"),  # a control character is shown escaped
        ("Ä", "`Ä` is not"),
    ],
)
def test_env_names_that_are_refused(name: str, start: str) -> None:
    """Anything else is refused, with the rule in the message."""
    problem = env_name_problem(name)
    assert problem is not None
    assert problem.startswith(start)
    assert "letters, digits and `_`, not starting with a digit" in problem

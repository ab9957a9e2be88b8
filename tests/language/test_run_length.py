"""The 168 h limit covers the whole run as the plan counts it: a scenario validates exactly when
its plan's duration (phases plus the windows, `reaction`s and `pod startup`s the run waits for
past them) is within the limit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nimbus_scenarios.language import check
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.language.vocabulary import MAX_DURATION_S
from nimbus_scenarios.plan.timeline import compile_plan

# Hours chosen around the limit so that both sides of it are common.
HOURS = st.integers(min_value=1, max_value=120)
WAITS = st.sampled_from(
    [
        "",
        "expect replicas >= 1 within {w}h",
        "expect reaction < {w}h",
        "expect pod startup max < {w}h",
        "expect ready replicas >= 1 throughout",
        "expect replicas >= 1 at end",
    ]
)


def scenario(phases: list[tuple[int, str, int]], outer: tuple[str, int]) -> str:
    """A watched scenario with the given (hours, expectation, wait hours) phases and one
    scenario-level expectation."""
    lines = ['scenario "t" {', '  watch deployment "app"', '  request work = GET "/w"']
    for index, (hours, expect, wait) in enumerate(phases):
        lines += [f'  phase "p{index}" {hours}h {{', "    rate 1/h", "    send work"]
        if expect:
            lines.append("    " + expect.format(w=wait))
        lines.append("  }")
    if outer[0]:
        lines.append("  " + outer[0].format(w=outer[1]))
    lines.append("}")
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None)
@given(
    phases=st.lists(st.tuples(HOURS, WAITS, HOURS), min_size=1, max_size=3),
    outer=st.tuples(WAITS, HOURS),
)
def test_valid_exactly_when_the_planned_run_fits(
    phases: list[tuple[int, str, int]], outer: tuple[str, int]
) -> None:
    """No error iff the plan's duration is at most 168 h; the only errors are about length."""
    checked = check(Source("t.scn", scenario(phases, outer)))
    plan = compile_plan(checked.scenario, checked.params)
    fits = plan.duration_s <= MAX_DURATION_S
    assert (not checked.errors) == fits
    for error in checked.errors:
        assert "limited to 168h" in error.message or "the limit is 168h" in error.message


def test_error_is_at_the_expectation_that_runs_past() -> None:
    """The issue's case: 100 h + 68 h phases with `within 168h` in the second give 268 h."""
    text = scenario([(100, "", 0), (68, "expect replicas >= 1 within {w}h", 168)], ("", 0))
    checked = check(Source("t.scn", text))
    (error,) = checked.errors
    assert error.span.line == text.splitlines().index("    expect replicas >= 1 within 168h") + 1
    assert "until 268h" in error.message
    assert compile_plan(checked.scenario, checked.params).duration_s == 268 * 3600


def test_a_run_of_exactly_the_limit_is_valid() -> None:
    """Phases of 167 h and a `reaction` that may wait 1 h past them: 168 h, allowed."""
    text = scenario([(167, "expect reaction < {w}h", 1)], ("", 0))
    assert not check(Source("t.scn", text)).errors

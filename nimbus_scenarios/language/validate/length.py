"""Validation of the run's length as the plan counts it: the phases, and then the replica
windows, `reaction`s and `pod startup`s the run waits for past them (`run_length.waits_until`).

`phases.py` already refuses phases that last longer than the limit by themselves; this check
runs last, on a scenario with no other error (every value then resolves to a literal of the
right kind), and reports each expectation that keeps the run going past the limit.
"""

from __future__ import annotations

from fractions import Fraction

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.run_length import waits_until
from nimbus_scenarios.language.validate.values import Checker, duration_text
from nimbus_scenarios.language.vocabulary import MAX_DURATION_S, subject_kind

__all__ = ["check_run_length"]


def check_run_length(check: Checker, scenario: n.Scenario) -> None:
    """Each expectation whose wait ends past `MAX_DURATION_S` from the run's start."""
    start = Fraction(0)
    scoped: list[tuple[n.Expectation, Fraction, Fraction]] = []
    for phase in scenario.phases:
        length = _exact(check, phase.duration)
        if length is None:
            return
        end = start + length
        scoped += [(e, start, end) for e in phase.expectations]
        start = end
    phases_end = start
    scoped += [(e, Fraction(0), phases_end) for e in scenario.expectations]
    for expectation, scope_start, scope_end in scoped:
        until = _waits_until(check, expectation, scope_start, scope_end)
        if until is not None and until > MAX_DURATION_S:
            check.error(
                f"the run waits for this expectation until {duration_text(until)} from its "
                f"start (the phases end at {duration_text(phases_end)}); a whole run is limited "
                f"to {MAX_DURATION_S // 3600}h",
                expectation.span,
            )


def _waits_until(
    check: Checker, expectation: n.Expectation, start: Fraction, end: Fraction
) -> Fraction | None:
    if not isinstance(expectation, n.Compare):
        return None  # `NAME succeeds` is only in `before` and `after`, which the plan does not time
    kind = subject_kind(" ".join(name.text for name in expectation.subject))
    window = expectation.window
    value = _exact(check, expectation.value)
    width = _exact(check, window.duration) if window and window.duration else None
    if kind is None or value is None:
        return None
    return waits_until(
        kind, window.kind if window else None, start=start, end=end, value=value, width=width
    )


def _exact(check: Checker, value: n.Value) -> Fraction | None:
    """The exact value of a literal (or a param's); None for anything else, which validation
    has already reported (this check runs only when it found no error)."""
    resolved = check.params.resolve(value)
    return resolved.exact if isinstance(resolved, n.Literal) else None

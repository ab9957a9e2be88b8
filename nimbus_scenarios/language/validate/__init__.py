"""Validation: every problem in a parsed scenario, not only the first.

Takes nodes and resolved params, returns diagnostics (errors and warnings). Later stages may
assume a scenario with no error diagnostics is well-formed: kinds match, names resolve, ranges
hold, every phase has exactly one shape.

One module per part of the language, all reporting through one `Checker`:

    values.py        the Checker: kinds, ranges and limits of values; names; `url_problem`
    scenario.py      name, once-only statements, `description`, `target`, `watch`, `param`
    requests.py      `settings`, HTTP and stress requests, `cleanup`
    phases.py        phase count and length, shapes, spikes, `send` mixes, kills
    length.py        the whole run's length, windows past the phases included (last)
    expectations.py  expectations (subjects, windows, `before`/`after` rules), `abort when`
    scope.py         `of NAME`: a template that is sent where the statistic is taken
"""

from __future__ import annotations

from nimbus_scenarios.language import nodes as n
from nimbus_scenarios.language.errors import Diagnostic, Severity
from nimbus_scenarios.language.params import Params
from nimbus_scenarios.language.validate.expectations import (
    check_abort,
    check_expectation,
    check_hypothesis,
)
from nimbus_scenarios.language.validate.length import check_run_length
from nimbus_scenarios.language.validate.phases import check_phases
from nimbus_scenarios.language.validate.requests import (
    check_cleanup,
    check_requests,
    check_settings,
)
from nimbus_scenarios.language.validate.scenario import check_params, check_scenario_statements
from nimbus_scenarios.language.validate.scope import scenario_sending
from nimbus_scenarios.language.validate.values import Checker, url_problem
from nimbus_scenarios.language.vocabulary import DEFAULT_MAX_RATE

__all__ = ["url_problem", "validate"]


def validate(
    scenario: n.Scenario,
    params: Params,
    *,
    max_rate: float = DEFAULT_MAX_RATE,
    watch_given: bool = False,
    shards: int = 1,
) -> list[Diagnostic]:
    """Every problem in the scenario, in source order (errors and warnings); `shards` is how
    many processes the run is split over (the per-process limits divide by it)."""
    check = Checker(scenario, params, max_rate=max_rate, watch_given=watch_given, shards=shards)
    # The checks run in the order a scenario's parts are usually written. The result is sorted
    # by position and the sort is stable, so where two diagnostics share a position this order
    # decides which is printed first; the golden files pin it.
    check_scenario_statements(check, scenario)
    check_params(check, scenario)
    for settings in scenario.settings:
        check_settings(check, settings)
    check_requests(check, scenario)
    for block in scenario.befores:
        check_hypothesis(check, block, "before")
    check_phases(check, scenario)
    for block in scenario.afters:
        check_hypothesis(check, block, "after")
    sending = scenario_sending(scenario)
    for expectation in scenario.expectations:
        check_expectation(check, expectation, scope="scenario", sending=sending)
    for abort in scenario.aborts:
        check_abort(check, abort, sending)
    for block in scenario.cleanups:
        check_cleanup(check, block)
    # Last, and only on an otherwise valid scenario: it needs every value resolved and checked.
    if not any(d.severity is Severity.ERROR for d in check.problems):
        check_run_length(check, scenario)
    return sorted(check.problems, key=lambda d: (d.span.line, d.span.column))

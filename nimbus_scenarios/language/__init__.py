"""The scenario language: text to checked nodes (`check`) and to a plan (`compile_source`).

This is the one place that strings the language's stages together for callers (the CLI and the
runner): syntax, params, validation, then the timeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nimbus_scenarios.language.errors import Diagnostic, ScenarioError, Severity, Source
from nimbus_scenarios.language.nodes import Scenario
from nimbus_scenarios.language.params import Params, resolve_params
from nimbus_scenarios.language.syntax import parse
from nimbus_scenarios.language.validate import DEFAULT_MAX_RATE, validate

if TYPE_CHECKING:
    from nimbus_scenarios.plan.timeline import Plan

__all__ = ["Checked", "check", "compile_source"]


@dataclass(frozen=True, slots=True)
class Checked:
    """A parsed scenario with its params resolved and every diagnostic validation found."""

    source: Source
    scenario: Scenario
    params: Params
    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The diagnostics that make the scenario invalid."""
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The diagnostics printed but not fatal."""
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)


def check(
    source: Source,
    overrides: Mapping[str, str] | None = None,
    *,
    max_rate: float = DEFAULT_MAX_RATE,
    watch_given: bool = False,
) -> Checked:
    """Parse and validate; syntax errors raise `ScenarioError`, the rest are collected."""
    scenario = parse(source)
    params, problems = resolve_params(scenario, overrides or {})
    problems += validate(scenario, params, max_rate=max_rate, watch_given=watch_given)
    return Checked(source, scenario, params, tuple(problems))


def compile_source(
    source: Source,
    overrides: Mapping[str, str] | None = None,
    *,
    max_rate: float = DEFAULT_MAX_RATE,
    watch_given: bool = False,
) -> Plan:
    """Text to a `Plan`, raising `ScenarioError` with every error if the scenario is invalid."""
    from nimbus_scenarios.plan.timeline import compile_plan

    checked = check(source, overrides, max_rate=max_rate, watch_given=watch_given)
    if checked.errors:
        raise ScenarioError(source, checked.errors)
    return compile_plan(checked.scenario, checked.params, max_rate=max_rate)

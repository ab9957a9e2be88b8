"""The scenario language: text to checked nodes (`check`): syntax, params, then validation.

Turning checked nodes into a plan is the next stage's job; `nimbus_scenarios.pipeline` strings
the two together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nimbus_scenarios.language.errors import Diagnostic, Severity, Source
from nimbus_scenarios.language.nodes import Scenario
from nimbus_scenarios.language.params import Params, resolve_params
from nimbus_scenarios.language.syntax import parse
from nimbus_scenarios.language.validate import validate
from nimbus_scenarios.language.vocabulary import DEFAULT_MAX_RATE

__all__ = ["Checked", "check"]


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
    shards: int = 1,
) -> Checked:
    """Parse and validate; syntax errors raise `ScenarioError`, the rest are collected."""
    scenario = parse(source)
    params, problems = resolve_params(scenario, overrides or {})
    problems += validate(
        scenario, params, max_rate=max_rate, watch_given=watch_given, shards=shards
    )
    return Checked(source, scenario, params, tuple(problems))

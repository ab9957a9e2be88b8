"""Text to plan: the one place that knows both the language and the plan stages.

syntax -> params (`--set`) -> validation (every diagnostic) -> timeline. `check` stops after
validation; `compile_source` goes on to the `Plan` every later stage reads, raising
`ScenarioError` with every error when the scenario is invalid; `plan_source` also keeps every
warning: validation's, then the plan's own (`plan.render.plan_warnings`), as one list that
`validate`, `plan` and `plan --json` all print.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nimbus_scenarios.language import Checked, check
from nimbus_scenarios.language.errors import (
    Diagnostic,
    ScenarioError,
    Severity,
    Source,
    render,
    summary,
)
from nimbus_scenarios.language.syntax import read_source
from nimbus_scenarios.language.vocabulary import DEFAULT_MAX_RATE
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.plan.render import plan_warnings
from nimbus_scenarios.plan.timeline import compile_plan

__all__ = [
    "Checked",
    "Compiled",
    "check",
    "compile_checked",
    "compile_file",
    "compile_source",
    "plan_source",
]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A valid scenario's plan and every warning about it, in the order they are printed."""

    source: Source
    plan: Plan
    warnings: tuple[Diagnostic, ...]
    """Validation's warnings in source order, then the plan's (which have no place)."""

    def rendered_warnings(self) -> str:
        """Every warning as `validate` and `run` print it (file:line:col, the line, a caret),
        in order, separated by blank lines; '' when there is none."""
        return "\n\n".join(render(self.source, warning) for warning in self.warnings)

    @property
    def warning_texts(self) -> list[str]:
        """Each warning on one line, as `plan` and `plan --json` print them."""
        return [summary(warning) for warning in self.warnings]


def compile_checked(
    checked: Checked, *, max_rate: float = DEFAULT_MAX_RATE, target_given: bool = False
) -> Compiled:
    """The plan of a scenario `check` found no error in, with every warning (`target_given`:
    `run --url` gives the target, so its absence from the file is not worth a warning)."""
    if checked.errors:
        raise ScenarioError(checked.source, checked.errors)
    plan = compile_plan(checked.scenario, checked.params, max_rate=max_rate)
    found = tuple(
        Diagnostic(text, severity=Severity.WARNING)
        for text in plan_warnings(plan, target_given=target_given)
    )
    return Compiled(checked.source, plan, (*checked.warnings, *found))


def plan_source(
    source: Source,
    overrides: Mapping[str, str] | None = None,
    *,
    max_rate: float = DEFAULT_MAX_RATE,
    watch_given: bool = False,
    target_given: bool = False,
    shards: int = 1,
) -> Compiled:
    """Text to a `Plan` with every warning, raising `ScenarioError` if the scenario is invalid."""
    checked = check(source, overrides, max_rate=max_rate, watch_given=watch_given, shards=shards)
    return compile_checked(checked, max_rate=max_rate, target_given=target_given)


def compile_source(
    source: Source,
    overrides: Mapping[str, str] | None = None,
    *,
    max_rate: float = DEFAULT_MAX_RATE,
    watch_given: bool = False,
    shards: int = 1,
) -> Plan:
    """Text to a `Plan`, raising `ScenarioError` with every error if the scenario is invalid.

    `shards` is how many processes will share the run (`run --shards N`): the limits per
    process (users) are checked against each one's share.
    """
    return plan_source(
        source, overrides, max_rate=max_rate, watch_given=watch_given, shards=shards
    ).plan


def compile_file(
    path: str,
    overrides: Mapping[str, str] | None = None,
    *,
    max_rate: float = DEFAULT_MAX_RATE,
    watch_given: bool = False,
    shards: int = 1,
) -> tuple[Source, Plan]:
    """Read a scenario file (size-limited, as `read_source` does) and compile it."""
    source = read_source(path)
    plan = compile_source(
        source, overrides, max_rate=max_rate, watch_given=watch_given, shards=shards
    )
    return source, plan

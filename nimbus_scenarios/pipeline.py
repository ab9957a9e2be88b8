"""Text to plan: the one place that knows both the language and the plan stages.

syntax -> params (`--set`) -> validation (every diagnostic) -> timeline. `check` stops after
validation (`validate` needs no plan); `compile_source` goes on to the `Plan` every later stage
reads, raising `ScenarioError` with every error when the scenario is invalid.
"""

from __future__ import annotations

from collections.abc import Mapping

from nimbus_scenarios.language import Checked, check
from nimbus_scenarios.language.errors import ScenarioError, Source
from nimbus_scenarios.language.syntax import read_source
from nimbus_scenarios.language.vocabulary import DEFAULT_MAX_RATE
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.plan.timeline import compile_plan

__all__ = ["Checked", "check", "compile_file", "compile_source"]


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
    checked = check(source, overrides, max_rate=max_rate, watch_given=watch_given, shards=shards)
    if checked.errors:
        raise ScenarioError(source, checked.errors)
    return compile_plan(checked.scenario, checked.params, max_rate=max_rate)


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

"""The built-in scenarios keep what the seed's job types promise, with no plan warnings."""

from __future__ import annotations

import pytest

from nimbus_scenarios.catalog import builtin_names, builtin_path
from nimbus_scenarios.language.syntax import read_source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.render import MEMORY_WARN_MB, memory_in_flight_mb, plan_warnings


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_plans_without_warnings(name: str) -> None:
    """Stress memory in flight stays under one pod's 1 GiB and the plan has no warnings."""
    plan = compile_source(read_source(builtin_path(name)))
    assert memory_in_flight_mb(plan) <= MEMORY_WARN_MB
    assert plan_warnings(plan) == []


def test_light_expects_no_scale_up_and_heavy_expects_up_then_down() -> None:
    """light states one replica throughout; heavy states a scale-up and the way back to one."""
    light = compile_source(read_source(builtin_path("light")))
    light_replicas = [e for p in light.phases for e in p.expectations if e.kind == "replicas"]
    assert light_replicas
    assert all(e.comparator == "==" and e.value == 1 for e in light_replicas)
    heavy = compile_source(read_source(builtin_path("heavy")))
    ups = [
        e
        for p in heavy.phases
        for e in p.expectations
        if e.kind == "replicas" and e.comparator == ">="
    ]
    downs = [
        e
        for p in heavy.phases
        for e in p.expectations
        if e.kind == "replicas" and e.comparator == "<="
    ]
    assert max(e.value for e in ups) >= 3
    assert downs
    assert downs[0].value == 1


def test_no_built_in_scenario_needs_to_declare_its_memory() -> None:
    """Every built-in scenario runs without `--i-know`: under the memory-in-flight ceiling."""
    from nimbus_scenarios.catalog import builtin_names, builtin_path
    from nimbus_scenarios.language.syntax import read_source
    from nimbus_scenarios.plan.render import memory_refusal

    for name in builtin_names():
        plan = compile_source(read_source(builtin_path(name)))
        assert memory_refusal(plan) is None, name

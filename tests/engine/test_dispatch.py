"""The dispatcher's templates: `env(...)` values are read when templates are compiled."""

from __future__ import annotations

import pytest

from nimbus_scenarios import errors
from nimbus_scenarios.engine.dispatch import compile_templates
from nimbus_scenarios.plan.model import Template, Text


def test_a_missing_environment_variable_is_the_usage_error() -> None:
    """`env("NAME")` unset when templates are compiled raises errors.MissingEnvironment."""
    templates = {"t": Template("t", "GET", "/", headers=(("X-Key", Text(env="NIMBUS_KEY")),))}
    with pytest.raises(errors.MissingEnvironment, match="NIMBUS_KEY") as caught:
        compile_templates(templates, "http://h", environ={})
    assert isinstance(caught.value, errors.UsageError)
    compiled = compile_templates(templates, "http://h", environ={"NIMBUS_KEY": "k"})
    assert compiled["t"].request.headers == (("X-Key", "k"),)

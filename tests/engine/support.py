"""What the engine tests share besides the fakes (`tests/support/fakes.py`): request templates
and one-phase plans to pace, with every request's URL under `BASE_URL`."""

from __future__ import annotations

from nimbus_scenarios.engine.dispatch import CompiledTemplate, ok_statuses
from nimbus_scenarios.engine.request import prepare
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import PhasePlan

BASE_URL = "http://fake.invalid"


def template(name: str, ok: tuple[str, ...] = ("2xx",)) -> CompiledTemplate:
    """A template called ``name`` that requests ``/name``."""
    return CompiledTemplate(name, prepare("GET", BASE_URL, f"/{name}"), ok_statuses(ok))


def phase_plan(shape: str, length: str = "2s", send: str = "a") -> PhasePlan:
    """The one phase of a scenario with templates ``a`` and ``b``, ``shape`` and ``send``."""
    text = f"""
scenario "fake" {{
  request a = GET "/a"
  request b = GET "/b"
  phase "p" {length} {{
    {shape}
    send {send}
  }}
}}
"""
    plan = compile_source(Source("fake.scn", text), max_rate=1_000_000)
    return plan.phases[0]


def mix_of(phase: PhasePlan) -> list[CompiledTemplate]:
    """The phase's templates, in the order of its weights."""
    return [template(name) for name, _ in phase.mix]

"""Fakes for engine tests: a `LoadTransport` whose exchanges take scripted time on a `Clock`.

With `ManualClock` a whole phase plays in milliseconds and every time the engine sees is exact:
a send happens at the clock time the pacer reached, a response comes exactly `delay_s` later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nimbus_scenarios.clock import Clock
from nimbus_scenarios.engine.dispatch import CompiledTemplate, ok_statuses
from nimbus_scenarios.engine.request import Outcome, PreparedRequest, prepare, status_outcome
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import PhasePlan

BASE_URL = "http://fake.invalid"

Script = Callable[[int, PreparedRequest], tuple[float, Outcome]]
"""(send number, request) -> (how long the exchange takes in seconds, its outcome)."""


@dataclass(frozen=True, slots=True)
class Sent:
    """One send the fake transport saw."""

    at: float
    path: str
    extra_headers: tuple[tuple[str, str], ...] | None


class FakeTransport:
    """Answers every request after ``delay_s`` on ``clock`` with ``outcome`` (or as scripted)."""

    def __init__(
        self,
        clock: Clock,
        *,
        delay_s: float = 0.0,
        outcome: Outcome | None = None,
        script: Script | None = None,
    ) -> None:
        self.clock = clock
        fixed = (delay_s, outcome if outcome is not None else status_outcome(200))
        self.script: Script = script if script is not None else (lambda _k, _r: fixed)
        self.sends: list[Sent] = []
        self.answered: list[float] = []
        self.closed = False

    @property
    def connections_opened(self) -> int:
        """One per send: the fake has no pool."""
        return len(self.sends)

    async def send(
        self,
        request: PreparedRequest,
        extra_headers: tuple[tuple[str, str], ...] | None = None,
    ) -> Outcome:
        """Wait the scripted time on the clock, then return the scripted outcome."""
        now = self.clock.now()
        path = request.url.removeprefix(BASE_URL)
        delay, outcome = self.script(len(self.sends), request)
        self.sends.append(Sent(now, path, extra_headers))
        if delay > 0:
            await self.clock.sleep_until(now + delay)
        self.answered.append(self.clock.now())
        return outcome

    async def aclose(self) -> None:
        """Nothing to close."""
        self.closed = True

    def send_times(self) -> list[float]:
        """The clock time of every send, in order."""
        return [sent.at for sent in self.sends]


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

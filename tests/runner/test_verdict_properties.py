"""The verdict under random faults (Hypothesis): whatever the target and the replica source do,
and whenever, a run is never `passed` when a request failed and an expectation was there to
catch it, nor when the replica data a window needed was not seen. Each example is a whole run
on a manual clock against a scripted target and a scripted replica source, in milliseconds."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.engine.request import ErrorKind, Outcome, PreparedRequest, status_outcome
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.results.model import RunResults, RunVerdict, Verdict
from nimbus_scenarios.runner import RunOptions, run_scenario
from tests.support.fakes import ScriptedReplicaSource, ScriptedTransport

TIMEOUT_S = 2.0

FAULTS = st.sampled_from(["ok", "slow", "500", "reset", "refused", "timeout"])


@dataclass(frozen=True)
class Fault:
    """From `start` to `end` (run offsets), every request gets `kind`."""

    start: float
    end: float
    kind: str


@st.composite
def fault_schedules(draw: st.DrawFn) -> list[Fault]:
    """Up to three fault windows over a 20 s run."""
    faults = []
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.floats(0, 19, allow_nan=False))
        length = draw(st.floats(0.1, 10, allow_nan=False))
        faults.append(Fault(start, start + length, draw(FAULTS)))
    return faults


@dataclass(frozen=True)
class Replicas:
    """A replica script (ready climbing and falling at random moments), when, if ever, the
    source is lost, and from when, if ever, its data stops being proven fresh (the source may
    still report later samples: they are learnt too late to be trusted)."""

    script: list[tuple[float, int, int]]
    lost: float | None
    stale: float | None

    @property
    def unseen_from(self) -> float | None:
        """From when the data cannot be trusted: the loss or the staleness, the earlier."""
        limits = [t for t in (self.lost, self.stale) if t is not None]
        return min(limits) if limits else None


@st.composite
def replica_scripts(draw: st.DrawFn) -> Replicas:
    """Replicas with random changes, a random loss and a random staleness."""
    script = [(0.0, 1, 1)]
    moment = 0.0
    for _ in range(draw(st.integers(0, 4))):
        moment += draw(st.floats(0.5, 8, allow_nan=False))
        ready = draw(st.integers(1, 4))
        script.append((moment, ready, ready))
    lost = draw(st.one_of(st.none(), st.floats(0.5, 25, allow_nan=False)))
    stale = draw(st.one_of(st.none(), st.floats(0.5, 25, allow_nan=False)))
    return Replicas(script, lost, stale)


def answer_for(clock: ManualClock, faults: list[Fault]) -> object:
    """The target: healthy (20 ms) unless a fault window covers the moment of the request."""

    def answer(_request: PreparedRequest) -> tuple[float, Outcome]:
        now = clock.now()
        kind = next((f.kind for f in faults if f.start <= now < f.end), "ok")
        match kind:
            case "slow":
                return 1.5, status_outcome(200)
            case "500":
                return 0.01, status_outcome(500)
            case "reset":
                return 0.01, Outcome(None, ErrorKind.reset)
            case "refused":
                return 0.0, Outcome(None, ErrorKind.connect)
            case "timeout":
                return TIMEOUT_S, Outcome(None, ErrorKind.timeout)
        return 0.02, status_outcome(200)

    return answer


SCENARIO = f"""
scenario "prop" {{
  watch deployment "consumer"
  settings {{ timeout {TIMEOUT_S:g}s }}
  request work = GET "/work"
  phase "load" 10s {{
    rate 5/s
    send work
    expect replicas >= 2 within 8s
  }}
  phase "more" 10s {{
    rate 5/s
    send work
    expect replicas <= 3 throughout
  }}
  expect errors == 0%
  expect p95 < 1s
}}
"""


@functools.cache
def compiled() -> Plan:
    """SCENARIO, compiled once."""
    return compile_source(Source("prop.scn", SCENARIO), watch_given=True)


def play(faults: list[Fault], replicas: Replicas) -> RunResults:
    """One whole run of SCENARIO under `faults`, with the replica source scripted."""
    clock = ManualClock()
    transport = ScriptedTransport(clock, answer_for(clock, faults))  # type: ignore[arg-type]
    source = ScriptedReplicaSource(
        clock, replicas.script, lost_after=replicas.lost, stale_after=replicas.stale
    )
    options = RunOptions(url="http://target.test", install_signal_handlers=False)

    async def main() -> RunResults:
        outcome = await clock.run(
            run_scenario(compiled(), options, source=source, transport=transport, clock=clock)
        )
        return outcome.results

    return asyncio.run(main())


def verdicts(results: RunResults) -> dict[str, Verdict]:
    """Each expectation's verdict by its text."""
    return {j.expectation.text: j.verdict for j in results.expectations}


@settings(max_examples=60, deadline=None)
@given(faults=fault_schedules(), replicas=replica_scripts())
def test_a_run_is_never_passed_on_failures_or_unseen_replicas(
    faults: list[Fault], replicas: Replicas
) -> None:
    """Never passed when a request failed (`errors == 0%` catches it), nor when a replica
    window could not be seen to its end, the source lost or its data stale; and a passed run
    has every verdict passed."""
    script, unseen = replicas.script, replicas.unseen_from
    results = play(faults, replicas)
    if results.error is not None:  # a fault at +0 s met the pre-flight: nothing was sent
        assert results.verdict is RunVerdict.ERROR
        assert results.totals.sent == 0
        return
    if results.totals.failed > 0:
        assert results.verdict is not RunVerdict.PASSED
        assert verdicts(results)["expect errors == 0%"] is not Verdict.PASSED
    if unseen is not None and unseen < 20.0:
        # The `throughout` window covers 10..20 s: unseen before its end, it cannot have held.
        assert verdicts(results)["expect replicas <= 3 throughout"] is not Verdict.PASSED
        assert results.verdict is not RunVerdict.PASSED
    if results.verdict is RunVerdict.PASSED:
        assert set(verdicts(results).values()) == {Verdict.PASSED}
        assert results.totals.failed == 0
    within = next(j for j in results.expectations if "within" in j.expectation.text)
    if within.verdict is Verdict.PASSED:
        assert within.met_at_s is not None
        # Offsets count from the same moment as the script's, to the millisecond written.
        ready_then = [r for t, r, _ in script if t <= within.met_at_s + 0.001]
        assert ready_then[-1] >= 2
        assert unseen is None or within.met_at_s <= unseen + 0.001

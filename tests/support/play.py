"""Whole runs on a manual clock: a scenario's text played against a scripted target and a
scripted replica source, with signals delivered at chosen clock times."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence

from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.events import RunHandler
from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.results.model import RunResults
from nimbus_scenarios.runner import RunOptions, RunOutcome, run_scenario
from nimbus_scenarios.runner.start import StartSource
from tests.support.fakes import (
    Answer,
    ScriptedReplicaSource,
    ScriptedScalingSource,
    ScriptedTransport,
)

__all__ = ["URL", "play", "raise_signals"]

URL = "http://target.test"


def play(
    text: str,
    *,
    answer: Answer | None = None,
    script: Sequence[tuple[float, int, int]] | None = None,
    lost_after: float | None = None,
    stale_after: float | None = None,
    proof_every: float | None = None,
    handlers: Sequence[RunHandler] = (),
    signals_at: Sequence[tuple[float, signal.Signals]] = (),
    checkpoint: Callable[[RunResults], None] | None = None,
    start_source: StartSource | None = None,
    clock: ManualClock | None = None,
    scaling: Callable[[ManualClock, Sequence[tuple[float, int, int]]], ScriptedScalingSource]
    | None = None,
    **options: object,
) -> tuple[RunOutcome, ScriptedTransport, ScriptedReplicaSource | None, float]:
    """Play scenario `text` on a manual clock; the outcome, the fakes and the clock's end.

    `signals_at` delivers each (clock time, signal) to this process while the run's signal
    handlers are installed (they are, when a signal is to come, or `install_signal_handlers`
    says so). `lost_after`, `stale_after` and `proof_every` script the replica source's loss
    and freshness (`ScriptedReplicaSource`); `scaling` builds a source that also records the
    autoscaler and the pods (a `ScriptedScalingSource`) from the clock and `script`.
    """
    plan = compile_source(Source("t.scn", text), watch_given=script is not None)
    clock = clock or ManualClock()
    transport = ScriptedTransport(clock, answer) if answer else ScriptedTransport(clock)
    source: ScriptedReplicaSource | None = None
    if script is not None and scaling is not None:
        source = scaling(clock, script)
    elif script is not None:
        source = ScriptedReplicaSource(
            clock, script, lost_after=lost_after, stale_after=stale_after, proof_every=proof_every
        )
    options.setdefault("install_signal_handlers", bool(signals_at))
    run_options = RunOptions(url=URL, **options)  # type: ignore[arg-type]

    async def deliver() -> None:
        for at, sig in signals_at:
            await clock.sleep_until(at)
            raise_signals(sig)

    async def main() -> RunOutcome:
        delivery = asyncio.ensure_future(deliver())
        try:
            return await clock.run(
                run_scenario(
                    plan,
                    run_options,
                    source=source,
                    transport=transport,
                    clock=clock,
                    handlers=handlers,
                    scenario_text=text,
                    checkpoint=checkpoint,
                    start_source=start_source,
                )
            )
        finally:
            delivery.cancel()

    outcome = asyncio.run(main())
    return outcome, transport, source, clock.now()


def raise_signals(*signals: signal.Signals) -> None:
    """Deliver `signals` to this process, as an operator's `kill` would; only while a run's
    handlers catch them (the default action would end the test session)."""
    for sig in signals:
        installed = signal.getsignal(sig)
        defaults = (signal.SIG_DFL, signal.SIG_IGN, signal.default_int_handler, None)
        assert installed not in defaults, f"no run is catching {sig.name}"
        signal.raise_signal(sig)

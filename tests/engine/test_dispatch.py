"""The dispatcher on a manual clock with a fake transport: the in-flight cap, send lateness,
observers, and a drain bounded by the clock that cancels and counts what is left."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nimbus_scenarios import errors
from nimbus_scenarios.clock import ManualClock
from nimbus_scenarios.engine.dispatch import CANCELLED, Dispatcher, compile_templates
from nimbus_scenarios.engine.request import (
    ErrorKind,
    error_outcome,
    status_outcome,
    truncated_outcome,
)
from nimbus_scenarios.engine.stats import RunStats
from nimbus_scenarios.plan.model import Template, Text
from tests.engine.support import template
from tests.support.fakes import ScriptedTransport, answer_after


def test_drain_waits_on_the_clock_then_cancels_and_counts_the_rest() -> None:
    """Requests slower than the drain's timeout are cancelled then and fail as cancelled."""
    clock = ManualClock(start=10.0)
    delays = iter([1.0])  # the first answer takes 1 s, the others 5 s
    transport = ScriptedTransport(clock, lambda _r: (next(delays, 5.0), status_outcome(200)))
    stats = RunStats(10.0)
    phase = stats.phase("p")
    result: list[int] = []

    async def work() -> None:
        dispatcher = Dispatcher(transport, clock=clock, max_inflight=10)
        for _ in range(3):
            phase.schedule(10.0, phase.request("a"))
            assert dispatcher.send_open(phase, template("a"), 10.0)
        result.append(await dispatcher.drain(2.0))
        assert dispatcher.in_flight == 0

    asyncio.run(clock.run(work()))
    assert result == [2]
    assert clock.now() == 12.0
    assert (phase.succeeded, phase.failed) == (1, 2)
    assert phase.errors_by_kind == {CANCELLED: 2}
    # only the answered request is timed: a cancelled one got no response
    assert phase.latency.total_count == 1
    assert phase.latency.summary().max == pytest.approx(1000, rel=1e-3)
    assert stats.check_accounting() == []


def test_send_open_drops_over_the_cap_and_records_lateness() -> None:
    """Over `max_inflight` an arrival is dropped for its template; a late send records lateness."""
    clock = ManualClock(start=5.25)
    transport = ScriptedTransport(clock, answer_after(1.0))
    stats = RunStats(5.0)
    phase = stats.phase("p")

    async def work() -> None:
        dispatcher = Dispatcher(transport, clock=clock, max_inflight=1)
        for name in ("a", "b"):
            phase.schedule(5.0, phase.request(name))
        assert dispatcher.send_open(phase, template("a"), 5.0)
        assert not dispatcher.send_open(phase, template("b"), 5.0)
        assert dispatcher.lateness.summary().max == pytest.approx(250, rel=1e-3)
        assert await dispatcher.drain(5.0) == 0

    asyncio.run(clock.run(work()))
    assert (phase.requests["a"].sent, phase.requests["b"].dropped) == (1, 1)
    assert stats.check_accounting() == []


def test_observers_see_clock_times_outcomes_and_extra_headers() -> None:
    """Each observer gets (phase, template, scheduled, sent, done, outcome, ok, extra headers)."""
    clock = ManualClock(start=1.0)
    transport = ScriptedTransport(clock, answer_after(0.5, error_outcome(ErrorKind.reset)))
    seen: list[tuple[Any, ...]] = []
    extra = (("traceparent", "x"),)

    async def work() -> None:
        dispatcher = Dispatcher(
            transport,
            clock=clock,
            max_inflight=10,
            observers=(lambda *args: seen.append(args),),
            headers_for=lambda _phase, _template: extra,
        )
        phase = RunStats(0.0).phase("p")
        phase.schedule(0.75, phase.request("a"))
        dispatcher.send_open(phase, template("a"), 0.75)
        await dispatcher.drain(1.0)
        assert phase.failed == 1
        assert phase.requests["a"].errors_by_kind == {"reset": 1}

    asyncio.run(clock.run(work()))
    assert seen == [("p", "a", 0.75, 1.0, 1.5, error_outcome(ErrorKind.reset), False, extra)]
    assert transport.sent[0].headers == extra


def test_a_missing_environment_variable_is_the_usage_error() -> None:
    """`env("NAME")` unset when templates are compiled raises errors.MissingEnvironment."""
    templates = {"t": Template("t", "GET", "/", headers=(("X-Key", Text(env="NIMBUS_KEY")),))}
    with pytest.raises(errors.MissingEnvironment, match="NIMBUS_KEY") as caught:
        compile_templates(templates, "http://h", environ={})
    assert isinstance(caught.value, errors.UsageError)
    compiled = compile_templates(templates, "http://h", environ={"NIMBUS_KEY": "k"})
    assert compiled["t"].request.headers == (("X-Key", "k"),)


def test_a_truncated_answer_counts_by_its_status_and_as_truncated() -> None:
    """A cut body is a response: succeeded by its 200, timed, and counted in `truncated`."""
    clock = ManualClock(start=0.0)
    transport = ScriptedTransport(clock, answer_after(0.25, truncated_outcome(200)))
    stats = RunStats(0.0)
    phase = stats.phase("p")

    async def work() -> None:
        dispatcher = Dispatcher(transport, clock=clock, max_inflight=10)
        phase.schedule(0.0, phase.request("a"))
        dispatcher.send_open(phase, template("a"), 0.0)
        assert await dispatcher.drain(1.0) == 0

    asyncio.run(clock.run(work()))
    assert (phase.succeeded, phase.failed, phase.truncated) == (1, 0, 1)
    assert phase.status_counts == {200: 1}
    assert phase.latency.summary().max == pytest.approx(250, rel=1e-3)
    assert stats.check_accounting() == []

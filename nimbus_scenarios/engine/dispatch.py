"""The dispatcher: sends one request through the transport and records it, on the hot path.

Shared by the open-model pacer and the closed-model users. It owns the in-flight count and the
`max_inflight` cap (an open-model arrival over the cap is dropped, never queued), the tasks of
requests in flight (so a stop can wait for them), and the send-lateness histogram. Every time it
takes comes from the run's `Clock`, so a manual clock and a fake transport play a phase exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from asyncio import current_task
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from nimbus_scenarios.clock import Clock, within
from nimbus_scenarios.engine.histogram import LatencyHistogram
from nimbus_scenarios.engine.request import Outcome, PreparedRequest, prepare
from nimbus_scenarios.engine.stats import PhaseStats, RequestStats
from nimbus_scenarios.engine.transport import LoadTransport
from nimbus_scenarios.errors import MissingEnvironment
from nimbus_scenarios.plan.model import Template, Text

__all__ = [
    "CANCELLED",
    "CompiledTemplate",
    "Dispatcher",
    "ExtraHeaders",
    "HeadersFor",
    "RequestObserver",
    "compile_templates",
    "ok_statuses",
    "resolve_text",
]

CANCELLED = "cancelled"
"""The error kind of a request abandoned in flight when the run stopped (not an `ErrorKind`)."""

ExtraHeaders = tuple[tuple[str, str], ...]
"""Per-request headers sent after a template's own (telemetry's `traceparent`)."""

HeadersFor = Callable[[str, str], ExtraHeaders | None]
"""Called before every send with (phase, template); returns extra headers for it, or None."""

RequestObserver = Callable[
    [str, str, float, float, float, Outcome, bool, ExtraHeaders | None], None
]
"""Called for every finished request: (phase, template, scheduled, sent, done, outcome, ok,
extra_headers), times on the run's clock.

`extra_headers` is exactly what the dispatcher's `headers_for` returned for this request (None
without one): the token that lets telemetry end the request span whose id its `traceparent`
carried. Requests abandoned in flight (cancelled) reach no observer. Observers run on the hot
path; they must be cheap and never raise.
"""


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """A template made ready to send: the prepared request and which statuses succeed."""

    name: str
    request: PreparedRequest
    ok: tuple[bool, ...]  # indexed by status code 0..599

    def succeeded(self, outcome: Outcome) -> bool:
        """Whether the outcome counts as a success for this template."""
        status = outcome.status
        return status is not None and 0 <= status < 600 and self.ok[status]


def ok_statuses(patterns: tuple[str, ...]) -> tuple[bool, ...]:
    """A lookup table of successful statuses from `200` / `2xx` patterns."""
    table = [False] * 600
    for pattern in patterns:
        if pattern.endswith("xx"):
            base = int(pattern[0]) * 100
            for code in range(base, base + 100):
                table[code] = True
        else:
            table[int(pattern)] = True
    return tuple(table)


def resolve_text(text: Text, environ: Mapping[str, str]) -> str:
    """The value of a `Text`, reading `env("NAME")` from `environ`."""
    if text.env is None:
        return text.value
    value = environ.get(text.env)
    if value is None:
        raise MissingEnvironment(text.env)
    return value


def compile_templates(
    templates: Mapping[str, Template],
    base_url: str,
    environ: Mapping[str, str] | None = None,
) -> dict[str, CompiledTemplate]:
    """Every template prepared against `base_url`, with `env(...)` values read now."""
    env = os.environ if environ is None else environ
    compiled = {}
    for name, t in templates.items():
        request = prepare(
            t.method,
            base_url,
            t.path,
            [(k, resolve_text(v, env)) for k, v in t.query],
            headers=[(k, resolve_text(v, env)) for k, v in t.headers],
            body=resolve_text(t.body, env).encode("utf-8") if t.body is not None else None,
        )
        compiled[name] = CompiledTemplate(name, request, ok_statuses(t.ok_status))
    return compiled


class Dispatcher:
    """Sends requests for the pacer and the users, counting what is in flight."""

    def __init__(
        self,
        transport: LoadTransport,
        *,
        clock: Clock,
        max_inflight: int,
        observers: tuple[RequestObserver, ...] = (),
        headers_for: HeadersFor | None = None,
    ) -> None:
        self.transport = transport
        self.clock = clock
        self.max_inflight = max_inflight
        self.in_flight = 0
        self.observers = observers
        self.headers_for = headers_for
        """Extra headers per request; None (no extra headers) costs one `is None` check."""
        self.lateness = LatencyHistogram(3)
        """Send lateness (actual send minus scheduled time) of open-model requests, in us."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()
        self._now = clock.now  # bound once: the hot path reads the clock twice per request

    def send_open(self, stats: PhaseStats, template: CompiledTemplate, scheduled_at: float) -> bool:
        """Send an open-model arrival now, or drop it when `max_inflight` are in flight."""
        request = stats.requests.get(template.name)  # inline: the usual case, one dict lookup
        if request is None:
            request = stats.request(template.name)
        if self.in_flight >= self.max_inflight:
            stats.drop(scheduled_at, request)
            return False
        now = self._now()
        late = now - scheduled_at
        self.lateness.record(int(late * 1_000_000.0) if late > 0 else 0)
        self.in_flight += 1
        stats.mark_sent(now, request)
        self._tasks.add(
            self._loop.create_task(self._exchange(stats, request, template, scheduled_at, now))
        )
        return True

    async def send_closed(
        self, stats: PhaseStats, template: CompiledTemplate, scheduled_at: float
    ) -> None:
        """Send a closed-model request and wait for it (users are never dropped).

        The exchange is a task of its own, shielded: cancelling the user stops its loop but the
        request it has in flight finishes (and is drained) like an open-model one.
        """
        request = stats.request(template.name)
        now = self._now()
        self.in_flight += 1
        stats.mark_sent(now, request)
        task = self._loop.create_task(self._exchange(stats, request, template, scheduled_at, now))
        self._tasks.add(task)
        await asyncio.shield(task)

    async def _exchange(
        self,
        stats: PhaseStats,
        request: RequestStats,
        template: CompiledTemplate,
        scheduled_at: float,
        sent_at: float,
    ) -> None:
        headers_for = self.headers_for
        extra = None if headers_for is None else headers_for(stats.name, template.name)
        try:
            if extra is None:
                outcome = await self.transport.send(template.request)
            else:
                outcome = await self.transport.send(template.request, extra)
        except asyncio.CancelledError:
            # Abandoned in flight (the stop's grace ran out, or a forced exit): still a sent
            # request, so it counts as failed and `sent == succeeded + failed` keeps holding.
            stats.record(
                scheduled_at, sent_at, self._now(), None, False, request, error_kind=CANCELLED
            )
            raise
        finally:
            self.in_flight -= 1
            # The task forgets itself: a done callback would cost a scheduled callback (one
            # more turn of the loop's ready queue) per request.
            self._tasks.discard(current_task())
        done = self._now()
        ok = template.succeeded(outcome)
        stats.record(
            scheduled_at,
            sent_at,
            done,
            outcome.status,
            ok,
            request,
            error_kind=outcome.error,
            truncated=outcome.truncated,
        )
        for observer in self.observers:
            observer(stats.name, template.name, scheduled_at, sent_at, done, outcome, ok, extra)

    async def drain(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` (on the clock) for the requests in flight; cancel the rest
        and return how many were cancelled."""
        pending = set(self._tasks)
        if not pending:
            return 0
        deadline = self._now() + timeout_s
        with contextlib.suppress(TimeoutError):
            await within(self.clock, asyncio.wait(pending), deadline)
        still = [task for task in pending if not task.done()]
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
        return len(still)

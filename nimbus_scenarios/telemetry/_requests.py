"""Request spans and durations: the per-request hot path of telemetry.

Its place: the dispatcher's `headers_for` and `RequestObserver` (`engine.dispatch`), and a
`RunHandler` that hears when the run starts. Request spans are not SDK `Span` objects:
`headers_for` draws the span id itself and puts it in the `traceparent`; the observer, given the
same headers back, records a finished `_wire.RequestSpan` (span id, times, status; parent and
fixed attributes shared per phase and template in a `RequestShape`) and hands it straight to
the batch processor, whose export thread encodes it. A request that is not sampled carries the
pre-built `traceparent` of its phase span with the sampled flag 00 (no id drawn, nothing
recorded); one cancelled in flight is never recorded. Every finished request's duration goes to
the duration histogram (`_durations`), sampled or not, with or without a response; a sampled
one leaves an exemplar there naming its span.

`url.full` shows the target's URL with a password masked and secret and `env(...)` query values
as `secrets.MASK`. Nothing here imports an HTTP client: requests are `engine.request`'s.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final
from urllib.parse import quote, urlsplit

from opentelemetry.util.types import AttributeValue

from nimbus_scenarios.engine.dispatch import ExtraHeaders
from nimbus_scenarios.engine.request import Outcome, prepare
from nimbus_scenarios.events import RunHandler
from nimbus_scenarios.plan.model import Plan, Template
from nimbus_scenarios.secrets import MASK, mask_url
from nimbus_scenarios.telemetry._durations import DurationHistogram
from nimbus_scenarios.telemetry._spans import SpanParents
from nimbus_scenarios.telemetry._walltime import WallTime
from nimbus_scenarios.telemetry._wire import RequestShape, RequestSpan
from nimbus_scenarios.telemetry.link import WORKER_ATTRIBUTE

__all__ = ["RequestSpans", "shown_url"]

_SAMPLED: Final = "1"  # the last character of a sampled `traceparent` (flags 01)


def shown_url(base_url: str, template: Template) -> str:
    """The template's URL as sent, but with a password in `base_url` and secret or `env(...)`
    query values shown as `MASK` (written as is: `*` is allowed in a query)."""
    base = mask_url(base_url)
    try:
        url = prepare(template.method, base, template.path).url
    except ValueError:  # not an absolute http(s) URL: shown as it was written
        return base.rstrip("/") + "/" + quote(template.path.lstrip("/"), safe="/:@%")
    if template.query:
        # The same encoding as `prepare`'s, with the mask left readable.
        query = "&".join(
            f"{quote(name, safe='')}="
            + (MASK if text.env is not None or text.secret else quote(text.value, safe=""))
            for name, text in template.query
        )
        url += ("&" if "?" in url else "?") + query
    return url


class RequestSpans(RunHandler):
    """The `traceparent` source and the request observer of one run.

    `spans` is None when tracing is off (then only durations are recorded, and `headers_for`
    is not wired); `durations` is None when metrics are off. `worker` (set in a run with worker
    processes) is put on every request span as `nimbus.worker`.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        url: str | None,
        run_id: str,
        wall: WallTime,
        spans: SpanParents | None,
        submit: Callable[[RequestSpan], None] | None,
        durations: DurationHistogram | None,
        worker: int | None = None,
    ) -> None:
        self.plan = plan
        self.url = url
        self.run_id = run_id
        self.wall = wall
        self.spans = spans
        self._submit = submit
        self._durations = durations
        self._p = max(0.0, min(plan.settings.trace_sample, 100.0)) / 100.0
        self._random = random.random
        self._bits = random.getrandbits
        self._prefix = f"00-{spans.trace_hex}-" if spans is not None else ""
        self._shapes: dict[tuple[str, str], RequestShape] = {}
        self._worker = worker

    def mark_worker(self, worker: int) -> None:
        """From now on request spans say they were sent by process `worker` (0: the parent)."""
        self._worker = worker
        self._shapes.clear()

    def run_started(self, plan: Plan, run_id: str) -> None:
        """Adopt the runner's run id; read the clock's wall-time offset (the loop runs now)."""
        self.wall.calibrate()
        if run_id and run_id != self.run_id:
            self.run_id = run_id
            self._shapes.clear()

    # ------------------------------------------------------------------ hot path
    def headers_for(self, phase: str, template: str) -> ExtraHeaders | None:
        """The `traceparent` for one request: a fresh span id when sampled, else the phase's."""
        spans = self.spans
        if spans is None:
            return None
        if self._random() >= self._p:
            return spans.parent(phase).unsampled
        # A zero span id is invalid in W3C trace context: 1 stands in for it.
        return (("traceparent", f"{self._prefix}{self._bits(64) or 1:016x}-01"),)

    def observe(
        self,
        phase: str,
        template: str,
        scheduled: float,
        sent: float,
        done: float,
        outcome: Outcome,
        ok: bool,
        extra: ExtraHeaders | None,
    ) -> None:
        """Count the request's duration (every finished request, response or not); record
        its span when it was sampled."""
        traceparent = None if extra is None else extra[0][1]
        durations = self._durations
        if durations is not None:
            key = (phase, template, ok, outcome.status, outcome.error)
            durations.record(key, done - sent, traceparent)
        if traceparent is None or traceparent[-1] != _SAMPLED:
            return
        try:
            self._record(phase, template, scheduled, sent, done, outcome, ok, traceparent)
        except Exception:  # never break the dispatcher; a bad span is a lost span
            return

    def _record(
        self,
        phase: str,
        template: str,
        scheduled: float,
        sent: float,
        done: float,
        outcome: Outcome,
        ok: bool,
        traceparent: str,
    ) -> None:
        submit = self._submit
        if submit is None:
            return
        shape = self._shapes.get((phase, template))
        if shape is None:
            shape = self._shape_for(phase, template)
        status = outcome.status
        if status is None:
            error: str | None = str(outcome.error)
        elif status >= 400:
            error = str(status)
        else:
            error = None
        late = sent - scheduled
        wall = self.wall
        submit(
            RequestSpan(
                shape,
                int(traceparent[36:52], 16),  # the span id headers_for drew
                wall.at_ns(sent),
                wall.at_ns(done),
                status,
                error,
                round(late * 1000.0, 3) if late > 0 else 0.0,
                ok,
            )
        )

    def _shape_for(self, phase: str, template: str) -> RequestShape:
        """Span name, parent and fixed attributes of a (phase, template) pair, built once."""
        assert self.spans is not None  # only sampled requests get here, and only with tracing
        parent = self.spans.parent(phase)
        attributes: dict[str, AttributeValue] = {
            "nimbus.scenario": self.plan.scenario,
            "nimbus.phase": phase,
            "nimbus.template": template,
            "nimbus.run_id": self.run_id,
        }
        if self._worker is not None:
            attributes[WORKER_ATTRIBUTE] = self._worker
        name = template
        plan_template = self.plan.templates.get(template)
        if plan_template is not None:
            method = plan_template.method.upper()
            path = plan_template.path.partition("?")[0]
            attributes["http.request.method"] = method
            name = method
            if self.url is not None:
                full = shown_url(self.url, plan_template)
                attributes["url.full"] = full
                parts = urlsplit(full)
                if parts.hostname:
                    attributes["server.address"] = parts.hostname
                attributes["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
            if not path.startswith(("http://", "https://")):
                url_template = path if path.startswith("/") else "/" + path
                attributes["url.template"] = url_template
                name = f"{method} {url_template}"
        shape = RequestShape(name, parent.context, attributes)
        self._shapes[(phase, template)] = shape
        return shape

"""The compiled plan's types: the whole run as frozen data, with the language's enums kept.

`plan.timeline` builds them from checked nodes; the engine paces them, the runner drives them, the
results embed them, and `plan.render` prints them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from nimbus_scenarios.language.nodes import Comparator, ShapeKind, WindowKind
from nimbus_scenarios.language.vocabulary import (
    DEFAULT_MAX_RATE,
    ExpectationKind,
    GuardSubject,
    Subject,
)
from nimbus_scenarios.secrets import MASK, mask_url, mask_urls_in_text

__all__ = [
    "CleanupStep",
    "ExpectationPlan",
    "GuardPlan",
    "KillPlan",
    "PhasePlan",
    "Plan",
    "Segment",
    "Settings",
    "StressSpec",
    "Template",
    "Text",
]


@dataclass(frozen=True, slots=True)
class Text:
    """A string that may come from `env("NAME")`: then it is resolved only when a run starts."""

    value: str = ""
    env: str | None = None
    secret: bool = False

    def shown(self) -> str:
        """The text safe to print (secrets masked)."""
        return MASK if self.secret or self.env is not None else self.value

    def masked(self) -> Text:
        """This text with a literal secret value replaced by the mask, and any password in a URL
        in it masked (`env` names are kept: they are not secret, their values are)."""
        if self.secret and self.env is None and self.value:
            return replace(self, value=MASK)
        shown = mask_urls_in_text(self.value)
        return self if shown == self.value else replace(self, value=shown)


@dataclass(frozen=True, slots=True)
class StressSpec:
    """A stress request's parameters in the consumer's units."""

    cpu_intensity: int
    memory_mb: int
    duration_s: int
    async_mode: bool
    immediate_cleanup: bool


@dataclass(frozen=True, slots=True)
class Template:
    """A request template: everything needed to build the HTTP request, plus what success is."""

    name: str
    method: str
    path: str
    query: tuple[tuple[str, Text], ...] = ()
    headers: tuple[tuple[str, Text], ...] = ()
    body: Text | None = None
    ok_status: tuple[str, ...] = ("2xx", "3xx")
    stress: StressSpec | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """Open-model load from `start_s` to `end_s` with the rate moving linearly between the two.

    `first` is the index (within the phase) of the first arrival in the segment and `count`
    how many arrivals fall in it, both computed exactly; `integral_start` is the phase's rate
    integral at the segment start (arrival k sits where the integral reaches k).
    """

    start_s: float
    end_s: float
    rate_start: float
    rate_end: float
    first: int
    count: int
    integral_start: float


@dataclass(frozen=True, slots=True)
class ExpectationPlan:
    """One expectation with its scope and, for replica windows, the window's offsets."""

    text: str
    scope: str
    kind: ExpectationKind
    subject: Subject
    comparator: Comparator
    value: float
    window: WindowKind | None = None
    window_s: float | None = None
    start_s: float | None = None  # None for before/after: relative to the stage start
    end_s: float | None = None
    request: str | None = None
    """The request template it is about: `NAME succeeds`'s NAME, or a load expectation's
    `of NAME` (its statistic then covers only that template's requests in scope)."""


@dataclass(frozen=True, slots=True)
class GuardPlan:
    """An `abort when` guard."""

    text: str
    subject: GuardSubject
    comparator: Comparator
    value: float
    over_s: float | None
    request: str | None = None
    """`of NAME`: the guard then watches only that template's requests."""


@dataclass(frozen=True, slots=True)
class KillPlan:
    """`at T kill N pods`, with T as an offset from the run start."""

    phase: str
    at_s: float
    count: int


@dataclass(frozen=True, slots=True)
class CleanupStep:
    """A request the cleanup stage sends: a named template or an inline method and path."""

    template: str | None = None
    method: str | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class PhasePlan:
    """One phase: where it sits, its load, what it sends and what it expects."""

    name: str
    index: int
    start_s: float
    end_s: float
    shape: ShapeKind
    shape_text: str
    segments: tuple[Segment, ...] = ()
    burst_size: int = 0
    burst_every_s: float = 0.0
    burst_count: int = 0
    users: int = 0
    think_s: float = 0.0
    spikes: tuple[str, ...] = ()
    spike_starts_s: tuple[float, ...] = ()
    """Where each spike starts, as a run offset (in the order of `spikes`)."""
    mix: tuple[tuple[str, float], ...] = ()
    weights: tuple[int, ...] = ()
    """The mix's exact weights as the smallest integers in the same ratios, for `mix_order`."""
    scheduled: Mapping[str, int] | None = None
    scheduled_total: int | None = None
    expectations: tuple[ExpectationPlan, ...] = ()
    kills: tuple[KillPlan, ...] = ()

    @property
    def duration_s(self) -> float:
        """The phase's length in seconds."""
        return self.end_s - self.start_s

    @property
    def open_model(self) -> bool:
        """Whether arrivals are scheduled in advance (everything but `users`)."""
        return self.shape is not ShapeKind.USERS

    def rate_at(self, t: float) -> float:
        """The target arrival rate at run offset `t` (bursts averaged over their interval)."""
        if not self.start_s <= t < self.end_s:
            return 0.0
        if self.shape is ShapeKind.BURST:
            return self.burst_size / self.burst_every_s
        # segments tile the phase in order: the last one starting at or before t (a binary
        # search, since the rate chart asks 512 times of phases with thousands of segments)
        found = bisect_right(self.segments, t, key=lambda s: s.start_s) - 1
        if found < 0 or not t < self.segments[found].end_s:
            return 0.0
        segment = self.segments[found]
        width = segment.end_s - segment.start_s
        share = (t - segment.start_s) / width if width > 0 else 0.0
        return segment.rate_start + (segment.rate_end - segment.rate_start) * share


@dataclass(frozen=True, slots=True)
class Settings:
    """The `settings` block with defaults applied."""

    timeout_s: float = 30.0
    max_inflight: int = 1000
    connection_max_age_s: float = 30.0
    trace_sample: float = 100.0
    stress_path: str = "/process"
    headers: tuple[tuple[str, Text], ...] = ()
    memory_in_flight_mb: float | None = None
    """What the scenario declares it means to hold in flight (`memory_in_flight`), if it does."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A compiled scenario: the whole run as data."""

    scenario: str
    description: str
    target: Text | None
    deployment: str | None
    namespace: str | None
    settings: Settings
    templates: Mapping[str, Template]
    phases: tuple[PhasePlan, ...]
    before: tuple[ExpectationPlan, ...] = ()
    after: tuple[ExpectationPlan, ...] = ()
    expectations: tuple[ExpectationPlan, ...] = ()
    guards: tuple[GuardPlan, ...] = ()
    cleanup: tuple[CleanupStep, ...] = ()
    params: Mapping[str, str] = field(default_factory=dict)
    max_rate: float = DEFAULT_MAX_RATE

    @property
    def phases_end_s(self) -> float:
        """When the last phase ends."""
        return self.phases[-1].end_s if self.phases else 0.0

    @property
    def duration_s(self) -> float:
        """Phases plus the longest replica, `reaction` or `pod startup` window that runs past
        them (the run waits for it)."""
        windows = [e.end_s for p in self.phases for e in p.expectations if e.end_s is not None]
        windows += [e.end_s for e in self.expectations if e.end_s is not None]
        return max([self.phases_end_s, *windows])

    def masked(self) -> Plan:
        """The plan safe to store: credential header values masked, and a password in any URL
        (the target, a param, a path, a header, query or body value, the description) masked.
        Phases and expectations are the same objects."""
        target = self.target
        if target is not None and target.env is None:
            target = replace(target, value=mask_url(target.value))
        return replace(
            self,
            description=mask_urls_in_text(self.description),
            target=target,
            settings=replace(self.settings, headers=_masked(self.settings.headers)),
            templates={
                name: replace(
                    t,
                    path=mask_urls_in_text(t.path),
                    headers=_masked(t.headers),
                    query=_masked(t.query),
                    body=None if t.body is None else t.body.masked(),
                )
                for name, t in self.templates.items()
            },
            cleanup=tuple(
                c if c.path is None else replace(c, path=mask_urls_in_text(c.path))
                for c in self.cleanup
            ),
            params={name: mask_urls_in_text(value) for name, value in self.params.items()},
        )

    @property
    def all_expectations(self) -> tuple[ExpectationPlan, ...]:
        """Every expectation in judging order: `before`, each phase's, the scenario's, `after`."""
        inner = tuple(e for phase in self.phases for e in phase.expectations)
        return (*self.before, *inner, *self.expectations, *self.after)

    @property
    def needs_pods(self) -> bool:
        """Whether a verdict reads the Deployment's pods (`expect pod startup ...`, `abort when
        pod restarts ...`): then a source that cannot watch them fails at pre-flight."""
        return any(e.kind is ExpectationKind.POD_STARTUP for e in self.all_expectations) or any(
            g.subject is GuardSubject.POD_RESTARTS for g in self.guards
        )

    @property
    def scheduled_total(self) -> int | None:
        """Requests the open-model phases schedule (None if any phase is closed-model)."""
        totals = [p.scheduled_total for p in self.phases]
        if any(t is None for t in totals):
            return None
        return sum(t for t in totals if t is not None)

    def rate_at(self, t: float) -> float:
        """The target rate at run offset `t`."""
        found = bisect_right(self.phases, t, key=lambda p: p.start_s) - 1
        return self.phases[found].rate_at(t) if found >= 0 else 0.0


def _masked(pairs: tuple[tuple[str, Text], ...]) -> tuple[tuple[str, Text], ...]:
    return tuple((name, text.masked()) for name, text in pairs)

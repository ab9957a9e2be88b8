"""Fakes for the run's seams, on a `ManualClock`: a transport whose answers are scripted and a
replica source whose samples are. With them, whole runs (and the engine's pacer, users and
dispatcher on their own) are played in milliseconds, and every time they see is exact: a send
happens at the clock time the pacer reached, its answer comes exactly the scripted delay later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from nimbus_scenarios.clock import Clock
from nimbus_scenarios.engine.request import ErrorKind, Outcome, PreparedRequest, status_outcome
from nimbus_scenarios.replicas import ReplicaSample
from nimbus_scenarios.scaling import AutoscalerSample, PodRecord

__all__ = [
    "Answer",
    "ScriptedReplicaSource",
    "ScriptedScalingSource",
    "ScriptedTransport",
    "Sent",
    "answer_after",
    "answer_by_path",
]

Answer = Callable[[PreparedRequest], tuple[float, Outcome]]
"""How the fake target answers a request: after how many seconds, with what outcome."""


@dataclass(frozen=True, slots=True)
class Sent:
    """One request the fake transport was given, with the clock time it was given."""

    at: float
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    """The extra headers the request was sent with (none: empty)."""

    @property
    def path(self) -> str:
        """The URL's path (and query, if any)."""
        parts = urlsplit(self.url)
        return f"{parts.path}?{parts.query}" if parts.query else parts.path


def ok_at_once(_request: PreparedRequest) -> tuple[float, Outcome]:
    """Every request answers 200 at once."""
    return 0.0, status_outcome(200)


def answer_after(delay_s: float, outcome: Outcome | None = None) -> Answer:
    """Every request answers `outcome` (a 200 unless given) after `delay_s`."""
    fixed = (delay_s, outcome if outcome is not None else status_outcome(200))
    return lambda _request: fixed


def answer_by_path(
    routes: dict[str, tuple[float, int | ErrorKind]],
    default: tuple[float, int | ErrorKind] = (0.0, 200),
) -> Answer:
    """Answers chosen by the request path's last segment: (delay, status or error kind)."""

    def answer(request: PreparedRequest) -> tuple[float, Outcome]:
        path = request.url.split("?", 1)[0].rsplit("/", 1)[-1]
        delay, result = routes.get(path, default)
        if isinstance(result, ErrorKind):
            return delay, Outcome(None, result)
        return delay, status_outcome(result)

    return answer


class ScriptedTransport:
    """A `LoadTransport` whose target answers as `answer` says, waiting on `clock`."""

    def __init__(self, clock: Clock, answer: Answer = ok_at_once) -> None:
        self.clock = clock
        self.answer = answer
        self.sent: list[Sent] = []
        self.closed = False

    @property
    def connections_opened(self) -> int:
        """Not counted: there are no connections."""
        return 0

    async def send(
        self,
        request: PreparedRequest,
        extra_headers: tuple[tuple[str, str], ...] | None = None,
    ) -> Outcome:
        """Record the request, wait the scripted delay, return the scripted outcome."""
        now = self.clock.now()
        self.sent.append(Sent(now, request.method, request.url, extra_headers or ()))
        delay, outcome = self.answer(request)
        if delay > 0:
            await self.clock.sleep_until(now + delay)
        return outcome

    async def aclose(self) -> None:
        """Note that the transport was closed."""
        self.closed = True

    def paths(self, suffix: str = "") -> list[Sent]:
        """The requests whose URL path ends with `suffix`, in order."""
        return [s for s in self.sent if s.url.split("?", 1)[0].endswith(suffix)]

    def send_times(self) -> list[float]:
        """The clock time of every send, in order."""
        return [s.at for s in self.sent]


@dataclass
class ScriptedReplicaSource:
    """A `ReplicaSource` playing a script of (offset, ready, desired) on `clock`, offsets from
    when it is started; `lost_after` makes it lose the Deployment at that offset.

    Freshness is scripted too: the data is fresh up to now, or only up to the last multiple of
    `proof_every` (a source proving itself every so often), and never past `stale_after` (from
    there on it proves nothing, though the script's later samples still appear, as a source
    that recovers late would record them).
    """

    clock: Clock
    script: Sequence[tuple[float, int, int]]
    lost_after: float | None = None
    stale_after: float | None = None
    proof_every: float | None = None
    stale_after_s: float = 5.0
    start_error: str | None = None
    description: str = "deployment test/consumer (scripted)"
    autoscaler: str | None = None
    killed: list[str] = field(default_factory=list)
    started_at: float | None = None
    stopped: bool = False

    @property
    def samples(self) -> list[ReplicaSample]:
        """The script's samples whose time has come (and, once lost, none after that)."""
        if self.started_at is None:
            return []
        now = self.clock.now()
        limit = now if self.lost_at is None else min(now, self.lost_at)
        base = self.started_at
        return [
            ReplicaSample(base + t, ready, desired, ready)
            for t, ready, desired in self.script
            if base + t <= limit
        ]

    @property
    def lost_at(self) -> float | None:
        """When the source was lost, once that moment has come."""
        if self.started_at is None or self.lost_after is None:
            return None
        at = self.started_at + self.lost_after
        return at if self.clock.now() >= at else None

    @property
    def fresh_until(self) -> float | None:
        """Now, or the last proof before it; never past `stale_after` or the loss."""
        if self.started_at is None:
            return None
        base = self.started_at
        elapsed = self.clock.now() - base
        if self.proof_every is not None:
            elapsed = math.floor(elapsed / self.proof_every) * self.proof_every
        for limit in (self.stale_after, self.lost_after):
            if limit is not None:
                elapsed = min(elapsed, limit)
        return base + elapsed

    async def start(self) -> None:
        """Start the script now (or fail as scripted)."""
        if self.start_error is not None:
            raise RuntimeError(self.start_error)
        self.started_at = self.clock.now()

    async def stop(self) -> None:
        """Note that the source was stopped."""
        self.stopped = True

    async def kill_pods(self, count: int) -> list[str]:
        """Pretend to delete `count` pods."""
        names = [f"consumer-{len(self.killed) + i}" for i in range(count)]
        self.killed.extend(names)
        return names


@dataclass
class ScriptedScalingSource(ScriptedReplicaSource):
    """A `ScriptedReplicaSource` that is also a `ScalingRecorder`: autoscaler samples and pods
    scripted with times as offsets from when it is started, each seen once its time has come.

    A scripted pod appears once created (a pod with no creation time, one there before the
    run, from the start); each of its later times (scheduled, started, ready, deleted) is
    None until it has come. `restarts` scripts (offset, pod, restart count) steps on top of the
    pods' own `restarts` (their count from the start).
    """

    autoscaler_script: Sequence[AutoscalerSample] = ()
    pod_script: Sequence[PodRecord] = ()
    restarts: Sequence[tuple[float, str, int]] = ()
    watched: bool = True

    @property
    def autoscaler_samples(self) -> list[AutoscalerSample]:
        """The scripted autoscaler samples whose time has come, on the clock."""
        if self.started_at is None:
            return []
        base, now = self.started_at, self.clock.now()
        return [replace(s, at=base + s.at) for s in self.autoscaler_script if base + s.at <= now]

    @property
    def pods(self) -> list[PodRecord]:
        """The scripted pods seen so far, each as far as it got, on the clock."""
        if self.started_at is None or not self.watched:
            return []
        base, now = self.started_at, self.clock.now()

        def seen(at: float | None) -> float | None:
            return None if at is None or base + at > now else base + at

        found = []
        for pod in self.pod_script:
            if pod.created is not None and base + pod.created > now:
                continue
            restarts = pod.restarts
            for at, name, count in self.restarts:
                if name == pod.name and base + at <= now:
                    restarts = count
            found.append(
                replace(
                    pod,
                    created=seen(pod.created),
                    scheduled=seen(pod.scheduled),
                    started=seen(pod.started),
                    ready=seen(pod.ready),
                    deleted=seen(pod.deleted),
                    restarts=restarts,
                )
            )
        return found

    @property
    def pods_watched(self) -> bool:
        """Whether the script watches pods (`watched`)."""
        return self.watched

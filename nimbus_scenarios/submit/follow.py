"""What `submit` makes of its pods at each poll: pure decisions, tested in milliseconds.

`step(seen, pods, job, ...)` takes what the follower remembered, the pods and Job as just read,
and the time, and says what to print (one line per pod whose state changed, prefixed by its
shard), whether an infrastructure failure ends the run (`Failure`: the image cannot be pulled,
the pod cannot be scheduled past a deadline, it was evicted or OOMKilled), whether every shard
runs (the moment to write a sharded run's start) and whether the run is over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nimbus_scenarios.kube.pods import JobStatus, PodPhase, PodStatus

__all__ = [
    "CONTAINER_FAILURES",
    "Failure",
    "FollowTiming",
    "Seen",
    "Step",
    "describe",
    "newest_per_shard",
    "pod_failure",
    "prefix",
    "step",
]

CONTAINER_FAILURES = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
"""Container waiting reasons that never resolve by waiting longer (for this run)."""


@dataclass(frozen=True, slots=True)
class FollowTiming:
    """How `submit` follows a run."""

    poll_s: float = 1.0
    """Pods and the Job are read this often."""
    unschedulable_s: float = 120.0
    """A pod the scheduler cannot place for this long fails the run."""
    start_margin_s: float = 5.0
    """A sharded run starts this long after the moment its last pod was seen running."""
    deadline_margin_s: float = 120.0
    """Following gives up this long after the Job's activeDeadlineSeconds."""
    stop_join_s: float = 5.0
    """How long the log followers get to finish once the run is over."""


@dataclass(frozen=True, slots=True)
class Failure:
    """An infrastructure failure of one pod (exit 4): its shard, pod and the reason."""

    shard: int | None
    pod: str | None
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        where = f"shard {self.shard} (pod {self.pod})" if self.pod else "the Job"
        return f"{where}: {self.reason}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True, slots=True)
class Seen:
    """What the follower remembers between polls."""

    shown: Mapping[str, str] = field(default_factory=dict)
    """The last state printed per pod name."""
    unschedulable_since: Mapping[str, float] = field(default_factory=dict)
    """When each pod was first seen unschedulable (while it still is)."""


@dataclass(frozen=True, slots=True)
class Step:
    """The decisions of one poll."""

    seen: Seen
    lines: tuple[str, ...]
    failure: Failure | None
    all_running: bool
    """Every shard's pod runs (or has already ended): a sharded run may start."""
    finished: bool
    """Every shard's pod has ended, or the Job has finished and no pod is left running."""
    pods: tuple[PodStatus, ...]
    """The newest pod of each shard, by shard."""


def prefix(shard: int) -> str:
    """The prefix of a shard's lines."""
    return f"[{shard}] "


def describe(pod: PodStatus) -> str:
    """A pod's state in a few words: `Pending: ContainerCreating`, `Failed: OOMKilled (exit
    137)`, `Succeeded (exit 0)`."""
    reason = pod.reason if pod.reason else None
    if pod.phase is PodPhase.PENDING:
        reason = pod.waiting or ("Unschedulable" if pod.unschedulable else reason)
    elif pod.phase.ended:
        reason = reason or (pod.terminated if pod.terminated not in (None, "Completed") else None)
    text = pod.phase.value + (f": {reason}" if reason else "")
    if pod.phase.ended and pod.exit_code is not None:
        text += f" (exit {pod.exit_code})"
    if pod.deleting and not pod.phase.ended:
        text += ", being deleted"
    return text


def pod_failure(pod: PodStatus, unschedulable_for_s: float, limit_s: float) -> Failure | None:
    """The infrastructure failure a pod shows, if any.

    A load generator that ran and exited (whatever its code) is not one: its log says how the
    run went, and collecting the results decides.
    """

    def failed(reason: str, detail: str = "") -> Failure:
        return Failure(pod.shard, pod.name, reason, detail or pod.message)

    if pod.waiting in CONTAINER_FAILURES:
        return failed(pod.waiting)
    if pod.terminated == "OOMKilled":
        return failed("OOMKilled", "the load generator ran out of memory; raise its limit")
    if pod.reason == "Evicted":
        return failed("Evicted")
    if pod.unschedulable is not None and unschedulable_for_s >= limit_s:
        return failed("Unschedulable", f"for {unschedulable_for_s:.0f}s: {pod.unschedulable}")
    if pod.phase is PodPhase.FAILED and pod.exit_code is None:
        # Failed without the container ever ending on its own: killed by the kubelet.
        return failed(pod.reason or pod.terminated or "Failed")
    return None


def newest_per_shard(pods: Sequence[PodStatus], shards: int) -> dict[int, PodStatus]:
    """The newest pod of each shard 0..shards-1 (a shard may have had more than one)."""
    newest: dict[int, PodStatus] = {}
    for pod in sorted(pods, key=lambda p: (p.created, p.name)):
        if 0 <= pod.shard < shards:
            newest[pod.shard] = pod
    return newest


def step(
    seen: Seen,
    pods: Sequence[PodStatus],
    job: JobStatus | None,
    *,
    shards: int,
    now: float,
    timing: FollowTiming,
) -> Step:
    """One poll's decisions (see the module's docstring)."""
    newest = newest_per_shard(pods, shards)
    lines: list[str] = []
    shown = dict(seen.shown)
    since: dict[str, float] = {}
    failure: Failure | None = None
    for shard, pod in sorted(newest.items()):
        state = describe(pod)
        if shown.get(pod.name) != state:
            shown[pod.name] = state
            lines.append(f"{prefix(shard)}pod {pod.name}: {state}")
        if pod.unschedulable is not None:
            since[pod.name] = seen.unschedulable_since.get(pod.name, now)
        waited = now - since.get(pod.name, now)
        failure = failure or pod_failure(pod, waited, timing.unschedulable_s)
    ended = [p for p in newest.values() if p.phase.ended]
    running = [p for p in newest.values() if p.phase is PodPhase.RUNNING]
    every_shard = len(newest) == shards
    active = any(not p.phase.ended for p in pods)
    finished = (every_shard and len(ended) == shards) or (
        job is not None and job.finished is not None and not active
    )
    if failure is None and job is not None and job.finished == "Failed" and not pods:
        failure = Failure(None, None, job.reason or "Failed", job.message)
    return Step(
        seen=Seen(shown, since),
        lines=tuple(lines),
        failure=failure,
        all_running=every_shard and len(running) + len(ended) == shards,
        finished=finished,
        pods=tuple(pod for _, pod in sorted(newest.items())),
    )

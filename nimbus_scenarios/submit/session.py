"""`submit`'s driver: pre-flight, create, follow, collect; or attach to a run and do the rest.

Synchronous on purpose: every call to the API blocks (the official client), so nothing here
runs on an event loop; the pods' logs are followed on threads of their own (`logs`). What to
do at each poll is decided by the pure `follow.step`.

Order, and what each failure leaves behind:
1. pre-flight: a SelfSubjectAccessReview per call `submit` will make; a forbidden one is exit 4
   naming the verb and namespace, before anything is created;
2. the scenario's ConfigMap (content-addressed: the same file again is not created twice), a
   sharded run's start ConfigMap (empty), then the Job (the start ConfigMap is then owned by it);
3. follow: pod phases and the runner's lines; an infrastructure failure deletes the Job (with
   its pods) and is exit 4 with the pod's reason; a stop request deletes it too (exit 3), unless
   told to leave it; once every shard's pod runs, the start is written;
4. collect every shard's results from its log and merge them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nimbus_scenarios.errors import ClusterError, UsageError
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.kube.jobs import CONTAINER, RUN_ID_LABEL
from nimbus_scenarios.kube.pods import JobStatus, PodPhase, PodStatus
from nimbus_scenarios.kube.runs import RunCluster, submit_permissions
from nimbus_scenarios.submit.collect import Collected, ShardLog, collect
from nimbus_scenarios.submit.follow import Failure, FollowTiming, Seen, prefix, step
from nimbus_scenarios.submit.logs import LogFollower, Printer, open_follow

__all__ = ["NewRun", "Outcome", "RunRef", "Session", "attach_command"]

DEFAULT_DEADLINE_S = 6 * 3600
"""How long a Job without activeDeadlineSeconds is followed."""


@dataclass(frozen=True, slots=True)
class RunRef:
    """A submitted run: how to find its Job and pods, and its shape."""

    run_id: str
    job: str
    namespace: str
    shards: int
    start_configmap: str | None = None
    """Where a sharded run's start is written (None: one pod, no start to share)."""
    deadline_s: int | None = None

    @property
    def selector(self) -> str:
        """The label selector of the run's Job and pods."""
        return f"{RUN_ID_LABEL}={self.run_id}"


@dataclass(frozen=True, slots=True)
class NewRun:
    """What `submit` creates: the scenario's ConfigMap, the start's (sharded), the Job."""

    ref: RunRef
    scenario_configmap: Mapping[str, Any]
    job: Mapping[str, Any]
    start_configmap: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How `submit` ended: the collected results, or none (detached or stopped)."""

    exit_code: ExitCode
    collected: Collected | None = None


def attach_command(ref: RunRef) -> str:
    """The command that picks a detached run up again."""
    return f"nimbus-scenarios submit --attach {ref.run_id} --namespace {ref.namespace}"


def start_configmap_name(run_id: str) -> str:
    """A sharded run's start ConfigMap."""
    return f"nimbus-run-{run_id}"


@dataclass
class Session:
    """One `submit` or `submit --attach` against one namespace."""

    cluster: RunCluster
    printer: Printer
    stopped: Callable[[], bool]
    """Whether a stop (Ctrl-C, SIGTERM) was requested; asked between calls."""
    timing: FollowTiming = field(default_factory=FollowTiming)
    verbose: bool = False
    """Echo the runner's JSON event lines too (`--verbose`), not only its status lines."""
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    # ------------------------------------------------------------ submit
    def submit(self, new: NewRun, *, detach: bool = False) -> Outcome:
        """Pre-flight, create the run, then follow and collect it (or leave it, `detach`)."""
        ref = new.ref
        self.cluster.check(submit_permissions(sharded=ref.shards > 1))
        if self.stopped():
            return self._stopped_before(ref)
        created = self.cluster.put_configmap(new.scenario_configmap)
        name = new.scenario_configmap.get("metadata", {}).get("name")
        self.printer.line(
            f"scenario ConfigMap {name}: {'created' if created else 'already there, unchanged'}"
        )
        if new.start_configmap is not None:
            self.cluster.put_configmap(new.start_configmap)
        if self.stopped():
            return self._stopped_before(ref)
        uid = self.cluster.create_job(new.job)
        kind = f"Indexed Job of {ref.shards} pods" if ref.shards > 1 else "Job"
        self.printer.line(f"created {kind} {ref.namespace}/{ref.job} (run id {ref.run_id})")
        if ref.start_configmap is not None:
            self.cluster.own(ref.start_configmap, ref.job, uid)
        if detach:
            self.printer.line(f"detached; pick it up again with: {attach_command(ref)}")
            return Outcome(ExitCode.OK)
        return self.follow(ref, leave_on_stop=False)

    def _stopped_before(self, ref: RunRef) -> Outcome:
        self.printer.line(f"stopped before the Job {ref.job} was created; nothing runs")
        return Outcome(ExitCode.ABORTED)

    # ------------------------------------------------------------ attach
    def find(self, run_id: str, namespace: str) -> RunRef:
        """The run of `run_id`, from its Job (by label)."""
        selector = f"{RUN_ID_LABEL}={run_id}"
        jobs = self.cluster.jobs(selector)
        if not jobs:
            # The cluster answered: the id (or namespace) given names nothing, as a missing file
            # would (exit 2). A finished Job goes ttlSecondsAfterFinished after it ends.
            raise UsageError(
                f"no Job with run id {run_id} in namespace {namespace}: check the id and "
                "--namespace; a finished Job is deleted ttlSecondsAfterFinished after it ends"
            )
        job = jobs[0]
        sharded = job.shards > 1
        return RunRef(
            run_id=run_id,
            job=job.name,
            namespace=namespace,
            shards=job.shards,
            start_configmap=start_configmap_name(run_id) if sharded else None,
            deadline_s=job.active_deadline_s,
        )

    def attach(self, run_id: str, namespace: str, *, leave_on_stop: bool = False) -> Outcome:
        """Pre-flight, find a submitted run, then follow and collect it."""
        self.cluster.check(submit_permissions(sharded=False, attach=True))
        ref = self.find(run_id, namespace)
        if ref.shards > 1:
            self.cluster.check(submit_permissions(sharded=True, attach=True))
        self.printer.line(f"attached to Job {namespace}/{ref.job} ({ref.shards} shard(s))")
        return self.follow(ref, leave_on_stop=leave_on_stop)

    # ------------------------------------------------------------ follow and collect
    def follow(self, ref: RunRef, *, leave_on_stop: bool) -> Outcome:
        """Follow the run to its end, then collect its results."""
        followers: dict[str, LogFollower] = {}
        started = ref.start_configmap is None or self.cluster.start_written(ref.start_configmap)
        limit = (ref.deadline_s or DEFAULT_DEADLINE_S) + self.timing.deadline_margin_s
        give_up = self.clock() + limit
        seen = Seen()
        job: JobStatus | None = None
        pods: tuple[PodStatus, ...] = ()
        over = False
        try:
            while True:
                if self.stopped():
                    return self._stop(ref, leave_on_stop)
                if self.clock() > give_up:
                    self._fail(ref, Failure(None, None, "not finished", f"after {limit:.0f}s"))
                jobs = self.cluster.jobs(ref.selector)
                job = jobs[0] if jobs else None
                found = self.cluster.pods(ref.selector, CONTAINER)
                if job is None and not found:
                    raise ClusterError(f"Job {ref.namespace}/{ref.job} is gone (deleted?)")
                decided = step(
                    seen, found, job, shards=ref.shards, now=self.clock(), timing=self.timing
                )
                seen, pods = decided.seen, decided.pods
                for line in decided.lines:
                    self.printer.line(line)
                self._follow_logs(ref, pods, followers)
                if decided.failure is not None:
                    self._fail(ref, decided.failure)
                if not started and decided.all_running and ref.start_configmap is not None:
                    start_at = self.wall() + self.timing.start_margin_s
                    self.cluster.write_start(ref.start_configmap, start_at)
                    self.printer.line(
                        f"every shard runs: the load starts in {self.timing.start_margin_s:g}s"
                    )
                    started = True
                if decided.finished:
                    over = True
                    break
                self.sleep(self.timing.poll_s)
        finally:
            # Over: the containers have ended, so their streams end by themselves; otherwise
            # (a failure, a stop) they are cut at once.
            for follower in followers.values():
                if over:
                    follower.finish(self.timing.stop_join_s)
                else:
                    follower.stop(0.5)
        return self._collect(ref, pods, job)

    def _follow_logs(
        self, ref: RunRef, pods: tuple[PodStatus, ...], followers: dict[str, LogFollower]
    ) -> None:
        for pod in pods:
            if pod.name in followers or not (pod.phase is PodPhase.RUNNING or pod.phase.ended):
                continue
            follower = LogFollower(
                open_follow(self.cluster, pod.name, CONTAINER),
                prefix(pod.shard),
                self.printer,
                verbose=self.verbose,
            )
            followers[pod.name] = follower
            follower.start()

    def _collect(self, ref: RunRef, pods: tuple[PodStatus, ...], job: JobStatus | None) -> Outcome:
        logs = []
        for pod in pods:
            try:
                logs.append(ShardLog(pod.shard, pod, self.cluster.read_log(pod.name, CONTAINER)))
            except ClusterError as exc:
                logs.append(ShardLog(pod.shard, pod, None, str(exc)))
        collected = collect(logs, ref.shards, job)
        for note in collected.notes:
            self.printer.line(note)
        return Outcome(collected.results.exit_code, collected)

    def _fail(self, ref: RunRef, failure: Failure) -> None:
        """An infrastructure failure: delete the Job (nothing will complete it) and raise."""
        deleted = self._delete(ref)
        raise ClusterError(f"{failure}; {deleted}")

    def _stop(self, ref: RunRef, leave: bool) -> Outcome:
        if leave:
            self.printer.line(f"stopped following; the run goes on: {attach_command(ref)}")
        else:
            self.printer.line(f"stopped: {self._delete(ref)}")
        return Outcome(ExitCode.ABORTED)

    def _delete(self, ref: RunRef) -> str:
        """Delete the Job and its pods; what was done, in words."""
        try:
            gone = self.cluster.delete_job(ref.job)
        except ClusterError as exc:
            return f"the Job {ref.namespace}/{ref.job} could not be deleted ({exc})"
        if not gone:
            return f"the Job {ref.namespace}/{ref.job} was gone already"
        return f"deleted the Job {ref.namespace}/{ref.job} and its pods"

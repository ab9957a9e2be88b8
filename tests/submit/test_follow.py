"""`submit.follow` and `kube.pods`: what a poll of the run's pods and Job decides (lines to print,
an infrastructure failure and its reason, when every shard runs, when the run is over), from
pods as the API serves them. Pure: milliseconds."""

from __future__ import annotations

from typing import Any

import pytest

from nimbus_scenarios.kube.pods import COMPLETION_INDEX, JobStatus, PodPhase, read_job, read_pod
from nimbus_scenarios.submit.follow import FollowTiming, Seen, describe, pod_failure, step

TIMING = FollowTiming(unschedulable_s=60.0)
CONTAINER = "load-generator"


def pod_json(
    name: str,
    shard: int = 0,
    phase: str = "Pending",
    *,
    waiting: str | None = None,
    terminated: tuple[str, int] | None = None,
    reason: str | None = None,
    unschedulable: bool = False,
    created: str = "2026-01-01T00:00:00Z",
    message: str = "",
) -> dict[str, Any]:
    """A pod of an Indexed Job as the API serves it."""
    state: dict[str, Any] = {}
    if waiting:
        state["waiting"] = {"reason": waiting, "message": message}
    if terminated:
        state["terminated"] = {"reason": terminated[0], "exitCode": terminated[1]}
    status: dict[str, Any] = {
        "phase": phase,
        "containerStatuses": [
            {"name": "wait-for-consumer", "state": {"terminated": {"exitCode": 0}}},
            {"name": CONTAINER, "state": state},
        ],
    }
    if reason:
        status["reason"] = reason
        status["message"] = message
    if unschedulable:
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient cpu.",
            }
        ]
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "labels": {COMPLETION_INDEX: str(shard)},
        },
        "status": status,
    }


def pod(*args: Any, **kwargs: Any) -> Any:
    return read_pod(pod_json(*args, **kwargs), CONTAINER)


def test_read_pod_keeps_the_load_generators_state_not_the_init_containers() -> None:
    """The shard comes from the completion index; the waiting and terminated states from the
    load generator's container; the pod's own reason and the scheduler's message are kept."""
    read = pod("p-1", 1, "Failed", terminated=("OOMKilled", 137))
    assert (read.shard, read.phase, read.terminated, read.exit_code) == (
        1,
        PodPhase.FAILED,
        "OOMKilled",
        137,
    )
    waiting = pod("p-0", waiting="ImagePullBackOff", message="Back-off pulling image")
    assert (waiting.waiting, waiting.message) == ("ImagePullBackOff", "Back-off pulling image")
    assert pod("p-0", unschedulable=True).unschedulable == (
        "0/3 nodes are available: 3 Insufficient cpu."
    )
    assert read_pod({"metadata": {"name": "x"}, "status": {"phase": "Weird"}}, CONTAINER).phase is (
        PodPhase.UNKNOWN
    )


def test_read_job_keeps_its_shape_and_finished_condition() -> None:
    """Completions are the shards; a True Complete/Failed condition is the Job's end."""
    job = read_job(
        {
            "metadata": {"name": "nimbus-heavy-1"},
            "spec": {"completions": 3, "activeDeadlineSeconds": 900},
            "status": {
                "conditions": [
                    {"type": "FailureTarget", "status": "True"},
                    {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"},
                ]
            },
        }
    )
    assert job == JobStatus("nimbus-heavy-1", 3, 900, "Failed", "DeadlineExceeded", "")
    assert read_job({"metadata": {"name": "j"}, "spec": {}}).finished is None


@pytest.mark.parametrize(
    ("read", "reason"),
    [
        (pod("p", waiting="ImagePullBackOff"), "ImagePullBackOff"),
        (pod("p", waiting="ErrImagePull"), "ErrImagePull"),
        (pod("p", 0, "Failed", terminated=("OOMKilled", 137)), "OOMKilled"),
        (pod("p", 0, "Failed", reason="Evicted", message="low on memory"), "Evicted"),
        (pod("p", 0, "Failed", reason="DeadlineExceeded"), "DeadlineExceeded"),
    ],
)
def test_infrastructure_failures_name_the_pods_reason(read: Any, reason: str) -> None:
    """Each failure the cluster causes is reported with its reason, shard and pod."""
    failure = pod_failure(read, 0.0, 60.0)
    assert failure is not None
    assert failure.reason == reason
    assert str(failure).startswith(f"shard 0 (pod p): {reason}")


@pytest.mark.parametrize(
    "read",
    [
        pod("p", waiting="ContainerCreating"),
        pod("p", 0, "Running"),
        pod("p", 0, "Failed", terminated=("Error", 1)),  # an expectation failed: results say so
        pod("p", 0, "Failed", terminated=("Error", 4)),  # collected: names the shard then
        pod("p", 0, "Succeeded", terminated=("Completed", 0)),
    ],
)
def test_a_runner_that_ran_is_no_infrastructure_failure(read: Any) -> None:
    """Pods starting, running or ended by the runner itself are left to the results."""
    assert pod_failure(read, 0.0, 60.0) is None


def test_unschedulable_fails_only_past_its_deadline() -> None:
    """The scheduler may place a pod later (an autoscaled node pool): only the time since it was
    first seen unschedulable, carried between polls, decides."""
    waiting = pod("p-0", unschedulable=True)
    first = step(Seen(), [waiting], None, shards=1, now=100.0, timing=TIMING)
    assert first.failure is None
    assert first.seen.unschedulable_since == {"p-0": 100.0}
    later = step(first.seen, [waiting], None, shards=1, now=159.0, timing=TIMING)
    assert later.failure is None
    assert later.lines == ()  # nothing changed: nothing printed again
    past = step(later.seen, [waiting], None, shards=1, now=160.0, timing=TIMING)
    assert past.failure is not None
    assert past.failure.reason == "Unschedulable"
    assert "Insufficient cpu" in past.failure.detail
    placed = step(later.seen, [pod("p-0", "Running")], None, shards=1, now=170.0, timing=TIMING)
    assert placed.failure is None
    assert placed.seen.unschedulable_since == {}


def test_lines_show_each_change_once_with_the_shards_prefix() -> None:
    """One line per pod whose state changed, prefixed `[i] `; unchanged pods say nothing."""
    pods = [pod("p-0", 0, waiting="ContainerCreating"), pod("p-1", 1)]
    first = step(Seen(), pods, None, shards=2, now=0.0, timing=TIMING)
    assert first.lines == (
        "[0] pod p-0: Pending: ContainerCreating",
        "[1] pod p-1: Pending",
    )
    pods = [pod("p-0", 0, "Running"), pod("p-1", 1)]
    second = step(first.seen, pods, None, shards=2, now=1.0, timing=TIMING)
    assert second.lines == ("[0] pod p-0: Running",)


def test_every_shard_running_is_the_moment_to_start() -> None:
    """The start is written only once every shard's pod runs (an ended one counts as started)."""
    some = [pod("p-0", 0, "Running"), pod("p-1", 1)]
    assert not step(Seen(), some, None, shards=2, now=0.0, timing=TIMING).all_running
    missing = [pod("p-0", 0, "Running")]
    assert not step(Seen(), missing, None, shards=2, now=0.0, timing=TIMING).all_running
    every = [pod("p-0", 0, "Running"), pod("p-1", 1, "Running")]
    assert step(Seen(), every, None, shards=2, now=0.0, timing=TIMING).all_running


def test_the_run_is_over_when_every_shard_ended_or_the_job_finished_with_none_running() -> None:
    """Ended pods for every shard end it; so does a finished Job once no pod is left running
    (a shard whose pod vanished is then missing from the results)."""
    ended = [pod("p-0", 0, "Succeeded"), pod("p-1", 1, "Failed", terminated=("Error", 1))]
    assert step(Seen(), ended, None, shards=2, now=0.0, timing=TIMING).finished
    half = [pod("p-0", 0, "Succeeded"), pod("p-1", 1, "Running")]
    failed_job = JobStatus("j", 2, None, "Failed", "PodFailurePolicy")
    assert not step(Seen(), half, failed_job, shards=2, now=0.0, timing=TIMING).finished
    gone = [pod("p-0", 0, "Succeeded")]
    assert step(Seen(), gone, failed_job, shards=2, now=0.0, timing=TIMING).finished
    assert not step(Seen(), gone, None, shards=2, now=0.0, timing=TIMING).finished


def test_a_job_failed_without_pods_is_a_failure_of_the_job() -> None:
    """A Job that failed before any pod was made (a quota, a bad spec) says why."""
    job = JobStatus("j", 1, None, "Failed", "FailedCreate", "exceeded quota")
    decided = step(Seen(), [], job, shards=1, now=0.0, timing=TIMING)
    assert decided.failure is not None
    assert str(decided.failure) == "the Job: FailedCreate: exceeded quota"


def test_the_newest_pod_of_a_shard_counts() -> None:
    """A shard that had two pods is judged by the newer one."""
    old = pod("p-0-a", 0, "Failed", reason="Evicted", created="2026-01-01T00:00:00Z")
    new = pod("p-0-b", 0, "Running", created="2026-01-01T00:01:00Z")
    decided = step(Seen(), [new, old], None, shards=1, now=0.0, timing=TIMING)
    assert decided.failure is None
    assert [p.name for p in decided.pods] == ["p-0-b"]


def test_describe_reads_like_kubectl() -> None:
    """Phase, then the reason that matters, then the exit code once ended."""
    assert describe(pod("p", 0, "Succeeded", terminated=("Completed", 0))) == "Succeeded (exit 0)"
    assert describe(pod("p", 0, "Failed", terminated=("OOMKilled", 137))) == (
        "Failed: OOMKilled (exit 137)"
    )
    assert describe(pod("p", unschedulable=True)) == "Pending: Unschedulable"

"""`submit.session.Session.follow` on a scripted cluster: the order of its calls and what each
outcome leaves. A sharded run's start is written only once every pod runs; an image that cannot
be pulled deletes the Job and is exit 4 naming the reason; a stop deletes the Job (exit 3), or
leaves it when told to; a finished run's logs are collected and merged."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from nimbus_scenarios.errors import ClusterError
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.kube.pods import JobStatus, PodPhase, PodStatus
from nimbus_scenarios.kube.runs import RunCluster
from nimbus_scenarios.results.model import RunVerdict
from nimbus_scenarios.submit.follow import FollowTiming
from nimbus_scenarios.submit.logs import Printer
from nimbus_scenarios.submit.session import RunRef, Session
from tests.submit.conftest import Logs

TIMING = FollowTiming(poll_s=0.0, unschedulable_s=5.0, start_margin_s=2.0, stop_join_s=1.0)
REF = RunRef("abc123", "nimbus-x-abc123", "ns", 2, "nimbus-run-abc123", 60)


class _Lines:
    def __init__(self, lines: list[str]) -> None:
        self._lines = lines

    def lines(self) -> Iterator[str]:
        yield from self._lines

    def close(self) -> None:
        return None


@dataclass
class ScriptedCluster:
    """The calls `Session` makes, answered from a script of pod snapshots (one per poll)."""

    snapshots: list[list[PodStatus]]
    logs: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    polls: int = 0

    def start_written(self, name: str) -> bool:
        return False

    def write_start(self, name: str, start_at: float) -> None:
        self.calls.append(f"write_start {name} {start_at:g} at poll {self.polls}")

    def jobs(self, selector: str) -> list[JobStatus]:
        return [JobStatus(REF.job, REF.shards, 60)]

    def pods(self, selector: str, container: str) -> list[PodStatus]:
        self.polls += 1
        return self.snapshots[min(self.polls, len(self.snapshots)) - 1]

    def follow_log(self, pod: str, container: str) -> _Lines:
        return _Lines(self.logs.get(pod, "").splitlines())

    def read_log(self, pod: str, container: str) -> str:
        return self.logs[pod]

    def delete_job(self, name: str) -> bool:
        self.calls.append(f"delete {name}")
        return True


def session(
    cluster: ScriptedCluster, stop_at_poll: int | None = None
) -> tuple[Session, io.StringIO]:
    out = io.StringIO()

    def stopped() -> bool:
        return stop_at_poll is not None and cluster.polls >= stop_at_poll

    made = Session(
        cast(RunCluster, cluster),
        Printer(out),
        stopped,
        timing=TIMING,
        clock=lambda: float(cluster.polls),
        wall=lambda: 1000.0,
        sleep=lambda _s: None,
    )
    return made, out


def pod(shard: int, phase: PodPhase, **kwargs: Any) -> PodStatus:
    return PodStatus(f"p-{shard}", shard, phase, **kwargs)


def test_the_start_is_written_once_every_shard_runs_then_results_merge(shard_logs: Logs) -> None:
    """Pending, then one running, then both: the start (now + margin) is written at the third
    poll and only then; the ended pods' logs merge into one passed run, echoed per shard."""
    ended = [
        pod(0, PodPhase.SUCCEEDED, terminated="Completed", exit_code=0),
        pod(1, PodPhase.SUCCEEDED, terminated="Completed", exit_code=0),
    ]
    cluster = ScriptedCluster(
        [
            [pod(0, PodPhase.PENDING), pod(1, PodPhase.PENDING)],
            [pod(0, PodPhase.RUNNING), pod(1, PodPhase.PENDING)],
            [pod(0, PodPhase.RUNNING), pod(1, PodPhase.RUNNING)],
            ended,
        ],
        logs={"p-0": "warming up\n" + shard_logs["passing"][0], "p-1": shard_logs["passing"][1]},
    )
    made, out = session(cluster)
    outcome = made.follow(REF, leave_on_stop=False)
    assert cluster.calls == ["write_start nimbus-run-abc123 1002 at poll 3"]
    assert outcome.exit_code == ExitCode.OK
    assert outcome.collected is not None
    assert outcome.collected.results.verdict is RunVerdict.PASSED
    text = out.getvalue()
    assert "[0] pod p-0: Running" in text
    assert "[0] warming up" in text
    assert '"schema_version"' not in text  # the documents are collected, not echoed


def test_an_image_that_cannot_be_pulled_deletes_the_job_and_names_the_reason() -> None:
    """ImagePullBackOff is exit 4 with the pod's reason; the Job is deleted on the way."""
    cluster = ScriptedCluster(
        [
            [
                pod(0, PodPhase.PENDING, waiting="ImagePullBackOff", message="pull access denied"),
                pod(1, PodPhase.PENDING),
            ]
        ]
    )
    made, _ = session(cluster)
    with pytest.raises(ClusterError) as caught:
        made.follow(REF, leave_on_stop=False)
    assert str(caught.value) == (
        "shard 0 (pod p-0): ImagePullBackOff: pull access denied; "
        "deleted the Job ns/nimbus-x-abc123 and its pods"
    )
    assert cluster.calls == ["delete nimbus-x-abc123"]


def test_a_stop_deletes_the_job_or_leaves_it_when_told() -> None:
    """Ctrl-C while following: the Job (and its pods) is deleted, exit 3; with leave_on_stop
    (`--attach --detach`) it is left running."""
    running = [[pod(0, PodPhase.RUNNING), pod(1, PodPhase.PENDING)]]
    cluster = ScriptedCluster(running)
    made, _ = session(cluster, stop_at_poll=2)
    assert made.follow(REF, leave_on_stop=False).exit_code == ExitCode.ABORTED
    assert cluster.calls == ["delete nimbus-x-abc123"]
    left = ScriptedCluster(running)
    made, out = session(left, stop_at_poll=2)
    assert made.follow(REF, leave_on_stop=True).exit_code == ExitCode.ABORTED
    assert left.calls == []
    assert "submit --attach abc123 --namespace ns" in out.getvalue()


def test_following_gives_up_after_the_jobs_deadline() -> None:
    """A run still not over past its Job's deadline and the margin is exit 4; the Job goes."""
    cluster = ScriptedCluster([[pod(0, PodPhase.RUNNING), pod(1, PodPhase.RUNNING)]])
    made, _ = session(cluster)
    short = RunRef("abc123", "nimbus-x-abc123", "ns", 2, None, 3)
    with pytest.raises(ClusterError, match="not finished: after 123s"):
        made.follow(short, leave_on_stop=False)
    assert cluster.calls == ["delete nimbus-x-abc123"]

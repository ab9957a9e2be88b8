"""`submit.collect`: every shard's results document read from its pod's log, merged; a shard
that left none is exit 4 naming the shard, its pod, how it ended and what it said last."""

from __future__ import annotations

import pytest

from nimbus_scenarios.errors import ClusterError
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.kube.pods import JobStatus, PodPhase, PodStatus
from nimbus_scenarios.results.io import to_json
from nimbus_scenarios.results.model import RunResults, RunVerdict, ShardInfo
from nimbus_scenarios.submit.collect import ShardLog, collect
from tests.submit.conftest import Logs
from tests.support.results import make_results


def shard(index: int, count: int, **kwargs: object) -> RunResults:
    """A synthetic document of one shard (enough for what does not merge)."""
    return make_results(shard=ShardInfo(index, count), run_id=f"run{index}", **kwargs)  # type: ignore[arg-type]


def log_of(results: RunResults, *before: str) -> str:
    """A pod's log: status lines, then the document on one line (`run --print-results`)."""
    return "".join(f"{line}\n" for line in before) + to_json(results, indent=None) + "\n"


def ended(name: str, index: int, code: int) -> PodStatus:
    phase = PodPhase.SUCCEEDED if code == 0 else PodPhase.FAILED
    return PodStatus(name, index, phase, terminated="Completed" if code == 0 else "Error",
                     exit_code=code)  # fmt: skip


def test_two_shards_merge_into_one_judged_run(shard_logs: Logs) -> None:
    """The shards' documents, read among the status lines, merge: counts add up, one verdict."""
    first, second = shard_logs["passing"]
    logs = [
        ShardLog(1, ended("p-1", 1, 0), "[monitor] steady 10/s\n" + second),
        ShardLog(0, ended("p-0", 0, 0), first),
    ]
    collected = collect(logs, 2)
    merged = collected.results
    assert merged.merged_from is not None
    assert [m.shard for m in merged.merged_from] == [0, 1]
    assert merged.totals.sent == 20  # 1 s at 20/s, between the two
    assert merged.verdict is RunVerdict.PASSED
    assert merged.exit_code == ExitCode.OK
    assert collected.notes == ()


def test_one_pod_is_its_own_result() -> None:
    """An unsharded run's document is the run's, as it is."""
    document = shard(0, 1)
    collected = collect([ShardLog(0, ended("p", 0, 0), log_of(document))], 1)
    assert collected.results == document


def test_a_failed_expectation_fails_the_merged_run(shard_logs: Logs) -> None:
    """The merged verdict is re-judged on the whole: errors fail it (exit 1)."""
    first, second = shard_logs["failing"]
    logs = [
        ShardLog(0, ended("p-0", 0, 1), first),
        ShardLog(1, ended("p-1", 1, 1), second),
    ]
    merged = collect(logs, 2).results
    assert merged.verdict is RunVerdict.FAILED
    assert merged.exit_code == ExitCode.FAILED


def test_a_shard_without_results_is_exit_4_naming_it(shard_logs: Logs) -> None:
    """No document in the log: the shard, its pod, how it ended and its last words."""
    said = "nimbus-scenarios run: error: Kubernetes API unreachable"
    logs = [
        ShardLog(0, ended("p-0", 0, 0), shard_logs["passing"][0]),
        ShardLog(1, ended("p-1", 1, 4), f"starting\n{said}\n"),
    ]
    with pytest.raises(ClusterError) as caught:
        collect(logs, 2)
    message = str(caught.value)
    assert message.startswith("shard 1 (pod p-1) ended Failed: Error (exit 4) with no results")
    assert said in message
    assert ClusterError.exit_code == ExitCode.INFRASTRUCTURE


def test_missing_pods_and_unreadable_logs_are_named() -> None:
    """A shard that never had a pod, and one whose log could not be read, are both named."""
    job = JobStatus("j", 3, None, "Failed", "PodFailurePolicy")
    logs = [
        ShardLog(0, ended("p-0", 0, 0), log_of(shard(0, 3))),
        ShardLog(2, ended("p-2", 2, 0), None, "forbidden: cannot get pods/log"),
    ]
    with pytest.raises(ClusterError) as caught:
        collect(logs, 3, job)
    assert str(caught.value) == (
        "shard 1: no pod (the Job failed: PodFailurePolicy); "
        "shard 2 (pod p-2): its log cannot be read (forbidden: cannot get pods/log)"
    )


def test_a_document_of_the_wrong_shard_is_refused() -> None:
    """A log holding another shard's document is not taken for this shard's."""
    logs = [
        ShardLog(0, ended("p-0", 0, 0), log_of(shard(1, 2))),
        ShardLog(1, ended("p-1", 1, 0), log_of(shard(1, 2))),
    ]
    with pytest.raises(ClusterError, match="shard 0 \\(pod p-0\\): its results are those of"):
        collect(logs, 2)


def test_a_pod_that_ended_with_4_but_kept_results_is_noted() -> None:
    """Exit 4 with a document (pre-flight failed): judged as 4, and the pod named."""
    lost = shard(0, 1, error="target unreachable at pre-flight")
    collected = collect([ShardLog(0, ended("p-0", 0, 4), log_of(lost))], 1)
    assert collected.results.exit_code == ExitCode.INFRASTRUCTURE
    assert collected.notes == (
        "shard 0 (pod p-0) ended Failed: Error (exit 4): target unreachable at pre-flight",
    )

"""`submit` end to end against the emulated cluster (tests/kube/cluster.py: kmock with a Job
controller and a kubelet that runs the real runner per pod against a loopback target): the
verdict and exit code, the HTML written here, a failed expectation (exit 1), an image that
cannot be pulled (exit 4 naming the reason), a forbidden verb that sends nothing, not even a
cleanup, to the target, two shards merged, Ctrl-C deleting the Job, and a pod whose pre-flight
fails sending no cleanup."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nimbus_scenarios.exit_codes import ExitCode
from tests.kube.cluster import ClusterThread
from tests.support.cli import Child, Finished, assert_no_traceback, write_scenario
from tests.support.http import HttpServer, SilentServer

SCENARIO = """\
scenario "e2e" {
  request hit = GET "PATH"
  phase "steady" 2s {
    rate 10/s
    send hit
  }
  expect errors < 1%
}
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterThread]:
    """An emulated cluster whose pods run this tool."""
    emulated = ClusterThread(tmp_path / "nodes", pull_backoff_s=0.2).start()
    try:
        yield emulated
    finally:
        emulated.stop()


@pytest.fixture
def target() -> Iterator[HttpServer]:
    """The loopback target, recording every request."""
    server = HttpServer().start()
    try:
        yield server
    finally:
        server.stop()


def submit(
    folder: Path, cluster: ClusterThread, target: HttpServer, *args: str, path: str = "/hit"
) -> Finished:
    scenario = write_scenario(folder, SCENARIO.replace("PATH", path), "e2e.scn")
    config = cluster.kubeconfig(folder, "nimbusguard")
    argv = ["submit", str(scenario), "--kubeconfig", str(config), "--url", target.url]
    with Child(*argv, *args) as child:
        return child.finish(timeout_s=120)


def test_a_passing_run_exits_0_and_writes_the_html_here(
    tmp_path: Path, cluster: ClusterThread, target: HttpServer
) -> None:
    """The pod runs the real runner; its results come back through the log: verdict, exit
    code, the HTML here, every planned request at the target."""
    html = tmp_path / "report.html"
    done = submit(
        tmp_path, cluster, target, "--html", str(html), "--results", str(tmp_path / "r.json")
    )
    assert done.code == ExitCode.OK, done.stderr
    assert "verdict PASSED" in done.stderr
    assert "[0] pod nimbus-e2e-" in done.stderr
    assert html.read_text(encoding="utf-8").lstrip().startswith("<!")
    assert len([h for h in target.hits if h.path == "/hit"]) == 20


def test_a_failed_expectation_exits_1(
    tmp_path: Path, cluster: ClusterThread, target: HttpServer
) -> None:
    """Every request fails: the collected verdict fails, and so does submit (exit 1)."""
    done = submit(
        tmp_path, cluster, target, "--results", str(tmp_path / "r.json"), path="/status/500"
    )
    assert done.code == ExitCode.FAILED, done.stderr
    assert "FAIL" in done.stderr


def test_an_image_that_cannot_be_pulled_exits_4_naming_the_reason(
    tmp_path: Path, cluster: ClusterThread, target: HttpServer
) -> None:
    """The kubelet never pulls `missing/...`: exit 4 with the reason, the Job deleted."""
    done = submit(tmp_path, cluster, target, "--image", "missing/generator:1")
    assert done.code == ExitCode.INFRASTRUCTURE, done.stderr
    assert "ErrImagePull" in done.stderr or "ImagePullBackOff" in done.stderr
    assert "deleted the Job" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_forbidden_verb_sends_nothing_to_the_target(
    tmp_path: Path, cluster: ClusterThread, target: HttpServer
) -> None:
    """Pre-flight fails before a Job exists: no request at all reaches the target."""
    cluster.deny("create", "batch", "jobs")
    done = submit(tmp_path, cluster, target)
    assert done.code == ExitCode.INFRASTRUCTURE
    assert "cannot create jobs.batch in namespace nimbusguard" in done.stderr
    assert target.hits == []  # no load, and no DELETE /process/cleanup


def test_a_two_shard_run_merges_both_shards(
    tmp_path: Path, cluster: ClusterThread, target: HttpServer
) -> None:
    """Two pods, each `run --shards 2 --start-at-from configmap/...` reaching the API through
    the kubeconfig the kubelet gives it: the merged verdict, exit 0, the HTML, both shards in
    `merged_from`, and the planned total at the target."""
    html, results = tmp_path / "report.html", tmp_path / "r.json"
    done = submit(
        tmp_path, cluster, target, "--shards", "2", "--html", str(html), "--results", str(results)
    )
    assert done.code == ExitCode.OK, done.stderr
    assert "verdict PASSED" in done.stderr
    assert "[0] pod " in done.stderr
    assert "[1] pod " in done.stderr
    assert html.read_text(encoding="utf-8").lstrip().startswith("<!")
    merged = json.loads(results.read_text(encoding="utf-8"))
    assert sorted(s["shard"] for s in merged["merged_from"]) == [0, 1]
    assert len([h for h in target.hits if h.path == "/hit"]) == 20


def test_a_failed_expectation_in_two_shards_exits_1_with_both_shards_results(
    tmp_path: Path, cluster: ClusterThread, target: HttpServer
) -> None:
    """Each shard exits 1: `FailIndex` fails only its own index, so neither kills the other
    before it prints its results; submit merges both and exits with the merged verdict, 1."""
    results = tmp_path / "r.json"
    done = submit(
        tmp_path, cluster, target, "--shards", "2", "--results", str(results), path="/status/500"
    )
    assert done.code == ExitCode.FAILED, done.stderr
    merged = json.loads(results.read_text(encoding="utf-8"))
    assert sorted(s["shard"] for s in merged["merged_from"]) == [0, 1]
    (job,) = cluster.objects("batch", "jobs", "nimbusguard")
    assert job["status"]["failedIndexes"] == "0-1"
    assert [c["reason"] for c in job["status"]["conditions"]] == ["FailedIndexes"]


LONG = """\
scenario "e2e-long" {
  request hit = GET "/hit"
  phase "steady" 60s {
    rate 5/s
    send hit
  }
}
"""


def test_ctrl_c_deletes_the_job_and_ends_its_pods(
    tmp_path: Path, cluster: ClusterThread, target: HttpServer
) -> None:
    """SIGINT while the pod sends load: submit deletes the Job (its pods with it, their
    processes ended) and exits 3; nothing of the run is left in the cluster."""
    scenario = write_scenario(tmp_path, LONG, "long.scn")
    config = cluster.kubeconfig(tmp_path, "nimbusguard")
    argv = ["submit", str(scenario), "--kubeconfig", str(config), "--url", target.url]
    with Child(*argv) as child:
        child.wait_for("load at the target", lambda: len(target.paths("/hit")) >= 3, 60)
        child.signal(signal.SIGINT)
        done = child.finish(timeout_s=30)
    assert done.code == ExitCode.ABORTED, done.stderr
    assert "deleted the Job" in done.stderr
    assert_no_traceback(done.stderr)
    assert cluster.objects("batch", "jobs", "nimbusguard") == []
    assert cluster.objects("", "pods", "nimbusguard") == []
    runs = cluster.runs()
    assert runs, "the pod never ran"
    assert all(run.returncode is not None or run.deleted for run in runs)
    sent = len(target.paths("/hit"))
    time.sleep(1.0)  # a pod still running would keep sending at 5/s
    assert len(target.paths("/hit")) <= sent + 1


CLEANING = """\
scenario "e2e-cleanup" {
  request hit = GET "/hit"
  phase "steady" 2s {
    rate 5/s
    send hit
  }
  cleanup {
    send DELETE "/process/cleanup"
  }
}
"""


def test_a_pod_whose_pre_flight_fails_sends_no_cleanup(
    tmp_path: Path, cluster: ClusterThread
) -> None:
    """The pod's run cannot reach the target (it never answers `GET /`): the run ends at its
    pre-flight with exit 4, submit exits 4 naming the shard's error, and the consumer gets no
    `DELETE /process/cleanup`: there was no load to clean up after (counted at the target)."""
    scenario = write_scenario(tmp_path, CLEANING, "cleaning.scn")
    config = cluster.kubeconfig(tmp_path, "nimbusguard")
    mute = SilentServer().start()
    try:
        argv = ["submit", str(scenario), "--kubeconfig", str(config), "--url", mute.url]
        with Child(*argv, "--results", str(tmp_path / "r.json")) as child:
            done = child.finish(timeout_s=120)
        assert done.code == ExitCode.INFRASTRUCTURE, done.stderr
        assert_no_traceback(done.stderr)
        assert "does not answer" in done.stderr
        assert mute.paths("GET") == ["/"]  # the pre-flight, and nothing after it
        assert mute.paths("DELETE") == []
    finally:
        mute.stop()

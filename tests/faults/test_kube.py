"""The Kubernetes API misbehaving: unreachable mid-run, 403 at pre-flight, 410 Gone on a watch
resume, a dropped watch stream. Each case is a whole `run` in a child process reading replica
counts from the kmock-based emulator through a kubeconfig; the test plays the controllers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import CONTEXT, KubeApi
from tests.support.checks import expectation
from tests.support.cli import Child, assert_outcome, run_cli, write_scenario
from tests.support.http import HttpServer
from tests.support.wait import wait_until

WATCHED = """
scenario "watched" {
  watch deployment "consumer" namespace "default"
  request h = GET "/h"
  phase "load" PHASE {
    rate 10/s
    send h
    expect replicas >= 3 within WINDOW
  }
}
"""
EXPECTATION = "expect replicas >= 3 within WINDOW"


def watched(tmp_path: Path, window: str, phase: str = "3s") -> Path:
    """The watched scenario with a replica window of `window` in a phase of `phase`."""
    return write_scenario(tmp_path, WATCHED.replace("WINDOW", window).replace("PHASE", phase))


def run_args(scenario: Path, server: HttpServer, kube: KubeApi, results: Path) -> list[str]:
    """`run` against the recording server with the emulator's kubeconfig."""
    kubeconfig = kube.kubeconfig(results.parent)
    return [
        "run",
        str(scenario),
        "--url",
        server.url,
        "--results",
        str(results),
        "--kubeconfig",
        str(kubeconfig),
    ]


def test_kube_api_unreachable_mid_run(server: HttpServer, kube: KubeApi, tmp_path: Path) -> None:
    """The API server dies early in a 15 s phase: the source is lost during it (3 failures over
    10 s or more), lost_at is recorded and the window is not judged, exit 4."""
    results = tmp_path / "results.json"
    args = run_args(watched(tmp_path, "30s", phase="15s"), server, kube, results)
    with Child(*args) as child:
        child.wait_for("load", lambda: bool(server.paths("/h")))
        child.wait_for("the watch", lambda: kube.open_watches > 0)
        child.wait_for("half a second of load", lambda: len(server.paths("/h")) >= 5)
        kube.go_down()
        finished = child.finish(timeout_s=60)
    document = assert_outcome(finished, results, code=4, verdict="error")
    entry = expectation(document, EXPECTATION.replace("WINDOW", "30s"))
    assert entry["verdict"] == "not_judged"
    assert "lost" in entry["detail"], entry
    source = document["replica_source"]
    assert source["lost_at_s"] is not None
    assert source["lost_at_s"] <= 3.0  # the last good contact, before the API died
    phase = document["phases"][0]
    assert phase["sent"] == phase["succeeded"] == 150  # the load itself went on
    assert finished.elapsed_s < 28  # did not wait out the 30 s window


@pytest.mark.parametrize("verb", ["list", "watch"])
def test_kube_api_forbidden_at_preflight(
    server: HttpServer, kube: KubeApi, tmp_path: Path, verb: str
) -> None:
    """A 403 for a permission the watch needs stops the run at pre-flight: exit 4, no load sent."""
    kube.deny(verb, "apps", "deployments")
    results = tmp_path / "results.json"
    finished = run_cli(*run_args(watched(tmp_path, "10s"), server, kube, results))
    document = assert_outcome(finished, results, code=4, verdict="error")
    assert f"forbidden: cannot {verb} deployments.apps in namespace default" in document["error"]
    assert f"cannot {verb} deployments.apps" in finished.stderr
    assert document["totals"]["scheduled"] == 0
    assert document["expectations"] == []
    assert [h.path for h in server.hits] == ["/"]  # the pre-flight only: no load request
    assert f"context {CONTEXT}" in finished.stderr


def test_kube_watch_gone_relists(server: HttpServer, kube: KubeApi, tmp_path: Path) -> None:
    """A watch resume answered 410 Gone relists and watches on: the window is still judged."""
    results = tmp_path / "results.json"
    args = run_args(watched(tmp_path, "20s"), server, kube, results)
    with Child(*args) as child:
        child.wait_for("load", lambda: bool(server.paths("/h")))
        child.wait_for("the watch", lambda: kube.open_watches > 0)
        kube.hold_watches()
        assert kube.drop_watches(abrupt=True) == 1
        child.wait_for("the watch resume", lambda: len(kube.watches()) >= 2)
        kube.scale(replicas=3, ready=3)  # while the client is away,
        kube.compact()  # and the history it would resume from is forgotten
        kube.release_watches()
        finished = child.finish()
    document = assert_outcome(finished, results, code=0, verdict="passed")
    entry = expectation(document, EXPECTATION.replace("WINDOW", "20s"))
    assert entry["verdict"] == "passed"
    assert kube.deployment_lists() == 2  # the first list, and the relist after 410
    assert [s["ready"] for s in document["replica_source"]["samples"]][-1] == 3
    assert document["replica_source"]["lost_at_s"] is None


@pytest.mark.parametrize("abrupt", [True, False], ids=["cut", "ended"])
def test_kube_watch_dropped_resumes(
    server: HttpServer, kube: KubeApi, tmp_path: Path, abrupt: bool
) -> None:
    """A dropped watch resumes from its resourceVersion (no relist) and sees what it missed."""
    results = tmp_path / "results.json"
    args = run_args(watched(tmp_path, "20s"), server, kube, results)
    with Child(*args) as child:
        child.wait_for("load", lambda: bool(server.paths("/h")))
        child.wait_for("the watch", lambda: kube.open_watches > 0)
        kube.hold_watches()
        assert kube.drop_watches(abrupt=abrupt) == 1
        child.wait_for("the watch resume", lambda: len(kube.watches()) >= 2)
        kube.scale(replicas=3, ready=3)
        kube.release_watches()
        finished = child.finish()
    document = assert_outcome(finished, results, code=0, verdict="passed")
    assert expectation(document, EXPECTATION.replace("WINDOW", "20s"))["verdict"] == "passed"
    watches = kube.watches()
    assert watches[1]["resourceVersion"] == watches[0]["resourceVersion"]  # nothing seen between
    assert kube.deployment_lists() == 1
    assert document["replica_source"]["lost_at_s"] is None
    assert wait_until(lambda: kube.open_watches == 0, 5)  # the run closed its watch

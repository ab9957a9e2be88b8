"""Replica windows on stale data: the Kubernetes API refusing connections mid-phase, and a
watch held open silently while the Deployment scales. Each case is a whole `run` in a child
process reading replica counts from the kmock-based emulator through a kubeconfig; a window is
judged only on data the source proved fresh to its end, and what it cannot prove is not judged
(exit 4), never passed."""

from __future__ import annotations

import re
from pathlib import Path

from tests.faults.conftest import KubeApi
from tests.faults.test_kube import run_args
from tests.support.checks import expectation
from tests.support.cli import Child, assert_outcome, write_scenario
from tests.support.http import HttpServer

PHASE = """
scenario "fresh" {
  watch deployment "consumer" namespace "default"
  request h = GET "/h"
  phase "load" 8s {
    rate 10/s
    send h
    EXPECTATION
  }
}
"""


def scenario(tmp_path: Path, expectation_text: str) -> Path:
    """An 8 s phase at 10/s holding one replica expectation."""
    return write_scenario(tmp_path, PHASE.replace("EXPECTATION", expectation_text))


def stale_from(detail: str) -> int:
    """The run offset a "replica data stale from +Ns" detail names."""
    found = re.match(r"replica data stale from \+(\d+)s", detail)
    assert found, detail
    return int(found.group(1))


def api_down_after(child: Child, server: HttpServer, kube: KubeApi, requests: int) -> None:
    """Let the run send `requests` requests (at 10/s) with its watch open, then kill the API:
    every connection cut, new ones refused."""
    child.wait_for("the watch", lambda: kube.open_watches > 0)
    child.wait_for(f"{requests} requests", lambda: len(server.paths("/h")) >= requests)
    kube.go_down()


def test_api_refusing_connections_leaves_throughout_not_judged(
    server: HttpServer, kube: KubeApi, tmp_path: Path
) -> None:
    """The API refuses connections from +2 s of an 8 s phase: `replicas == 1 throughout` saw no
    violation but is not judged (the data is stale from +2 s at the latest), exit 4, not 0."""
    text = "expect replicas == 1 throughout"
    results = tmp_path / "results.json"
    with Child(*run_args(scenario(tmp_path, text), server, kube, results)) as child:
        api_down_after(child, server, kube, 20)
        finished = child.finish(timeout_s=60)
    document = assert_outcome(finished, results, code=4, verdict="error")
    entry = expectation(document, text)
    assert entry["verdict"] == "not_judged"
    assert stale_from(entry["detail"]) <= 3, entry
    assert entry["detail"].endswith("before the window closed at +8s")
    assert document["replica_source"]["lost_at_s"] is None  # stale long before it is lost
    phase = document["phases"][0]
    assert phase["sent"] == phase["succeeded"] == 80  # the load itself went on
    assert finished.elapsed_s < 30  # the run did not wait for the source's retry budget


def test_within_with_the_api_down_is_not_judged_not_failed(
    server: HttpServer, kube: KubeApi, tmp_path: Path
) -> None:
    """`replicas >= 2 within 8s` with the API down from +1 s, the Deployment never seen at 2:
    not judged (exit 4), not failed (exit 1): the source could not see whether it got there."""
    text = "expect replicas >= 2 within 8s"
    results = tmp_path / "results.json"
    with Child(*run_args(scenario(tmp_path, text), server, kube, results)) as child:
        api_down_after(child, server, kube, 10)
        finished = child.finish(timeout_s=60)
    document = assert_outcome(finished, results, code=4, verdict="error")
    entry = expectation(document, text)
    assert entry["verdict"] == "not_judged"
    assert stale_from(entry["detail"]) <= 2, entry


def test_silent_watch_while_the_deployment_scales_fails_the_window(
    server: HttpServer, kube: KubeApi, tmp_path: Path
) -> None:
    """The watch is held open silently while the Deployment scales to 3: the source's GET sees
    a version the watch never delivered, cuts the stream and resumes it, and the replayed change
    (within 2.5 s, well inside the 5 s staleness bound, so the data stays fresh) breaks
    `replicas == 1 throughout`: failed, exit 1, not passed."""
    text = "expect replicas == 1 throughout"
    results = tmp_path / "results.json"
    with Child(*run_args(scenario(tmp_path, text), server, kube, results)) as child:
        child.wait_for("the watch", lambda: kube.open_watches > 0)
        child.wait_for("load", lambda: bool(server.paths("/h")))
        assert kube.silence_watches() == 1
        kube.scale(replicas=3, ready=3)
        finished = child.finish(timeout_s=60)
    document = assert_outcome(finished, results, code=1, verdict="failed")
    entry = expectation(document, text)
    assert entry["verdict"] == "failed"
    assert entry["observed"] == 3
    assert [s["ready"] for s in document["replica_source"]["samples"]][-1] == 3
    assert kube.deployment_gets() >= 1  # the proof that found the watch behind
    assert kube.deployment_lists() == 1  # resumed from its version, not relisted
    assert len(kube.watches()) >= 2

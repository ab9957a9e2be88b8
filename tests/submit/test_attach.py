"""`submit --detach`, then `submit --attach RUN_ID`, end to end against the emulated cluster
(`kube_cluster`: kmock with a Job controller and a kubelet that runs the real runner per pod
against a loopback target): detach prints the run id and leaves the Job running; attach finds
it by its run-id label, follows, collects, writes the results and exits with the verdict; the
echo shows the runner's status lines, not its results' base64 nor its JSON events (unless
--verbose); an unknown run id is exit 2 naming it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.kube.jobs import RUN_ID_LABEL
from nimbus_scenarios.results.io import load_results
from nimbus_scenarios.results.logwire import PREFIX
from nimbus_scenarios.results.model import RunVerdict
from tests.kube.cluster import ClusterThread
from tests.support.cli import TRACEBACK, Child, Finished, write_scenario
from tests.support.http import HttpServer

NAMESPACE = "nimbusguard"
SCENARIO = """\
scenario "attach" {
  request hit = GET "/hit"
  phase "steady" 3s {
    rate 10/s
    send hit
  }
  expect errors < 1%
}
"""


def submit(folder: Path, cluster: ClusterThread, *args: str) -> Finished:
    """`submit ARGS` against the emulated cluster, in `NAMESPACE`."""
    config = cluster.kubeconfig(folder, NAMESPACE)
    with Child("submit", *args, "--kubeconfig", str(config)) as child:
        return child.finish(timeout_s=120)


def detach(folder: Path, cluster: ClusterThread, target: HttpServer) -> str:
    """Submit the scenario with --detach; its run id."""
    scenario = write_scenario(folder, SCENARIO, "attach.scn")
    done = submit(folder, cluster, str(scenario), "--url", target.url, "--detach")
    assert done.code == ExitCode.OK, done.stderr
    run_id = done.stdout.strip()
    assert re.fullmatch(r"[a-z0-9]{1,32}", run_id), done.stdout
    assert f"submit --attach {run_id} --namespace {NAMESPACE}" in done.stderr
    return run_id


def jobs_of(cluster: ClusterThread, run_id: str) -> list[dict[str, Any]]:
    return [
        job
        for job in cluster.objects("batch", "jobs", NAMESPACE)
        if job["metadata"].get("labels", {}).get(RUN_ID_LABEL) == run_id
    ]


def test_detach_then_attach_collects_the_run_and_exits_with_its_verdict(
    tmp_path: Path, kube_cluster: ClusterThread, http_server: HttpServer
) -> None:
    run_id = detach(tmp_path, kube_cluster, http_server)
    (job,) = jobs_of(kube_cluster, run_id)  # left running: not deleted, not finished
    conditions = job.get("status", {}).get("conditions") or []
    assert not [c for c in conditions if c.get("type") in ("Complete", "Failed")]

    results, html = tmp_path / "attached.json", tmp_path / "attached.html"
    done = submit(
        tmp_path, kube_cluster, "--attach", run_id, "--results", str(results), "--html", str(html)
    )
    assert done.code == ExitCode.OK, done.stderr
    assert f"attached to Job {NAMESPACE}/" in done.stderr
    document = load_results(results)
    assert document.verdict is RunVerdict.PASSED
    assert document.totals.sent == 30
    assert html.read_text(encoding="utf-8").lstrip().startswith("<!")
    assert len([hit for hit in http_server.hits if hit.path == "/hit"]) == 30
    # The echo: status lines, one line for the results, no base64, no JSON events.
    lines = done.stderr.splitlines()
    assert "[0] results: 1 line" in lines
    assert any(line.startswith("[0] [00:0") for line in lines), done.stderr  # --monitor
    assert not [line for line in lines if PREFIX in line or line.startswith("[0] {")]
    assert TRACEBACK not in done.stderr


def test_attach_with_verbose_echoes_the_json_events(
    tmp_path: Path, kube_cluster: ClusterThread, http_server: HttpServer
) -> None:
    run_id = detach(tmp_path, kube_cluster, http_server)
    done = submit(
        tmp_path, kube_cluster, "--attach", run_id, "--verbose", "--results", str(tmp_path / "r")
    )
    assert done.code == ExitCode.OK, done.stderr
    events = [line for line in done.stderr.splitlines() if line.startswith("[0] {")]
    assert any('"event": "run_ended"' in line for line in events), done.stderr
    assert PREFIX not in done.stderr


def test_attach_to_an_unknown_run_id_is_exit_2_naming_it(
    tmp_path: Path, kube_cluster: ClusterThread
) -> None:
    done = submit(tmp_path, kube_cluster, "--attach", "nosuchrun1")
    assert done.code == ExitCode.USAGE
    assert f"no Job with run id nosuchrun1 in namespace {NAMESPACE}" in done.stderr
    assert TRACEBACK not in done.stderr

"""`submit` against the emulated API server (kmock, tests/kube/apiserver.py), through the command
line: the SelfSubjectAccessReview pre-flight (a forbidden verb is exit 4 naming it, nothing
created), the content-addressed scenario ConfigMap (created once for the same file), and the
Job it sends (every safety setting, the shards and their common start)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from nimbus_scenarios.cli import main
from nimbus_scenarios.exit_codes import ExitCode
from nimbus_scenarios.kube.jobs import CONTAINER, RUN_ID_LABEL
from tests.kube.support import NS, Cluster, run
from tests.support.cli import write_scenario

SCENARIO = """\
scenario "submitted" {
  request hit = GET "/hit"
  phase "steady" 30s {
    rate 10/s
    send hit
  }
  expect errors < 1%
}
"""


def kubeconfig(folder: Path, cluster: Cluster) -> Path:
    """A kubeconfig whose context points at the emulated server, in namespace NS."""
    path = folder / "kubeconfig"
    path.write_text(
        f"""
apiVersion: v1
kind: Config
clusters:
- name: kmock
  cluster: {{server: "{cluster.api.configuration.host}"}}
users:
- name: me
  user: {{token: test-token}}
contexts:
- name: kmock
  context: {{cluster: kmock, user: me, namespace: {NS}}}
current-context: kmock
""",
        encoding="utf-8",
    )
    return path


def stored(cluster: Cluster, plural: str) -> list[dict[str, Any]]:
    """The live objects of a resource the server holds."""
    return [
        obj.raw
        for (resource, _, _), obj in cluster.server.objects.items()
        if resource.plural == plural and not obj.deleted
    ]


async def submit(folder: Path, cluster: Cluster, *args: str) -> int:
    """`nimbus-scenarios submit` against the emulated server, off the server's loop."""
    scenario = folder / "submitted.scn"
    if not scenario.exists():
        write_scenario(folder, SCENARIO, "submitted.scn")
    config = kubeconfig(folder, cluster)
    argv = ["submit", str(scenario), "--kubeconfig", str(config), "--url", "http://target:8000"]
    return await asyncio.to_thread(main, [*argv, *args])


def test_a_forbidden_create_jobs_is_exit_4_naming_it_before_anything_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pre-flight reviews every verb first: nothing is created when one is forbidden."""

    async def test(cluster: Cluster) -> None:
        cluster.server.deny("create", "batch", "jobs")
        code = await submit(tmp_path, cluster, "--detach")
        assert code == ExitCode.INFRASTRUCTURE
        assert stored(cluster, "configmaps") == []
        assert stored(cluster, "jobs") == []

    run(test)
    err = capsys.readouterr().err
    assert "forbidden: cannot create jobs.batch in namespace nimbusguard" in err
    assert "Traceback" not in err


def test_forbidden_pod_logs_are_named_with_their_subresource(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reading the logs is reviewed as `get pods/log`, and named so."""

    async def test(cluster: Cluster) -> None:
        cluster.server.deny("get", "", "pods/log")
        assert await submit(tmp_path, cluster, "--detach") == ExitCode.INFRASTRUCTURE
        assert stored(cluster, "jobs") == []

    run(test)
    assert "cannot get pods/log in namespace nimbusguard" in capsys.readouterr().err


def test_the_same_scenario_twice_creates_its_configmap_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ConfigMap is named by a hash of the file: submitted again, it is found, not made
    again; two Jobs, one ConfigMap, immutable."""

    async def test(cluster: Cluster) -> None:
        assert await submit(tmp_path, cluster, "--detach") == ExitCode.OK
        assert await submit(tmp_path, cluster, "--detach") == ExitCode.OK
        maps = stored(cluster, "configmaps")
        assert len(maps) == 1
        assert maps[0]["immutable"] is True
        assert maps[0]["data"] == {"submitted.scn": SCENARIO}
        assert len(stored(cluster, "jobs")) == 2

    run(test)
    captured = capsys.readouterr()
    assert ": created" in captured.err
    assert "already there, unchanged" in captured.err
    run_ids = captured.out.split()
    assert len(run_ids) == 2
    assert len(set(run_ids)) == 2


def test_a_configmap_of_that_name_with_other_content_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name promises its content: a ConfigMap holding something else stops the submit."""

    async def test(cluster: Cluster) -> None:
        assert await submit(tmp_path, cluster, "--detach") == ExitCode.OK
        (original,) = stored(cluster, "configmaps")
        name = original["metadata"]["name"]
        collection = f"/api/v1/namespaces/{NS}/configmaps"
        async with cluster.http.client.delete(f"{collection}/{name}") as response:
            assert response.status < 300, await response.text()
        tampered = {**original, "data": {"submitted.scn": "tampered"}}
        tampered["metadata"] = {"name": name, "namespace": NS}
        await cluster.create(collection, tampered)
        assert await submit(tmp_path, cluster, "--detach") == ExitCode.INFRASTRUCTURE
        assert len(stored(cluster, "jobs")) == 1

    run(test)
    assert "exists with other content" in capsys.readouterr().err


def test_the_job_carries_every_safety_setting_and_the_shards_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 2-shard submit sends an Indexed Job with the ServiceAccount, no retries, the failure
    policy, a deadline, a TTL, the run id on Job and pods, and pod args that print the results
    and wait for the start in the run's own ConfigMap (created empty)."""

    async def test(cluster: Cluster) -> None:
        code = await submit(tmp_path, cluster, "--detach", "--shards", "2", "--set", "x=1")
        assert code == ExitCode.USAGE  # no param `x`: refused before anything is sent
        assert stored(cluster, "configmaps") == []
        assert await submit(tmp_path, cluster, "--detach", "--shards", "2") == ExitCode.OK

    run(test, timeout=30)
    run_id = capsys.readouterr().out.strip()

    async def check(cluster: Cluster) -> None:
        assert await submit(tmp_path, cluster, "--detach", "--shards", "2") == ExitCode.OK
        (job,) = stored(cluster, "jobs")
        spec = job["spec"]
        assert job["metadata"]["namespace"] == NS
        assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == (
            "Indexed",
            2,
            2,
        )
        assert spec["backoffLimitPerIndex"] == 0  # no retry of any shard
        assert spec["podFailurePolicy"]["rules"][0]["action"] == "FailIndex"
        assert spec["activeDeadlineSeconds"] >= 30
        assert spec["ttlSecondsAfterFinished"] > 0
        pod = spec["template"]["spec"]
        assert pod["serviceAccountName"] == "nimbus-scenarios"
        assert pod["restartPolicy"] == "Never"
        run_label = job["metadata"]["labels"][RUN_ID_LABEL]
        assert spec["template"]["metadata"]["labels"][RUN_ID_LABEL] == run_label
        (container,) = [c for c in pod["containers"] if c["name"] == CONTAINER]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["args"] == [
            *("run", "/scenarios/submitted.scn", "--print-results", "--monitor", "--workers=auto"),
            *("--url", "http://target:8000", "--shards", "2"),
            *("--start-at-from", f"configmap/nimbus-run-{run_label}"),
        ]
        assert "initContainers" not in pod  # the target is not the reference consumer
        starts = [m for m in stored(cluster, "configmaps") if "immutable" not in m]
        assert [m["metadata"]["name"] for m in starts] == [f"nimbus-run-{run_label}"]
        assert starts[0]["data"] == {}

    run(check, timeout=30)
    assert run_id
